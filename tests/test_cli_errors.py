"""No traceback reaches a user: each way a command can fail ends in one line on stderr and exit 1 or 2.

Through the real command line, as a user meets it; each case also shows that nothing was written.
Docker cases (a fault twice, an unwritable --junit) are in test_cli_errors_integration.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import REPO, generated_env
from .test_cli import run_cli, write_profile


def tree(path: Path) -> list[str]:
    """Every file and folder under path (names relative to it): 'nothing written' compares two of these."""
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


def assert_one_line(result: subprocess.CompletedProcess[str], code: int | tuple[int, ...], *phrases: str) -> str:
    """Exit code `code` (or one of them), exactly one line on stderr, no traceback; the line holds every phrase."""
    assert result.returncode in (code if isinstance(code, tuple) else (code,)), (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert lines[0].startswith("redis-harness"), lines[0]
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def immutable() -> Iterator[list[Path]]:
    """Folders made immutable by a test (chattr +i: root ignores permission bits, not this flag)."""
    marked: list[Path] = []
    if shutil.which("chattr") is None:
        pytest.skip("chattr is missing")
    yield marked
    for path in marked:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def make_immutable(marked: list[Path], path: Path) -> None:
    result = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"this filesystem has no immutable flag: {result.stderr.strip()}")
    marked.append(path)


# --------------------------------------------------------------------------- render


def test_render_into_an_immutable_folder_names_the_folder_and_the_fix(tmp_path: Path, immutable: list[Path]) -> None:
    env = generated_env()
    path = write_profile(tmp_path, "ceimmutable")
    target = REPO / "compose" / "ceimmutable"
    try:
        assert run_cli("render", str(path), env=env).returncode == 0
        before = {name: (target / name).read_text() for name in tree(target)}
        make_immutable(immutable, target)
        siblings = tree(REPO / "compose")
        result = run_cli("render", str(path), env=generated_env())  # other passwords: users.acl would change
        assert_one_line(result, 2, "render: cannot write", "compose/ceimmutable/", "lsattr")
        assert {name: (target / name).read_text() for name in tree(target)} == before
        assert tree(REPO / "compose") == siblings  # no staging folder left behind
    finally:
        subprocess.run(["chattr", "-i", str(target)], check=False)
        shutil.rmtree(target, ignore_errors=True)


def test_render_check_on_a_file_damaged_into_binary_says_it_differs(tmp_path: Path) -> None:
    env = generated_env()
    path = write_profile(tmp_path, "cebinary")
    target = REPO / "compose" / "cebinary"
    try:
        assert run_cli("render", str(path), env=env).returncode == 0
        (target / "redis.conf").write_bytes(b"\xff\xfe not utf-8")
        result = run_cli("render", str(path), "--check", env=env)
        assert result.returncode == 1 and "redis.conf" in result.stdout and result.stderr == "", result.stderr
    finally:
        shutil.rmtree(target, ignore_errors=True)


# --------------------------------------------------------------------------- env init


def test_env_init_on_a_dangling_link_says_so_and_writes_nothing(tmp_path: Path) -> None:
    link = tmp_path / ".env"
    link.symlink_to(tmp_path / "gone" / "secrets.env")
    result = run_cli("env", "init", env={"REDIS_HARNESS_ENV_FILE": str(link)})
    assert_one_line(result, 2, "env init:", "is a link to", "does not exist", "remove the link")
    assert tree(tmp_path) == [".env"] and link.is_symlink()


def test_env_init_into_a_missing_folder_says_so_and_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "nofolder" / ".env"
    result = run_cli("env", "init", env={"REDIS_HARNESS_ENV_FILE": str(target)})
    assert_one_line(result, 2, "env init: cannot create", "No such file or directory")
    assert tree(tmp_path) == []


def test_env_init_into_an_immutable_folder_says_so(tmp_path: Path, immutable: list[Path]) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    make_immutable(immutable, folder)
    result = run_cli("env", "init", env={"REDIS_HARNESS_ENV_FILE": str(folder / ".env")})
    assert_one_line(result, 2, "env init: cannot create", "Operation not permitted")
    assert tree(folder) == []


# --------------------------------------------------------------------------- report


def run_snapshot() -> dict:
    """run.json as `load` writes it (load.run.snapshot), for the ci profile's smoke scenario."""
    from redis_harness.load.run import LoadOptions, snapshot
    from redis_harness.load.scenarios import get_scenario
    from redis_harness.profile.model import load_profile

    return snapshot(load_profile("ci"), get_scenario("smoke"), LoadOptions(), 10, 10.0)


def raw_data() -> dict:
    from redis_harness.load.recorder import Recorder

    recorder = Recorder()
    return {
        "scenario": "smoke",
        "profile_name": "ci",
        "started": 1000.0,
        "ended": 1010.0,
        "recorder": recorder.export(),
        "settings": {},
    }


DAMAGED = {
    "raw.json is not JSON": ("raw.json", "{not json", "is not valid JSON"),
    "raw.json is {}": ("raw.json", "{}", "lacks scenario, profile_name"),
    "raw.json is []": ("raw.json", "[]", "holds a list"),
    "run.json is {}": ("run.json", "{}", "lacks scenario, gates, thresholds"),
    "run.json is not UTF-8": ("run.json", b"\xff\xfe\x00{", "is not valid JSON"),
    "recorder of the wrong type": ("raw.json", {**raw_data(), "recorder": "zz"}, "data are damaged"),
    "thresholds of another version": ("run.json", {**run_snapshot(), "thresholds": {"bogus": 1}}, "data are damaged"),
    "a gate this version lacks": ("run.json", {**run_snapshot(), "gates": ["no_such_gate"]}, "data are damaged"),
}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_report_on_damaged_run_data_is_one_line_and_writes_nothing(tmp_path: Path, case: str) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps(run_snapshot()))
    (run_dir / "raw.json").write_text(json.dumps(raw_data()))
    name, content, phrase = DAMAGED[case]
    if isinstance(content, bytes):
        (run_dir / name).write_bytes(content)
    else:
        (run_dir / name).write_text(content if isinstance(content, str) else json.dumps(content))
    before = tree(run_dir)
    assert_one_line(run_cli("report", str(run_dir)), 2, "report:", phrase)
    assert tree(run_dir) == before


def test_report_on_a_folder_that_is_no_run_says_what_to_give(tmp_path: Path) -> None:
    assert_one_line(run_cli("report", str(tmp_path)), 2, "has no run.json", "redis-harness load")
    assert_one_line(run_cli("report", str(tmp_path / "missing")), 2, "has no run.json")


def test_the_undamaged_run_data_does_report(tmp_path: Path) -> None:
    """The damaged cases above fail because of the damage: the same folder undamaged renders."""
    (tmp_path / "run.json").write_text(json.dumps(run_snapshot()))
    (tmp_path / "raw.json").write_text(json.dumps(raw_data()))
    result = run_cli("report", str(tmp_path))
    assert result.returncode == 1, result.stderr  # no command ran, so error_rate cannot pass
    assert "gate error_rate" in result.stdout and (tmp_path / "report.json").is_file()


def test_report_into_an_immutable_run_folder_says_so(tmp_path: Path, immutable: list[Path]) -> None:
    (tmp_path / "run.json").write_text(json.dumps(run_snapshot()))
    (tmp_path / "raw.json").write_text(json.dumps(raw_data()))
    make_immutable(immutable, tmp_path)
    assert_one_line(run_cli("report", str(tmp_path)), 2, "report: cannot write", "make the folder writable")
    assert tree(tmp_path) == ["raw.json", "run.json"]


# --------------------------------------------------------------------------- the net itself


BROKEN_COMMAND = """
import sys
from redis_harness import cli
from redis_harness.cli import down

def broken(args):
    raise RuntimeError("a bug\\nover two lines")

down.run = broken  # a deliberately broken command, to show what the net does with a bug
sys.exit(cli.main(["down", "ci"]))
"""


def test_an_unexpected_error_is_one_line_with_a_hint_and_debug_shows_the_traceback() -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}

    def run(extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", BROKEN_COMMAND], capture_output=True, text=True, env={**base, **extra}, cwd=REPO
        )

    line = assert_one_line(run({}), 1, "unexpected error: RuntimeError: a bug over two lines", "REDIS_HARNESS_DEBUG=1")
    assert line.startswith("redis-harness: ")
    debug = run({"REDIS_HARNESS_DEBUG": "1"})
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert "in broken" in debug.stderr and "RuntimeError: a bug" in debug.stderr


UNCAUGHT_OS_ERROR = """
import sys
from pathlib import Path
from redis_harness import cli
from redis_harness.cli import down

def writes_below_a_file(args):
    Path(sys.argv[1], "out.txt").write_text("x")  # a real ENOTDIR from the kernel, which no command catches

down.run = writes_below_a_file
sys.exit(cli.main(["down", "ci"]))
"""


def test_an_os_error_no_command_catches_is_one_line_naming_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    base = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
    result = subprocess.run(
        [sys.executable, "-c", UNCAUGHT_OS_ERROR, str(blocker)], capture_output=True, text=True, env=base, cwd=REPO
    )
    assert_one_line(result, 2, f"{blocker}/out.txt: Not a directory", "check that the path")
    assert tree(tmp_path) == ["a-file"]
