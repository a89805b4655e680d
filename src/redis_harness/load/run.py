"""A load run: a Locust scenario against a running deployment, its data saved into a self-contained folder.

Locust runs as its own process (headless, or its web UI on 127.0.0.1), with
`workers` for its distributed mode (a master and N worker processes). The
folder holds everything the report needs and nothing it would have to look up
later: run.json (the scenario, its gates and the profile's thresholds as they
were when the run started), raw.json (written by the Locust side) and
post.json (facts read after the run), so a report re-rendered later judges
the run by the thresholds it ran with.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from redis_harness import paths
from redis_harness.deploy.connect import connect
from redis_harness.deploy.containers import data_containers
from redis_harness.errors import BadInput, HarnessError
from redis_harness.load.alerts import firing_during
from redis_harness.load.scenarios import Scenario
from redis_harness.origin.store import OriginStore
from redis_harness.profile.credentials import Secrets
from redis_harness.profile.model import Profile

REPORTS_DIR = paths.ROOT / "reports"
WEB_PORT = 8089
# Users get this long to finish on_stop: the sequence writers wait for a failed-over
# deployment to settle (up to 40 s) before counting what was lost.
STOP_TIMEOUT_S = 60
RUN_FILE, RAW_FILE, POST_FILE = "run.json", "raw.json", "post.json"
FAULTS = ("kill", "restart", "pause", "disconnect", "partition")


@dataclass(frozen=True)
class LoadOptions:
    """How to run a scenario; None means the scenario's own default."""

    users: int | None = None
    spawn_rate: float | None = None
    duration_s: float | None = None
    rate: float = 0.0  # open loop: operations per second in all; 0 = closed loop
    workers: int = 0
    report_dir: Path | None = None
    fault: str | None = None
    web: bool = False
    web_port: int = WEB_PORT
    autostart: bool = False
    verbose: bool = False


@dataclass(frozen=True)
class Run:
    """A finished run: its folder holds run.json, raw.json and post.json."""

    run_dir: Path
    scenario: Scenario


def check_options(profile: Profile, scenario: Scenario, options: LoadOptions) -> None:
    """Everything that can refuse a run, before anything is written."""
    if scenario.name == "failover" and profile.topology.sentinel is None and profile.topology.cluster is None:
        raise BadInput(
            f"--scenario: failover needs a Sentinel or Cluster deployment; {profile.name} is "
            f"{profile.topology.kind} (try profiles ha or cluster)"
        )
    if options.fault == "partition" and scenario.name != "failover":
        raise BadInput("--fault: partition is a failover fault; use it with --scenario failover")
    if options.report_dir is not None and (options.report_dir / RAW_FILE).exists():
        raise BadInput(f"--report: {options.report_dir} already holds a run; give a new folder")


def require_deployment(profile: Profile, secrets: Secrets) -> None:
    """BadInput (exit 2) naming the fix when the deployment does not answer an authenticated PING."""
    try:
        client = connect(profile, "admin", secrets.admin.password, sentinel_password=secrets.default.password)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        host, port = profile.network.host, profile.network.port
        raise BadInput(
            f"deployment: {profile.project} not reachable at {host}:{port} ({exc}); "
            f"run `redis-harness up {profile.name}`"
        ) from None


def _child_env(profile: Profile, secrets: Secrets, scenario: str, run_dir: Path, rate: float) -> dict[str, str]:
    env = dict(os.environ)
    for user in (secrets.default, secrets.admin, *secrets.services):
        env[user.env] = user.password
    env.update(
        {
            "REDIS_HARNESS_PROFILE": str(profile.source.resolve()),
            "REDIS_HARNESS_SCENARIO": scenario,
            "REDIS_HARNESS_RUN_DIR": str(run_dir),
            "REDIS_HARNESS_RUN_ID": run_dir.name,
            "REDIS_HARNESS_RATE": str(rate or 0),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(paths.ROOT), env.get("PYTHONPATH")])),
        }
    )
    return env


def _container_facts(profile: Profile) -> dict[str, Any]:
    """OOM kills and restarts of every data node (docker inspect)."""
    containers = data_containers(profile)
    if not containers:
        return {"oom_killed": None, "restart_count": None}
    return {
        "oom_killed": any(c.attrs["State"].get("OOMKilled", False) for c in containers),
        "restart_count": sum(c.attrs.get("RestartCount", 0) for c in containers),
    }


def run_folder(profile: Profile, scenario: Scenario, options: LoadOptions) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return options.report_dir or REPORTS_DIR / f"{stamp}-{profile.name}-{scenario.name}"


def _snapshot(profile: Profile, scenario: Scenario, options: LoadOptions, users: int, duration_s: float) -> dict:
    """What judges this run, frozen at its start: editing the profile later changes no verdict."""
    return {
        "scenario": scenario.name,
        "gates": list(scenario.gates),
        "profile": profile.name,
        "profile_source": str(profile.source),
        "thresholds": dataclasses.asdict(profile.alerts),
        "maxmemory": profile.memory.maxmemory_bytes,
        "memory_limit": profile.resources.memory_bytes,
        "options": {
            "users": users,
            "duration_s": duration_s,
            "rate": options.rate,
            "workers": options.workers,
            "fault": options.fault,
        },
    }


def run(profile: Profile, secrets: Secrets, scenario: Scenario, options: LoadOptions) -> Run:
    """Run `scenario` against the deployment; return once Locust has saved the run's data."""
    check_options(profile, scenario, options)
    require_deployment(profile, secrets)
    users = options.users or scenario.users
    spawn_rate = options.spawn_rate or max(users, scenario.spawn_rate)
    duration = options.duration_s or scenario.duration_s
    run_dir = run_folder(profile, scenario, options)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / RUN_FILE).write_text(json.dumps(_snapshot(profile, scenario, options, users, duration), indent=2))
    restarts_before = _container_facts(profile)["restart_count"] or 0

    cmd = [sys.executable, "-m", "locust", "-f", scenario.locustfile, "--users", str(users),
           "--spawn-rate", str(spawn_rate), "--stop-timeout", str(STOP_TIMEOUT_S), "--loglevel", "WARNING",
           "--csv", str(run_dir / "locust"), "--html", str(run_dir / "locust.html")]  # fmt: skip
    if options.workers:
        cmd += ["--processes", str(options.workers)]
    if options.web:
        cmd += ["--web-host", "127.0.0.1", "--web-port", str(options.web_port)]
        if options.autostart:
            cmd += ["--autostart", "--run-time", f"{duration:.0f}s", "--autoquit", "2"]
        print(f"Locust web UI: http://127.0.0.1:{options.web_port}  (Ctrl-C to stop; the report is written on exit)")
    else:
        cmd += ["--headless", "--run-time", f"{duration:.0f}s", "--only-summary"]
    env = _child_env(profile, secrets, scenario.name, run_dir, options.rate)
    # One seeded origin database per run, made before any Locust process opens it.
    origin_path = run_dir / "origin.sqlite"
    OriginStore.open_seeded(origin_path).close()
    env["REDIS_HARNESS_ORIGIN"] = str(origin_path)
    if options.fault:
        env["REDIS_HARNESS_FAULT"] = options.fault
    timeout = None if options.web and not options.autostart else duration + 180
    started = time.time()
    try:
        result = subprocess.run(cmd, env=env, timeout=timeout, capture_output=not options.verbose, text=True)
    except subprocess.TimeoutExpired:
        raise HarnessError(f"load: locust did not finish within {timeout:.0f} s") from None
    if not (run_dir / RAW_FILE).is_file():
        tail = (result.stderr or "").strip().splitlines()[-5:] if not options.verbose else []
        raise HarnessError("load: the run saved no data; locust said: " + " | ".join(tail))
    facts = _container_facts(profile)
    facts["restarts_during_run"] = (facts["restart_count"] or 0) - restarts_before
    if profile.monitoring.enabled:
        facts["prometheus_alerts"] = firing_during(profile, started, time.time())
    (run_dir / POST_FILE).write_text(json.dumps(facts))
    return Run(run_dir=run_dir, scenario=scenario)
