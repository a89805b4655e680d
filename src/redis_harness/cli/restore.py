"""`redis-harness restore PROFILE FILE`: load a backup into a deployment."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from redis_harness.cli.common import add_command, add_profile_argument
from redis_harness.cli.progress import shown
from redis_harness.deploy.restore import restore
from redis_harness.profile.credentials import load_secrets
from redis_harness.profile.model import load_profile


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "restore",
        "replace a deployment's data with a backup file written by `backup`",
        [
            "redis-harness restore dev backups/dev/dev-20261204T101500Z.tar",
            "redis-harness restore ci backups/dev/dev-20261204T101500Z.tar   # into another deployment",
        ],
        "The whole file is checked first: a file that is not a backup, is truncated or corrupted (SHA-256 "
        "of the RDB), or was written by a newer Redis than the deployment runs is refused in one line and "
        "nothing changes. Then every node stops (Sentinels first), the RDB becomes the primary's data (and "
        "its AOF's base, so appendonly yes loads it), the replicas' data is removed, and every node starts "
        "again; the replicas resync from the restored primary. Every key the deployment held is replaced; "
        "keys that expired since the backup stay gone. A Redis Cluster is refused.",
    )
    add_profile_argument(p)
    p.add_argument("file", type=Path, metavar="FILE", help="a backup file written by `redis-harness backup`")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile)
    secrets = load_secrets(profile)
    with shown(f"restore {profile.name}"):
        result = restore(profile, secrets, args.file)
    m = result.manifest
    if args.json:
        outcome = {"keys": result.keys, "primary": result.primary, "seconds": round(result.seconds, 3)}
        print(json.dumps({**outcome, "backup": {"path": str(args.file), "profile": m.profile, "keys": m.keys}}))
        return 0
    print(
        f"restore {profile.name}: {result.keys} keys restored into {result.primary} in {result.seconds:.1f} s "
        f"(the backup of {m.profile} from {m.created} held {m.keys})"
    )
    return 0
