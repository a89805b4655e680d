"""`redis-harness verify PROFILE [--junit FILE] [-k EXPR]`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from redis_harness.cli.common import add_command, add_profile_argument, note_owner
from redis_harness.cli.progress import shown
from redis_harness.profile.model import load_profile
from redis_harness.verify.runner import run_verify


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "verify",
        "prove the running containers match the profile (pytest + testinfra); exit 1 names the failed checks",
        [
            "redis-harness verify dev",
            "redis-harness verify ci --junit reports/verify.xml",
            "redis-harness verify dev -k acl   # only the ACL checks",
            "redis-harness verify dev --json | jq '.checks[] | select(.status != \"pass\")'",
        ],
        "Security, limits, configuration, persistence and isolation, read from the live containers and "
        "compared with the profile. Prints a verdict, then each failed check and warning (expected, found), then the "
        "counts; -v adds the table of every check. Exit 0 all passed, 1 a check failed, 2 bad input or the "
        "deployment is not up.",
    )
    add_profile_argument(p)
    p.add_argument("--junit", metavar="FILE", type=Path, help="also write the results as JUnit XML to FILE")
    p.add_argument(
        "--json", action="store_true", help="print every check as JSON, with the full expected and found text"
    )
    p.add_argument("-k", dest="keyword", metavar="EXPR", help="run only the checks matching EXPR (pytest -k syntax)")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="also print the table of every check (failures come first)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    note_owner(load_profile(args.profile))
    with shown("verify"):
        return run_verify(args.profile, args.junit, args.keyword, as_json=args.json, verbose=args.verbose)
