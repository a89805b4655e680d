"""`redis-harness rollback PROFILE`."""

from __future__ import annotations

import argparse
from typing import Any

from redis_harness.cli.common import add_command, add_profile_argument, deployment_profile
from redis_harness.cli.progress import shown
from redis_harness.deploy import compose
from redis_harness.profile.credentials import load_secrets


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "rollback",
        "restore the deployment's previous generation (the settings of the `up` before the last)",
        ["redis-harness rollback dev", "redis-harness rollback dev && redis-harness status dev"],
        "Each successful `up` records a generation under .state/PROFILE/generations/ (rendered files, image, "
        "a fingerprint of the secrets). This puts the one before the latest back, live where it can and "
        "with new containers (data volume kept) where it must, and records it as a new generation. The "
        "secrets (.env, or .env.<name>) must be the ones that generation was made with. The profile file "
        "is not changed: "
        "the next `up` applies it again.",
    )
    add_profile_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    profile = deployment_profile(args.profile, "rollback")
    secrets = load_secrets(profile)
    with shown(f"rollback {profile.name}"):
        restored, recorded = compose.rollback(profile, secrets)
    print(
        f"rollback {profile.project}: generation {restored.number} restored "
        f"(recorded as generation {recorded.number}); the profile itself is unchanged"
    )
    return 0
