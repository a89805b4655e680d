"""`redis-harness load` and `redis-harness report`: run a Locust scenario against a deployment, judge it.

Locust runs as its own process (headless, or its web UI on 127.0.0.1), with
`--processes N` for its distributed mode (a master and N workers). The
scenario files save raw.json into the run folder; the report and the gates are
built from it here, so the exit code reflects the gates.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from . import paths
from .client import connect
from .deploy import SERVICE_LABEL, project_containers
from .errors import BadInput, HarnessError
from .origin import OriginStore
from .profile import Profile, load_profile
from .report import build
from .scenarios import SCENARIOS, get_scenario
from .secrets import Secrets, load_secrets
from .units import parse_duration

REPORTS_DIR = paths.ROOT / "reports"
WEB_PORT = 8089
# Users get this long to finish on_stop: the sequence writers wait for a failed-over
# deployment to settle (up to 40 s) before counting what was lost.
STOP_TIMEOUT_S = 60


def _require_deployment(profile: Profile, secrets: Secrets) -> None:
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


def _post_run_facts(profile: Profile) -> dict[str, Any]:
    """OOM kills and restarts of every data node (docker inspect), after the run."""
    services = {node.service for node in profile.data_nodes}
    containers = [c for c in project_containers(profile) if c.labels.get(SERVICE_LABEL) in services]
    if not containers:
        return {"oom_killed": None, "restart_count": None}
    return {
        "oom_killed": any(c.attrs["State"].get("OOMKilled", False) for c in containers),
        "restart_count": sum(c.attrs.get("RestartCount", 0) for c in containers),
    }


def run(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile)
    secrets = load_secrets(profile)
    scenario = get_scenario(args.scenario)
    if scenario.name == "failover" and profile.topology.sentinel is None and profile.topology.cluster is None:
        raise BadInput(
            f"--scenario: failover needs a Sentinel or Cluster deployment; {profile.name} is "
            f"{profile.topology.kind} (try profiles ha or cluster)"
        )
    if args.fault == "partition" and scenario.name != "failover":
        raise BadInput("--fault: partition is a failover fault; use it with --scenario failover")
    _require_deployment(profile, secrets)
    users = args.users or scenario.users
    spawn_rate = args.spawn_rate or max(users, scenario.spawn_rate)
    duration = parse_duration("--duration", args.duration) if args.duration else scenario.duration_s
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.report) if args.report else REPORTS_DIR / f"{stamp}-{profile.name}-{scenario.name}"
    run_dir.mkdir(parents=True, exist_ok=True)
    restarts_before = _post_run_facts(profile)["restart_count"] or 0

    cmd = [sys.executable, "-m", "locust", "-f", scenario.locustfile, "--users", str(users),
           "--spawn-rate", str(spawn_rate), "--stop-timeout", str(STOP_TIMEOUT_S), "--loglevel", "WARNING",
           "--csv", str(run_dir / "locust"), "--html", str(run_dir / "locust.html")]  # fmt: skip
    if args.workers:
        cmd += ["--processes", str(args.workers)]
    if args.web:
        cmd += ["--web-host", "127.0.0.1", "--web-port", str(args.web_port)]
        if args.autostart:
            cmd += ["--autostart", "--run-time", f"{duration:.0f}s", "--autoquit", "2"]
        print(f"Locust web UI: http://127.0.0.1:{args.web_port}  (Ctrl-C to stop; the report is written on exit)")
    else:
        cmd += ["--headless", "--run-time", f"{duration:.0f}s", "--only-summary"]
    env = _child_env(profile, secrets, scenario.name, run_dir, args.rate)
    # One seeded origin database per run, made before any Locust process opens it.
    origin_path = run_dir / "origin.sqlite"
    OriginStore.open_seeded(origin_path).close()
    env["REDIS_HARNESS_ORIGIN"] = str(origin_path)
    if args.fault:
        env["REDIS_HARNESS_FAULT"] = args.fault
    timeout = None if args.web and not args.autostart else duration + 180
    try:
        result = subprocess.run(cmd, env=env, timeout=timeout, capture_output=not args.verbose, text=True)
    except subprocess.TimeoutExpired:
        raise HarnessError(f"load: locust did not finish within {timeout:.0f} s") from None
    if not (run_dir / "raw.json").is_file():
        tail = (result.stderr or "").strip().splitlines()[-5:] if not args.verbose else []
        raise HarnessError("load: the run saved no data; locust said: " + " | ".join(tail))
    _record_post_run(run_dir, profile, restarts_before)
    report = build(run_dir, profile)
    print(summary(report, run_dir))
    return 0 if report["passed"] else 1


def _record_post_run(run_dir: Path, profile: Profile, restarts_before: int) -> None:
    raw_path = run_dir / "raw.json"
    raw = json.loads(raw_path.read_text())
    facts = _post_run_facts(profile)
    facts["restarts_during_run"] = (facts["restart_count"] or 0) - restarts_before
    raw["post"] = facts
    raw_path.write_text(json.dumps(raw, default=str))


def summary(report: dict[str, Any], run_dir: Path) -> str:
    lines = [
        f"{report['scenario']} on {report['profile']}: {report['duration_s']} s, "
        f"{report['throughput_ops_s']:,} ops/s, {'PASSED' if report['passed'] else 'FAILED'}",
        f"{'request':<24}{'count':>10}{'errors':>8}{'p50 µs':>9}{'p99 µs':>9}{'p99.9 µs':>10}{'max µs':>10}",
    ]
    for name, c in report["commands"].items():
        lines.append(
            f"{name:<24}{c['count']:>10,}{c['errors']:>8,}{c['p50_us']:>9,}{c['p99_us']:>9,}"
            f"{c['p999_us']:>10,}{c['max_us']:>10,}"
        )
    hit = report["hit_ratio"]
    client = ", ".join(f"{k} {v:.1%}" for k, v in hit["client"].items() if v is not None)
    if client:
        lines.append(
            f"hit ratio: client {client}; server {hit['server']:.1%}"
            if hit["server"] is not None
            else f"hit ratio: client {client}"
        )
    for fault in report["faults"]:
        lines.append(
            f"fault {fault['kind']}: error window {fault['error_window_s']} s, p99 back after "
            f"{fault['p99_recovery_s']} s, hit ratio back after {fault['hit_ratio_recovery_s']} s, "
            f"acked writes lost {fault['acked_writes_lost']}"
            + (
                f"; new primary {fault['new_primary']} (was {fault['old_primary']}) after {fault['new_primary_s']} s"
                if fault.get("new_primary")
                else ""
            )
        )
    for gate in report["gates"]:
        verdict = "pass" if gate["passed"] else "FAIL"
        lines.append(
            f"gate {gate['name']:<24} {verdict}  value {gate['value']}  threshold {gate['threshold']}  "
            f"({gate['detail']})"
        )
    lines.append(f"report: {run_dir / 'report.html'}")
    return "\n".join(lines)


def rerender(args: argparse.Namespace) -> int:
    run_dir = Path(args.dir)
    if not (run_dir / "raw.json").is_file():
        raise BadInput(f"report: {run_dir} has no raw.json; give a folder made by `redis-harness load`")
    report = build(run_dir)
    print(summary(report, run_dir))
    return 0 if report["passed"] else 1


def register(sub: Any) -> None:
    p = sub.add_parser("load", help="run a Locust scenario against a deployment and judge it by the profile's gates")
    p.add_argument("profile")
    p.add_argument("--scenario", required=True, help=f"one of {', '.join(SCENARIOS)}")
    p.add_argument("--users", type=int, help="simulated users (default: the scenario's)")
    p.add_argument("--spawn-rate", type=float, help="users started per second")
    p.add_argument("--duration", help="run time, e.g. 60s or 2m (default: the scenario's)")
    p.add_argument("--rate", type=float, default=0, help="open loop: total operations per second")
    p.add_argument("--workers", type=int, default=0, help="Locust worker processes (distributed mode)")
    p.add_argument("--report", help="run folder (default reports/<time>-<profile>-<scenario>)")
    p.add_argument(
        "--fault",
        choices=("kill", "restart", "pause", "disconnect", "partition"),
        help="recovery: the fault (kill); failover: how the primary goes away (pause)",
    )
    p.add_argument("--web", action="store_true", help="Locust web UI on 127.0.0.1 instead of headless")
    p.add_argument("--web-port", type=int, default=WEB_PORT)
    p.add_argument("--autostart", action="store_true", help="with --web: start at once and stop after --duration")
    p.add_argument("--verbose", action="store_true", help="show Locust's own output")
    p.set_defaults(func=run)

    r = sub.add_parser("report", help="re-render a load report from its saved data")
    r.add_argument("dir")
    r.set_defaults(func=rerender)
