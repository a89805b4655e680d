"""A run is judged by the thresholds it ran with: re-rendering it after the profile changed gives the same verdict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from redis_harness.load.recorder import Recorder
from redis_harness.load.run import LoadOptions, snapshot
from redis_harness.load.scenarios import get_scenario
from redis_harness.profile.model import load_profile
from redis_harness.report.analysis import build

from .conftest import REPO


def write_run(run_dir: Path, profile_path: Path) -> None:
    """A smoke run's folder as load.run leaves it, with SET p99 at 50 ms (under the 100 ms slow_update)."""
    profile = load_profile(str(profile_path))
    scenario = get_scenario("smoke")
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps(snapshot(profile, scenario, LoadOptions(), 10, 10.0)))
    recorder = Recorder()
    for _ in range(200):
        recorder.record("SET price", 50_000, ok=True)
        recorder.record("GET price", 200, ok=True)
    exported = recorder.export()
    raw = {
        "scenario": "smoke",
        "profile_name": profile.name,
        "started": time.time() - 10,
        "ended": time.time(),
        "settings": {"users": 10},
        "recorder": {**exported, "service": {k: v.decode() for k, v in exported["service"].items()}},
        "generator": {"processes": [{"role": "local", "cpu_p50": 20.0, "cpu_max": 40.0, "cpu_over_90_share": 0.0}]},
        "server_series": [
            {"t": time.time() - 5, "up": True, "used_memory": 1_000_000, "maxmemory": profile.memory.maxmemory_bytes}
        ],
    }
    (run_dir / "raw.json").write_text(json.dumps(raw))
    (run_dir / "post.json").write_text(json.dumps({"oom_killed": False, "restart_count": 0, "restarts_during_run": 0}))


def report_cli(run_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "redis_harness.cli", "report", str(run_dir)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "REDIS_HARNESS_ENV_FILE": "/nonexistent/.env"},
        timeout=120,
    )


def ci_copy(tmp_path: Path, name: str) -> tuple[dict, Path, Path]:
    """profiles/ci.yaml as a profile of its own, and a run folder made from it."""
    raw = yaml.safe_load((REPO / "profiles" / "ci.yaml").read_text())
    profile_path = tmp_path / f"{name}.yaml"
    profile_path.write_text(yaml.safe_dump({**raw, "name": name}))
    run_dir = tmp_path / "run"
    write_run(run_dir, profile_path)
    return raw, profile_path, run_dir


def test_tightening_the_profile_after_a_run_leaves_its_verdict(tmp_path: Path) -> None:
    raw, profile_path, run_dir = ci_copy(tmp_path, "verdict")
    first = build(run_dir)
    assert first["passed"], first["gates"]

    # 10 ms would fail the 50 ms updates: the edit matters, and must not reach the old run.
    profile_path.write_text(
        yaml.safe_dump({**raw, "name": "verdict", "alerts": {**raw["alerts"], "slow_update": "10ms"}})
    )
    tightened = load_profile(str(profile_path))
    assert tightened.alerts.slow_update_s == 0.01
    result = report_cli(run_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    again = json.loads((run_dir / "report.json").read_text())
    assert again["gates"] == first["gates"] and again["passed"]

    # The same data judged by a run that started with the tightened profile fails slow_updates.
    (run_dir / "run.json").write_text(json.dumps(snapshot(tightened, get_scenario("smoke"), LoadOptions(), 10, 10.0)))
    result = report_cli(run_dir)
    assert result.returncode == 1
    assert "slow_updates" in result.stdout


def test_report_reads_nothing_outside_the_run_folder(tmp_path: Path) -> None:
    """The profile file the run came from may be gone altogether."""
    _, profile_path, run_dir = ci_copy(tmp_path, "gone")
    profile_path.unlink()
    assert report_cli(run_dir).returncode == 0
