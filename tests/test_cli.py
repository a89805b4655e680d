"""The command line: exit codes, one-line messages, and nothing written on bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import REPO, generated_env


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
    return subprocess.run(
        [sys.executable, "-m", "redis_harness.cli", *args],
        capture_output=True,
        text=True,
        # The repo's own .env must not fill in what a test leaves out.
        env={**base, "REDIS_HARNESS_ENV_FILE": "/nonexistent/.env", **(env if env is not None else generated_env())},
        cwd=REPO,
    )


def write_profile(tmp_path: Path, name: str, **changes: object) -> Path:
    raw = yaml.safe_load((REPO / "profiles" / "ci.yaml").read_text())
    raw["name"] = name
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        raw[section][key] = value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def assert_refused(result: subprocess.CompletedProcess[str], field: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"redis-harness: {field}"), lines[0]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"memory__polcy": "x"}, "memory.polcy: unknown key; did you mean 'policy'?"),
        ({"resources__memory": "1.5gb"}, "resources.memory:"),
        ({"memory__maxmemory_ratio": 0.95}, "memory.maxmemory_ratio:"),
        ({"memory__policy": "lru"}, "memory.policy:"),
        ({"memory__maxmemory": 0}, "memory.maxmemory:"),
        ({"network__host": "0.0.0.0"}, "network.host:"),
    ],
)
def test_bad_profile_exits_2_with_one_line_and_writes_nothing(tmp_path: Path, change: dict, field: str) -> None:
    name = "badinput"
    path = write_profile(tmp_path, name, **change)
    result = run_cli("render", str(path))
    assert_refused(result, field)
    assert not (REPO / "compose" / name).exists()


def test_missing_password_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    path = write_profile(tmp_path, "nopass")
    env = generated_env()
    del env["REDIS_PROCESSING_PASSWORD"]
    assert_refused(run_cli("render", str(path), env=env), "REDIS_PROCESSING_PASSWORD: not set")
    assert not (REPO / "compose" / "nopass").exists()


def test_render_and_check(tmp_path: Path) -> None:
    path = write_profile(tmp_path, "clicheck")
    env = generated_env()
    target = REPO / "compose" / "clicheck"
    try:
        assert run_cli("render", str(path), env=env).returncode == 0
        assert run_cli("render", str(path), "--check", env=env).returncode == 0
        changed = run_cli("render", str(path), "--check", env=generated_env())  # other passwords: users.acl differs
        assert changed.returncode == 1 and "users.acl" in changed.stdout
    finally:
        subprocess.run(["rm", "-rf", str(target)], check=True)


def test_unreachable_engine_says_how_to_start_it() -> None:
    env = generated_env() | {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    result = run_cli("status", "ci", env=env)
    assert_refused(result, "docker: engine not reachable")
    assert "bootstrap-host" in result.stderr
