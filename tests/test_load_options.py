"""`redis-harness load` refuses bad options with exit 2 and one line, before anything is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

BAD = [
    (["--users", "0"], "--users: 0 simulated users; give 1 or more"),
    (["--users", "-3"], "--users: -3 simulated users"),
    (["--duration", "400ms"], "--duration: 0.4 s is too short"),
    (["--rate", "-1"], "--rate: -1 ops/s is negative"),
    (["--spawn-rate", "-2"], "--spawn-rate: -2 users/s"),
    (["--workers", "-1"], "--workers: -1 is negative"),
]


def _load(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "redis_harness.cli", "load", "ci", "--scenario", "raw", *args],
        capture_output=True,
        text=True,
        env={**env, "REDIS_HARNESS_ENV_FILE": "/nonexistent/.env"},
        cwd=REPO,
        timeout=60,
    )


@pytest.mark.parametrize(("args", "said"), BAD)
def test_bad_option_is_refused_in_one_line(args: list[str], said: str, cli_env: dict, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    result = _load([*args, "--report", str(folder)], cli_env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0], result.stderr
    assert not folder.exists()  # nothing written


@pytest.mark.parametrize("existing", ["run.json", "raw.json", "report.json"])
def test_a_report_folder_holding_a_run_is_not_overwritten(existing: str, cli_env: dict, tmp_path: Path) -> None:
    (tmp_path / existing).write_text("{}")
    result = _load(["--report", str(tmp_path)], cli_env)
    assert result.returncode == 2
    assert "--report:" in result.stderr and "already holds a run" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [existing]
    assert (tmp_path / existing).read_text() == "{}"
