"""`redis-harness monitor PROFILE [--once] [--json]`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from rich.console import Console
from rich.live import Live

from redis_harness.cli.common import add_command, add_profile_argument, note_owner
from redis_harness.monitor.alerts import FiringSince, evaluate
from redis_harness.monitor.figures import deployment_figures, read_deployment
from redis_harness.monitor.view import as_json, render
from redis_harness.profile.credentials import load_secrets
from redis_harness.profile.model import load_profile


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "monitor",
        "watch a running deployment: live figures per node and the profile's alerts (ok / firing)",
        [
            "redis-harness monitor dev",
            "redis-harness monitor ci --once --json | jq '.alerts[] | select(.firing)'",
            "redis-harness monitor ha --count 30   # 30 refreshes, then exit",
        ],
        "Refreshed every second: ops/s, hit and miss ratio over the last interval, memory against maxmemory and "
        "the container limit, evictions and expirations per second, clients per ACL user, rejected connections, "
        "the slowest recent commands, keys without a TTL under a volatile-* policy, replication and cluster state. "
        "Exit 0 when no alert fires, 1 when one does (with --once, or at the end of --count), 2 on bad input or "
        "when the deployment is not up.",
    )
    add_profile_argument(p)
    p.add_argument("--once", action="store_true", help="take one interval's figures, print them and exit")
    p.add_argument("--json", action="store_true", help="with --once: print one JSON object (for scripts and cron)")
    p.add_argument("--interval", type=float, default=1.0, metavar="S", help="seconds between refreshes (default 1)")
    p.add_argument("--count", type=int, default=0, metavar="N", help="stop after N refreshes (default: until Ctrl-C)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile)
    secrets = load_secrets(profile)
    note_owner(profile)
    interval = min(max(args.interval, 0.2), 60.0)
    before = read_deployment(profile, secrets)
    if args.once:
        time.sleep(interval)
        figures = deployment_figures(read_deployment(profile, secrets), before)
        states = evaluate(figures, profile.alerts)
        if args.json:
            print(json.dumps(as_json(figures, states), indent=2, default=str))
        else:
            Console(width=None if sys.stdout.isatty() else 160).print(
                render(f"monitor {profile.project}", figures, states, {})
            )
        return 1 if any(s.firing for s in states) else 0

    since = FiringSince()
    console = Console()
    states: list[Any] = []
    refreshes = 0
    with Live(console=console, refresh_per_second=4, screen=console.is_terminal and not args.count) as live:
        while not args.count or refreshes < args.count:
            time.sleep(interval)
            readings = read_deployment(profile, secrets)
            figures = deployment_figures(readings, before)
            before = readings
            states = evaluate(figures, profile.alerts)
            stamp = time.strftime("%H:%M:%S")
            title = f"monitor {profile.project}  {stamp}  (every {interval:g} s, Ctrl-C to stop)"
            live.update(render(title, figures, states, since.update(states, time.time())))
            refreshes += 1
    sys.stdout.flush()
    return 1 if any(s.firing for s in states) else 0
