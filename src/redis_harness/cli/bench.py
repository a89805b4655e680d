"""`redis-harness bench PROFILE`."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from redis_harness.bench.measure import DEFAULT_DURATION, check_ready, check_twin, format_table, measure
from redis_harness.cli.common import add_command, add_profile_argument, deployment_profile, require_owned
from redis_harness.cli.progress import shown
from redis_harness.errors import BadInput
from redis_harness.load.run import REPORTS_DIR
from redis_harness.profile.credentials import load_secrets, secrets_for
from redis_harness.profile.model import load_profile
from redis_harness.profile.units import parse_duration
from redis_harness.terminal import view_width


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "bench",
        "redis-benchmark beside the harness's raw scenario on one deployment: throughput and latency",
        [
            "redis-harness bench ci",
            "redis-harness bench dev --duration 10s",
            "redis-harness bench tlsci --plaintext ci",
        ],
        "Both sides run GET and SET 1:1 over 10,000 keys with 3-byte values against the same primary (the "
        "one Sentinel names; on a Cluster target each slot's, with redis-benchmark --cluster), so the ratio "
        "between them is the harness's own overhead. Over TLS when the profile has security.tls on; "
        "--plaintext measures a TLS-off deployment of the same shape too: the TLS cost. On a target bench "
        "needs the target's admin, which creates and removes redis-benchmark's temporary user.",
    )
    add_profile_argument(p)
    p.add_argument("--duration", default=DEFAULT_DURATION, help=f"time per run, e.g. 5s (default {DEFAULT_DURATION})")
    p.add_argument(
        "--plaintext",
        metavar="PROFILE",
        help="a TLS-off deployment of the same shape, measured after PROFILE: the TLS cost",
    )
    p.add_argument("--report", metavar="DIR", help="run folder (default reports/<time>-<profile>-bench)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Whole seconds of at least 1: Locust's --run-time takes whole seconds.
    duration_s = max(1.0, round(parse_duration("--duration", args.duration)))
    profile = load_profile(args.profile)
    secrets = secrets_for(profile)
    require_owned(profile, "bench")
    check_ready(profile, secrets)  # refuse before any folder is made
    plaintext = None
    if args.plaintext and profile.target is not None:
        raise BadInput("--plaintext: compares two deployments of the harness; leave it out on a target")
    if args.plaintext:
        twin = deployment_profile(args.plaintext, "bench --plaintext")
        check_twin(profile, twin)
        twin_secrets = load_secrets(twin)
        require_owned(twin, "bench")
        check_ready(twin, twin_secrets)
        plaintext = (twin, twin_secrets)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.report) if args.report else REPORTS_DIR / f"{stamp}-{profile.name}-bench"
    run_dir.mkdir(parents=True, exist_ok=True)
    with shown("bench"):
        result = measure(profile, secrets, run_dir, duration_s, plaintext)
    (run_dir / "bench.json").write_text(json.dumps(result, indent=2))
    print(format_table(result, view_width()))
    print(f"\nbench.json: {run_dir / 'bench.json'}")
    return 0
