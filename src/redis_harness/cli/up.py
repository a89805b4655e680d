"""`redis-harness up PROFILE`."""

from __future__ import annotations

import argparse
import time
from typing import Any

from redis_harness.cli.common import add_command, add_profile_argument
from redis_harness.deploy import compose
from redis_harness.deploy.status import collect, format_status
from redis_harness.profile.credentials import load_secrets
from redis_harness.profile.model import load_profile


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "up",
        "make the running deployment what the profile says, and wait until it is healthy",
        ["redis-harness up dev", "redis-harness up profiles/mine.yaml"],
        "Renders compose/PROFILE/, makes the image ready (present, pulled, or built offline), starts the "
        "containers with Docker Compose and waits for health (and for replicas, Sentinels or the Cluster to settle).",
    )
    add_profile_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile)
    secrets = load_secrets(profile)
    started = time.monotonic()
    result = compose.up(profile, secrets)
    print(
        f"up {profile.project}: image {profile.image.ref} ({result.image_source}), "
        f"healthy in {time.monotonic() - started:.1f} s"
    )
    print(format_status(collect(profile, secrets)))
    return 0
