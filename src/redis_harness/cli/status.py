"""`redis-harness status PROFILE [--json]`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from redis_harness.cli.common import add_command, add_profile_argument, deployment_profile
from redis_harness.deploy.status import collect, format_status
from redis_harness.errors import BadInput
from redis_harness.profile.credentials import load_secrets


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "status",
        "what the deployment is doing now: containers, health, memory, maxmemory, policy, endpoint",
        ["redis-harness status dev", "redis-harness status dev --json | jq .healthy"],
        "Exit 0 only when every container runs and is healthy, none was OOM-killed or crash-restarted "
        "since the last `up`, and every data node answers an authenticated PING with the profile's secrets "
        "(.env, or .env.<name>); "
        "1 otherwise, with the reason. Server figures are read live, else shown as unknown.",
    )
    add_profile_argument(p)
    p.add_argument("--json", action="store_true", help="print one JSON object (for scripts)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    profile = deployment_profile(args.profile, "status")
    try:
        secrets = load_secrets(profile)
    except BadInput:
        secrets = None  # status still shows the containers, and says the servers are unchecked
    status = collect(profile, secrets)
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    if not status["healthy"]:
        print(
            f"redis-harness: status: {profile.project} is not healthy: {'; '.join(status['problems'])}", file=sys.stderr
        )
    return 0 if status["healthy"] else 1
