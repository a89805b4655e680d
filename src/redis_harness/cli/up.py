"""`redis-harness up PROFILE`."""

from __future__ import annotations

import argparse
import time
from typing import Any

from redis_harness.cli.common import (
    add_command,
    add_profile_argument,
    add_take_over_argument,
    deployment_profile,
    note_previous_passwords,
)
from redis_harness.cli.progress import shown
from redis_harness.deploy import compose
from redis_harness.deploy.status import collect, format_status
from redis_harness.profile.credentials import load_secrets


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "up",
        "make the running deployment what the profile says, and wait until it is healthy",
        [
            "redis-harness up dev",
            "redis-harness plan dev && redis-harness up dev",
            "redis-harness up profiles/mine.yaml",
            "redis-harness up dev --take-over   # a deployment another checkout on this host made",
        ],
        "Compares the running deployment with the profile, its secrets and image, and applies the "
        "difference with the least disruption: settings Redis takes at run time live (CONFIG SET, ACL "
        "LOAD), the rest with a restart or a new container that keeps the data volume. Then it waits for "
        "health and checks settings, passwords and keys; when that fails it restores the previous "
        "generation and exits 1. Every check that can refuse runs before anything is written.",
    )
    add_profile_argument(p)
    add_take_over_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    profile = deployment_profile(args.profile, "up")
    secrets = load_secrets(profile)
    started = time.monotonic()
    with shown(f"up {profile.name}"):
        result = compose.up(profile, secrets, take_over=args.take_over)
    if result.taken_over_from is not None:
        print(f"up: took {profile.project} over from {result.taken_over_from.describe()}")
    outcome = result.outcome
    if outcome.generation is None:
        what = "in sync, nothing to change"
    else:
        hows: dict[str, int] = {}
        for change in outcome.plan.changes:
            hows[change.how] = hows.get(change.how, 0) + 1
        applied = ", ".join(f"{n} {how}" for how, n in sorted(hows.items())) or "first deployment"
        what = f"{applied}; generation {outcome.generation.number}"
    print(f"up {profile.project}: {what}, healthy in {time.monotonic() - started:.1f} s")
    note_previous_passwords(secrets, in_sync=True)
    # The image beside the status's own lines, in its label column: one line each, within 100 columns.
    print(f"image      {profile.image.ref} ({result.image_source})")
    print(format_status(collect(profile, secrets)))
    return 0
