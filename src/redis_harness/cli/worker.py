"""`redis-harness worker PROFILE --master-host H`: a Locust worker for a `load --master` run on another host."""

from __future__ import annotations

import argparse
from typing import Any

from redis_harness.cli.common import add_command, add_profile_argument
from redis_harness.cli.progress import shown
from redis_harness.errors import BadInput
from redis_harness.load import run as load_run
from redis_harness.profile.credentials import secrets_for
from redis_harness.profile.model import load_profile


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "worker",
        "run a Locust worker for a `redis-harness load --master` run, adding this host's load to it",
        [
            "redis-harness worker dev --master-host 10.0.0.5",
            "redis-harness worker dev --master-host 127.0.0.1 --master-port 5600",
        ],
        "The master sends the scenario and its settings (users, rate, duration); the worker reads the profile "
        "and the secrets from this host (its environment, or the profile's .env file) and needs the "
        "deployment reachable from here. "
        "Exits when the master ends the run: 0, or 130/143 when interrupted.",
    )
    add_profile_argument(p)
    p.add_argument("--master-host", required=True, metavar="H", help="address of the `load --master` host")
    p.add_argument(
        "--master-port",
        type=int,
        default=load_run.MASTER_PORT,
        metavar="P",
        help=f"its --master-port (default {load_run.MASTER_PORT})",
    )
    p.add_argument("--verbose", action="store_true", help="show Locust's own output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 0 < args.master_port < 65536:
        raise BadInput(f"--master-port: {args.master_port} is not a TCP port")
    profile = load_profile(args.profile)
    secrets = secrets_for(profile)
    with shown("worker"):
        return load_run.run_worker(profile, secrets, args.master_host, args.master_port, verbose=args.verbose)
