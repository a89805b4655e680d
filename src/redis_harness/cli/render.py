"""`redis-harness render PROFILE [--check]`."""

from __future__ import annotations

import argparse
from typing import Any

from redis_harness import paths
from redis_harness.cli.common import add_command, add_profile_argument
from redis_harness.errors import BadInput
from redis_harness.profile.credentials import load_secrets
from redis_harness.profile.model import load_profile
from redis_harness.render.files import differences, render


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "render",
        "write compose/PROFILE/ (compose file, redis.conf, users.acl) from the profile and secrets",
        ["redis-harness render dev", "redis-harness render ci --check   # exit 1 when compose/ci/ is stale"],
        "The folder is rendered aside and swapped into place only when complete; no password is written to it.",
    )
    add_profile_argument(p)
    p.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if compose/PROFILE/ differs from a fresh render"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile)
    secrets = load_secrets(profile)
    if args.check:
        changed = differences(profile, secrets)
        if changed:
            print(
                f"compose/{profile.name}/ is out of date ({', '.join(changed)}); "
                f"run `redis-harness render {args.profile}`"
            )
            return 1
        print(f"compose/{profile.name}/ is up to date")
        return 0
    try:
        target = render(profile, secrets)
    except OSError as exc:  # the render went to a temporary folder, which is gone again: nothing was written
        folder = paths.deployment_dir(profile.name)
        raise BadInput(
            f"render: cannot write {folder}/ ({exc.strerror or exc}); make it and {folder.parent}/ writable "
            f"(check permissions and `lsattr -d` for the immutable flag), then run it again"
        ) from None
    where = target.relative_to(paths.ROOT) if target.is_relative_to(paths.ROOT) else target
    names = sorted(p.name for p in target.iterdir() if not p.name.startswith("."))
    print(f"rendered {where}/: {' '.join(names)}")
    return 0
