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
from redis_harness.monitor.figures import DeploymentReader, deployment_figures
from redis_harness.monitor.view import as_json as as_json_document
from redis_harness.monitor.view import render
from redis_harness.profile.credentials import secrets_for
from redis_harness.profile.model import Profile, load_profile
from redis_harness.terminal import plain_text, view_width


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
        "the slowest recent commands, keys without a TTL under a volatile-* policy, replication and cluster state, "
        "and with TLS the days until the soonest certificate a node serves expires (alert cert_expiry within "
        "security.tls.renew_before). "
        "The monitor's own commands (INFO, a sample of 200 keys' TTLs) are taken out of ops/s and the hit ratio. "
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
    secrets = secrets_for(profile)
    note_owner(profile)
    interval = min(max(args.interval, 0.2), 60.0)
    with DeploymentReader(profile, secrets) as reader:
        if args.once:
            return _once(profile, reader, interval, as_json=args.json)
        return _live(profile, reader, interval, args.count)


def _renew_before(profile: Profile) -> float | None:
    """The cert_expiry alert's threshold: renew_before, with TLS on."""
    return profile.tls.renew_before_s if profile.tls.enabled else None


def _once(profile: Profile, reader: DeploymentReader, interval: float, *, as_json: bool) -> int:
    before = reader.read(full=False)  # the counters only: the baseline of the interval's rates
    time.sleep(interval)
    figures = deployment_figures(reader.read(), before) | {"cert_expiry": reader.cert_expiry()}
    states = evaluate(figures, profile.alerts, _renew_before(profile))
    if as_json:
        document = as_json_document(figures, states)
        if profile.target is not None:
            document = {"target": profile.target.where, "read_as": reader.user, **document}
        print(json.dumps(document, indent=2, default=str))
    else:
        view = render(f"monitor {_what(profile)}: one interval of {interval:g} s", figures, states, {})
        if sys.stdout.isatty():
            Console(width=view_width()).print(view)
        else:  # a log or a pipe: plain text, no trailing blanks
            print(plain_text(view))
    return 1 if any(s.firing for s in states) else 0


def _live(profile: Profile, reader: DeploymentReader, interval: float, count: int) -> int:
    before = reader.read()
    since = FiringSince()
    console = Console(width=view_width())
    states: list[Any] = []
    refreshes = 0
    with Live(console=console, refresh_per_second=4, screen=console.is_terminal and not count) as live:
        while not count or refreshes < count:
            time.sleep(interval)
            readings = reader.read()
            figures = deployment_figures(readings, before) | {"cert_expiry": reader.cert_expiry()}
            before = readings
            states = evaluate(figures, profile.alerts, _renew_before(profile))
            title = f"monitor {_what(profile)}  {time.strftime('%H:%M:%S')}  every {interval:g} s, Ctrl-C stops"
            live.update(render(title, figures, states, since.update(states, time.time())))
            refreshes += 1
    sys.stdout.flush()
    return 1 if any(s.firing for s in states) else 0


def _what(profile: Profile) -> str:
    """The deployment's compose project, or the target's name and address."""
    return f"{profile.name} ({profile.target.where})" if profile.target else profile.project
