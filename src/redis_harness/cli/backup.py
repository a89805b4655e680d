"""`redis-harness backup PROFILE [--out FILE]`: a consistent snapshot of a deployment in one file."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from redis_harness.cli.common import add_command, add_profile_argument
from redis_harness.cli.progress import shown
from redis_harness.deploy.backup import backup
from redis_harness.profile.credentials import load_secrets
from redis_harness.profile.model import load_profile


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "backup",
        "write a consistent snapshot of a deployment (RDB and manifest) into one file",
        [
            "redis-harness backup dev",
            "redis-harness backup ha --out /srv/backups/ha-monday.tar",
            "redis-harness restore dev backups/dev/dev-20261204T101500Z.tar",
        ],
        "BGSAVE on a replica that has caught up with the primary when the topology has one (the primary "
        "does not fork), else on the primary; the RDB is copied out of the container and written with a "
        "manifest (SHA-256 of the RDB, Redis version, profile, topology, node, key count, time) into a tar "
        "file, mode 0600: it holds the data. Default file: backups/<name>/<name>-<UTC time>.tar; an "
        "existing file is never overwritten. A Redis Cluster is refused.",
    )
    add_profile_argument(p)
    p.add_argument("--out", type=Path, metavar="FILE", help="where to write the backup (a new file)")
    p.add_argument("--json", action="store_true", help="print the manifest and the file's path as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile)
    secrets = load_secrets(profile)
    with shown(f"backup {profile.name}"):
        result = backup(profile, secrets, args.out)
    m = result.manifest
    if args.json:
        print(json.dumps({"path": str(result.path), "seconds": round(result.seconds, 3), **asdict(m)}, indent=2))
        return 0
    where = f"{m.role} {m.node}" + (f" ({result.why_primary})" if result.why_primary else "")
    print(
        f"backup {profile.name}: {m.keys} keys ({m.keys_with_ttl} with a TTL) from {where}, "
        f"Redis {m.redis_version}, {m.rdb_bytes / 1e6:.1f} MB in {result.seconds:.1f} s"
    )
    print(f"  {result.path}  sha256 {m.rdb_sha256[:16]}…")
    return 0
