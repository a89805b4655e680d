"""`redis-harness verify PROFILE [--junit FILE] [-k EXPR]`."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from redis_harness.cli.common import add_command, add_profile_argument, note_owner
from redis_harness.cli.progress import shown
from redis_harness.errors import BadInput
from redis_harness.profile.credentials import target_secrets
from redis_harness.profile.model import Profile, load_profile
from redis_harness.verify import audit
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
            "redis-harness verify profiles/external.yaml   # audit a Redis the harness did not deploy",
        ],
        "Security, limits, configuration, persistence and isolation, read from the live containers and "
        "compared with the profile. Prints a verdict, then each failed check and warning (expected, found), then the "
        "counts; -v adds the table of every check. Exit 0 all passed, 1 a check failed, 2 bad input or the "
        "deployment is not up. On a target (a profile with target:, a Redis the harness did not deploy) it is an "
        "audit of what a client can see, as the admin when its password is set, else as each service user; "
        "the checks those credentials cannot run are listed as not run.",
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
    profile = load_profile(args.profile)
    if profile.target is not None:
        return _audit(profile, args)
    note_owner(profile)
    with shown("verify"):
        return run_verify(args.profile, args.junit, args.keyword, as_json=args.json, verbose=args.verbose)


def _audit(profile: Profile, args: argparse.Namespace) -> int:
    """A target: the audit of what a client can see (no containers to inspect)."""
    if args.junit or args.keyword:
        raise BadInput(f"{'--junit' if args.junit else '-k'}: not for a target's audit; use --json")
    secrets = target_secrets(profile)
    started = time.monotonic()
    with shown("verify"):
        results = audit.run_audit(profile, secrets)
    code = audit.exit_code(results)
    if args.json:
        print(json.dumps(audit.as_json(profile, results, code), indent=2))
    else:
        print(audit.format_audit(profile, secrets, results, time.monotonic() - started, verbose=args.verbose))
    return code
