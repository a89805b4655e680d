"""`redis-harness profile schema [--check]`."""

from __future__ import annotations

import argparse
from typing import Any

from redis_harness import paths
from redis_harness.cli.common import add_command
from redis_harness.profile import schema


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "profile",
        "publish the profile model: profiles/profile.schema.json and the settings table in docs/profiles.md",
        ["redis-harness profile schema", "redis-harness profile schema --check   # exit 1 when either is stale"],
        "Both are generated from the model's fields and descriptions; editors read the schema through the "
        f"`{schema.MODELINE}` line at the top of every profile.",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION", help="what to do with it")
    q = add_command(
        actions,
        "schema",
        "regenerate profiles/profile.schema.json and the settings table in docs/profiles.md from the model",
        ["redis-harness profile schema", "redis-harness profile schema --check"],
    )
    q.add_argument("--check", action="store_true", help="write nothing; exit 1 if either differs from the model")
    q.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.check:
        stale = schema.stale(paths.ROOT)
        for path in stale:
            print(f"{path.relative_to(paths.ROOT)} is out of date; run `redis-harness profile schema`")
        if not stale:
            print("profiles/profile.schema.json and the settings table in docs/profiles.md are up to date")
        return 1 if stale else 0
    changed = schema.write(paths.ROOT)
    print("wrote " + ", ".join(str(p.relative_to(paths.ROOT)) for p in changed) if changed else "already up to date")
    return 0
