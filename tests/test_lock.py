"""One operation at a time per deployment: the lock (no containers needed)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from redis_harness.deploy import lock

from .conftest import REPO, generated_env, variant_profile


def test_a_second_command_waits_then_names_the_holder(tmp_path: Path) -> None:
    profile = variant_profile("ci", tmp_path, "cvlock", network={"port": 6499})
    env = {**os.environ, **generated_env(), lock.TIMEOUT_ENV: "1"}
    with lock.held(profile, "test"):
        result = subprocess.run(
            [str(REPO / ".venv/bin/redis-harness"), "up", str(tmp_path / "cvlock.yaml")],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    assert result.returncode == 1
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("redis-harness:")]
    assert f"PID {os.getpid()} (test" in line and "busy" in line
    assert "waiting for PID" in result.stderr, "a progress line says whom it waits for"
    assert lock.lock_path(profile).read_text() == "", "the lock file is emptied on release"


def test_the_lock_is_free_again_after_the_block(tmp_path: Path) -> None:
    profile = variant_profile("ci", tmp_path, "cvlock2", network={"port": 6499})
    with lock.held(profile, "first"):
        pass
    with lock.held(profile, "second", timeout_s=0):
        assert "second" in lock.lock_path(profile).read_text()
