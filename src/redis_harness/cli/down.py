"""`redis-harness down PROFILE [--volumes]`."""

from __future__ import annotations

import argparse
from typing import Any

from redis_harness.cli.common import add_command, add_profile_argument, add_take_over_argument, deployment_profile
from redis_harness.deploy import compose
from redis_harness.render.files import release_claim


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "down",
        "stop and remove the deployment's containers and networks (the data volume stays)",
        ["redis-harness down dev", "redis-harness down dev --volumes   # also delete the data"],
    )
    add_profile_argument(p)
    p.add_argument("--volumes", action="store_true", help="also remove the data volume (every key is lost)")
    add_take_over_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    profile = deployment_profile(args.profile, "down")
    previous_owner = compose.down(profile, volumes=args.volumes, take_over=args.take_over)
    if previous_owner is not None:
        print(f"down: took {profile.project} over from {previous_owner.describe()}")
    if args.volumes:  # containers and data gone: another profile file may now take the name
        release_claim(profile)
    print(f"down {profile.project}" + (" (data volume removed)" if args.volumes else " (data volume kept)"))
    return 0
