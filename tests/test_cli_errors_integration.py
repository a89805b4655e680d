"""Docker failures through the real command line, against a small deployment of this module's own (port 6480).

A fault undone twice, a network left twice, the engine going away mid-command, an
unwritable --junit: one line on stderr, exit 1 or 2, no traceback, nothing written.
Also verify's progress lines, its table fitting 100 columns and its --json.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from redis_harness.deploy.containers import service_container
from redis_harness.faults import inject as faults

from .conftest import REPO, Deployment, deployed, variant_profile
from .test_cli_errors import assert_one_line, tree

pytestmark = pytest.mark.integration

PORT = 6480


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, secret_env: dict[str, str]) -> Iterator[Deployment]:
    profile = variant_profile("ci", tmp_path_factory.mktemp("ce"), "ce-errors", network={"port": PORT})
    with deployed(profile, secret_env) as deployment:
        yield deployment


@pytest.fixture
def running(deployment: Deployment) -> Iterator[Deployment]:
    """Each test starts and ends with the container running, unpaused and on its networks."""
    yield deployment
    container = service_container(deployment.profile)
    container.reload()
    if container.attrs["State"].get("Paused"):
        faults.unpause(deployment.profile)
    faults.reconnect(deployment.profile, "edge")
    faults.wait_running(deployment.profile, timeout_s=60)


def cli(deployment: Deployment, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "redis_harness.cli", *args],
        capture_output=True,
        text=True,
        env={**deployment.env, "REDIS_HARNESS_ENV_FILE": "/nonexistent/.env", **(env or {})},
        cwd=REPO,
        timeout=180,
    )


# --------------------------------------------------------------------------- faults


def test_unpause_when_not_paused_says_so(running: Deployment) -> None:
    source = str(running.profile.source)
    line = assert_one_line(cli(running, "fault", source, "unpause"), 2, "is running, not paused", "nothing to unpause")
    assert "409" not in line
    state = service_container(running.profile).attrs["State"]
    assert state["Status"] == "running" and not state["Paused"]


def test_disconnect_twice_says_it_is_off_already_and_how_to_undo(running: Deployment) -> None:
    source = str(running.profile.source)
    first = cli(running, "fault", source, "disconnect")
    assert first.returncode == 0, first.stderr
    assert_one_line(
        cli(running, "fault", source, "disconnect"),
        2,
        "disconnected already",
        f"`redis-harness fault {source} reconnect` puts it back",
    )
    back = cli(running, "fault", source, "reconnect")
    assert back.returncode == 0, back.stderr


BROKEN_UNPAUSE = """
import sys
from redis_harness import cli
from redis_harness.cli import fault
from redis_harness.deploy.containers import service_container
from redis_harness.profile.model import load_profile

def unpause_unchecked(args):
    service_container(load_profile(args.profile)).unpause()  # straight to the engine, without the check

fault._cmd_fault = unpause_unchecked
sys.exit(cli.main(["fault", sys.argv[1], "unpause"]))
"""


def test_an_engine_refusal_no_command_catches_is_one_line(running: Deployment) -> None:
    """The net for Docker API errors: the engine's refusal on a real container, as one line.

    Docker 20.10 answers 500 here (exit 1, the operation failed); later engines 409 (exit 2, a wrong request).
    """
    result = subprocess.run(
        [sys.executable, "-c", BROKEN_UNPAUSE, str(running.profile.source)],
        capture_output=True,
        text=True,
        env=running.env,
        cwd=REPO,
        timeout=60,
    )
    assert_one_line(result, (1, 2), "docker: the engine refused:", "is not paused")


class VanishingEngine:
    """A Docker socket that passes the first request (the client's ping) to the real engine, then goes away.

    Stands for an engine that stops between two calls of one command (a restart, a crash).
    """

    def __init__(self, path: Path, upstream: str = "/var/run/docker.sock") -> None:
        self.path, self.upstream = path, upstream
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        client, _ = self.server.accept()
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(self.upstream)
        upstream.sendall(client.recv(65536))  # the ping
        client.sendall(upstream.recv(65536))  # its answer (small: one read)
        upstream.close()
        self.server.close()  # gone: no new connection is accepted
        self.path.unlink()
        client.recv(65536)  # the next request arrives ...
        client.close()  # ... and the engine drops it unanswered


def test_the_engine_going_away_mid_command_is_one_line(running: Deployment, tmp_path: Path) -> None:
    sock = tmp_path / "docker.sock"
    VanishingEngine(sock)
    result = cli(running, "fault", str(running.profile.source), "pause", env={"DOCKER_HOST": f"unix://{sock}"})
    assert_one_line(result, 2, "docker: engine stopped answering", "bootstrap-host")
    assert not service_container(running.profile).attrs["State"]["Paused"]  # the real engine never got the pause


# --------------------------------------------------------------------------- verify


def test_verify_to_an_unwritable_junit_path_still_prints_the_table(running: Deployment, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    junit = blocker / "verify.xml"  # below a file: ENOTDIR, whoever runs it
    result = cli(running, "verify", str(running.profile.source), "--junit", str(junit), "-k", "runs_as_non_root", "-v")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "CHECK" in result.stdout and "runs_as_non_root" in result.stdout and "1 checks: 1 passed" in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("redis-harness")]
    assert errors == [
        f"redis-harness: --junit: cannot write {junit} ({blocker}: File exists); the results are above, "
        "no XML was written; give a writable path"
    ], result.stderr
    assert "Traceback" not in result.stderr
    assert tree(tmp_path) == ["a-file"]
    as_json = cli(running, "verify", str(running.profile.source), "--junit", str(junit), "--json", "-k", "non_root")
    data = json.loads(as_json.stdout)  # stdout stays JSON; the one line is on stderr
    assert as_json.returncode == data["exit_code"] == 2 and data["counts"]["pass"] == 1
    assert tree(tmp_path) == ["a-file"]


def test_verify_to_an_immutable_junit_folder_still_prints_the_table(running: Deployment, tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("no immutable flag on this filesystem")
    try:
        junit = folder / "verify.xml"
        result = cli(running, "verify", str(running.profile.source), "--junit", str(junit), "-k", "runs_as_non_root")
        assert result.returncode == 2 and "1 checks: 1 passed" in result.stdout, result.stdout + result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("redis-harness")]
        assert len(errors) == 1 and f"--junit: cannot write {junit} (" in errors[0], result.stderr
        assert "Operation not permitted" in errors[0] and "Traceback" not in result.stderr
        assert tree(folder) == []
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=False)


def test_verify_prints_progress_lines_when_not_on_a_terminal(running: Deployment) -> None:
    result = cli(running, "verify", str(running.profile.source), "-k", "runs_as_non_root")
    assert result.returncode == 0, result.stdout + result.stderr
    progress = result.stderr.splitlines()
    assert progress and progress[0].startswith("verify: checking redis against the profile (")
    assert progress[0].endswith(" s)")


def test_verify_table_fits_100_columns_and_json_and_junit_keep_the_full_text(
    running: Deployment, tmp_path: Path
) -> None:
    source = str(running.profile.source)
    junit = tmp_path / "verify.xml"
    table = cli(running, "verify", source, "--junit", str(junit), "-v", env={"COLUMNS": "100"})
    assert table.returncode in (0, 1), table.stdout + table.stderr  # a host warning or not, the layout is the point
    widths = [len(line) for line in table.stdout.splitlines() if not line.startswith(("verify ", "JUnit XML: "))]
    assert max(widths) <= 100, table.stdout
    assert "…" in table.stdout  # something did not fit, and was shortened

    as_json = cli(running, "verify", source, "--json", env={"COLUMNS": "100"})
    data = json.loads(as_json.stdout)
    assert data["profile"] == "ce-errors" and data["exit_code"] == as_json.returncode
    checks = {c["name"]: c for c in data["checks"]}
    cases = ET.parse(junit).getroot().iter("testcase")
    from_junit = {}
    for case in cases:
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        from_junit[str(case.get("name")).removeprefix("test_")] = props
    assert set(checks) == set(from_junit)
    longest = max(checks.values(), key=lambda c: len(c["expected"]))
    assert len(longest["expected"]) > 40  # longer than the table's column
    assert from_junit[longest["name"]]["expected"] == longest["expected"]
    shortened = [c for c in checks.values() if len(c["expected"]) > 40 and c["expected"] not in table.stdout]
    assert shortened, "a long expected is shortened in the table but whole in JSON and JUnit"


# --------------------------------------------------------------------------- hints


def test_a_hint_names_the_path_the_user_gave(running: Deployment, tmp_path: Path) -> None:
    absent = variant_profile("ci", tmp_path, "ce-absent", network={"port": PORT + 1})
    result = cli(running, "verify", str(absent.source))
    assert_one_line(result, 2, "not running", f"run `redis-harness up {absent.source}`")
    assert "up ce-absent`" not in result.stderr


# --------------------------------------------------------------------------- image build


def test_image_build_refuses_a_suite_without_apt_sources_in_one_line(running: Deployment) -> None:
    """A suite the machine's apt sources do not carry cannot get its security updates: refused
    before mmdebstrap starts, in one line naming the suite and the fix, and nothing is built."""
    tag = "redis-harness/redis:ce-no-such-suite"
    result = cli(running, "image", "build", "--tag", tag, "--suite", "ce-no-such-suite")
    assert_one_line(result, 2, "image: this machine's apt sources", "ce-no-such-suite")
    assert "mmdebstrap:" not in result.stderr
    assert not [i for i in running_images() if tag in i]


def running_images() -> list[str]:
    out = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True)
    return out.stdout.split()
