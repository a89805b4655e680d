"""Deliberate faults are noted in .state/<name>/faults.json, and verify's no_unexpected_restart
counts only the restarts nobody noted: a `fault kill` passes, a SIGKILL sent behind the
harness's back fails."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from redis_harness import paths
from redis_harness.deploy.containers import service_container
from redis_harness.faults import inject as faults
from redis_harness.faults import journal

from .conftest import REPO, deployed, variant_profile

PORT = 6551


@pytest.fixture
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(paths, "STATE_DIR", tmp_path / ".state")
    return tmp_path / ".state"


def test_only_kills_of_the_same_container_are_expected_restarts(state_home: Path) -> None:
    journal.append("rp", {"kind": "kill", "container_id": "aaa"})
    journal.append("rp", {"kind": "pause", "container_id": "aaa"})  # no restart follows a pause
    journal.append("rp", {"kind": "kill", "container_id": "bbb"})  # an earlier container of the same name
    journal.append("other", {"kind": "kill", "container_id": "aaa"})
    assert journal.expected_restarts("rp", "aaa") == 1
    assert journal.expected_restarts("rp", "ccc") == 0
    assert [e["kind"] for e in journal.read("rp")] == ["kill", "pause", "kill"]


def test_a_damaged_journal_accounts_for_nothing(state_home: Path) -> None:
    """The safe side: a journal that cannot be read explains no restart."""
    journal.journal_path("rp").parent.mkdir(parents=True)
    for content in ("{not json", '{"kind": "kill"}', "[1, 2]", ""):
        journal.journal_path("rp").write_text(content)
        assert journal.expected_restarts("rp", "aaa") == 0
    journal.append("rp", {"kind": "kill", "container_id": "aaa"})  # and it starts afresh
    assert journal.expected_restarts("rp", "aaa") == 1


def test_the_journal_stays_bounded(state_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal, "MAX_ENTRIES", 3)
    for n in range(5):
        journal.append("rp", {"kind": "kill", "container_id": "aaa", "n": n})
    assert [e["n"] for e in journal.read("rp")] == [2, 3, 4]


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "redis_harness.cli", *args],
        capture_output=True,
        text=True,
        env={**env, "REDIS_HARNESS_ENV_FILE": "/nonexistent/.env"},
        cwd=REPO,
        timeout=180,
    )
    print(result.stdout[-3000:], result.stderr[-2000:])
    return result


def _restart_count(profile: object) -> int:
    container = service_container(profile)  # type: ignore[arg-type]
    container.reload()
    return int(container.attrs.get("RestartCount", 0))


@pytest.mark.integration
def test_verify_tells_a_deliberate_kill_from_a_crash(
    tmp_path: Path, secret_env: dict[str, str], cli_env: dict[str, str]
) -> None:
    profile = variant_profile("ci", tmp_path, "rpjournal", network={"port": PORT})
    check = ("verify", str(profile.source), "-k", "no_unexpected_restart")
    with deployed(profile, secret_env):
        killed = _cli(cli_env, "fault", str(profile.source), "kill")
        assert killed.returncode == 0
        assert _restart_count(profile) == 1
        after_kill = _cli(cli_env, *check)
        assert after_kill.returncode == 0, "a kill the harness sent and noted is not a crash"

        # A crash nobody noted: SIGKILL straight to the server process, past the harness.
        container = service_container(profile)
        os.kill(container.attrs["State"]["Pid"], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _restart_count(profile) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        faults.wait_running(profile, timeout_s=60)
        after_crash = _cli(cli_env, *check)
        assert after_crash.returncode == 1
        assert "FAIL  no_unexpected_restart" in after_crash.stdout
