"""`redis-harness plan PROFILE [--json]`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from redis_harness.cli.common import add_command, add_profile_argument, note_owner
from redis_harness.deploy import generations
from redis_harness.deploy.desired import desired_state
from redis_harness.deploy.engine import docker_client, require_compose
from redis_harness.deploy.plan import Plan, make_plan
from redis_harness.profile.credentials import load_secrets
from redis_harness.profile.model import load_profile

COLUMNS = ("node", "setting", "running", "desired", "how", "data_at_risk")


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "plan",
        "what `up` would change on the running deployment, per node, and how",
        ["redis-harness plan dev", "redis-harness plan dev --json | jq '.changes[].setting'"],
        "Compares the running deployment with the profile, its secrets and image; writes nothing. "
        "HOW is live (CONFIG SET, ACL LOAD), restart (the same container reads the rewritten files), "
        "recreate (a new container, the data volume kept), create or remove. Exit 0 in sync, "
        "1 when changes are pending, 2 on bad input.",
    )
    add_profile_argument(p)
    p.add_argument("--json", action="store_true", help="print one JSON object (for scripts)")
    p.set_defaults(func=run)


def format_plan(name: str, plan: Plan) -> str:
    if plan.in_sync:
        return f"{name}: in sync, nothing to change"
    rows = [COLUMNS] + [tuple(c.as_dict()[k] for k in COLUMNS) for c in plan.sorted_changes()]
    widths = [min(max(len(str(r[i])) for r in rows), 48) for i in range(len(COLUMNS))]
    lines = ["  ".join(str(v)[:48].ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines[0] = lines[0].upper()
    if plan.refusal:
        reason = plan.refusal.removeprefix("up: ")
        lines.append(f"{len(plan.changes)} changes pending; `up` would refuse them: {reason}")
    else:
        lines.append(f"{len(plan.changes)} changes pending; `redis-harness up {name}` applies them")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile)
    secrets = load_secrets(profile)
    require_compose()
    docker_client()
    note_owner(profile)
    plan = make_plan(desired_state(profile, secrets), secrets, generations.latest(profile))
    if args.json:
        changes = [c.as_dict() for c in plan.sorted_changes()]
        refusal = plan.refusal or None
        document = {"profile": profile.name, "in_sync": plan.in_sync, "changes": changes, "refusal": refusal}
        print(json.dumps(document, indent=2))
    else:
        print(format_plan(args.profile, plan))
    return 0 if plan.in_sync else 1
