"""`redis-harness plan PROFILE [--json]`."""

from __future__ import annotations

import argparse
import json
import textwrap
from typing import Any

from redis_harness.cli.common import (
    add_command,
    add_profile_argument,
    deployment_profile,
    note_owner,
    note_previous_passwords,
)
from redis_harness.deploy import generations
from redis_harness.deploy.compose import check_host
from redis_harness.deploy.desired import desired_state
from redis_harness.deploy.engine import docker_client, require_compose
from redis_harness.deploy.plan import Plan, make_plan
from redis_harness.profile.credentials import load_secrets
from redis_harness.profile.units import format_size
from redis_harness.terminal import text_table, view_width

COLUMNS = ("node", "setting", "running", "desired", "how", "data_at_risk")
HEADERS = ("NODE", "SETTING", "RUNNING", "DESIRED", "HOW", "AT RISK")
# Settings whose values Redis reports in bytes: shown in binary units (--json keeps the bytes).
SIZE_SETTINGS = frozenset(
    {"maxmemory", "maxmemory-clients", "repl-backlog-size", "client-query-buffer-limit", "proto-max-bulk-len"}
)


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


def shown_value(setting: str, value: str) -> str:
    """A byte count of a size setting in binary units (93952409 -> 89.6 MiB); anything else as it is."""
    return format_size(int(value)) if setting in SIZE_SETTINGS and value.isdigit() else value


def _rules(summary: str) -> tuple[str, list[str]]:
    head, _, rules = summary.partition("; ")
    return head, rules.split()


def _listed(rules: list[str], most: int = 8) -> str:
    more = f" … ({len(rules) - most} more)" if len(rules) > most else ""
    return " ".join(rules[:most]) + more


def acl_difference(running: str, desired: str) -> tuple[str, str]:
    """Two ACL summaries ("hash …; rules") as what each side has that the other lacks: a user's
    difference is a few rules, its full rule list two hundred."""
    if "absent" in (running, desired):
        return running, desired
    (head_now, now), (head_wanted, wanted) = _rules(running), _rules(desired)
    extra = [r for r in now if r not in set(wanted)]
    missing = [r for r in wanted if r not in set(now)]
    shown_now = f"{head_now}; extra: {_listed(extra)}" if extra else head_now
    shown_wanted = f"{head_wanted}; missing: {_listed(missing)}" if missing else head_wanted
    return shown_now, shown_wanted


def format_plan(name: str, plan: Plan, width: int | None = None) -> str:
    """The pending changes as a table wrapped to the terminal (at most 100 columns), then what `up` would do."""
    if plan.in_sync:
        return f"{name}: in sync, nothing to change"
    rows = []
    for change in plan.sorted_changes():
        row = change.as_dict()
        if change.setting.startswith("ACL user "):
            row["running"], row["desired"] = acl_difference(change.running, change.desired)
        for key in ("running", "desired"):
            row[key] = shown_value(change.setting, row[key])
        rows.append([row[k] for k in COLUMNS])
    if plan.refusal:
        verdict = f"{len(plan.changes)} changes pending; `up` would refuse them: {plan.refusal.removeprefix('up: ')}"
    else:
        verdict = f"{len(plan.changes)} changes pending; `redis-harness up {name}` applies them"
    width = width or view_width()
    renewals = [
        textwrap.fill(f"renewal due: {line}", width, subsequent_indent="  ", break_on_hyphens=False)
        for line in plan.renewals
    ]
    # Node and how never wrap; the values wrap (a hash breaks where it must), none narrower than 12 columns.
    table = text_table(HEADERS, rows, width, no_wrap=frozenset({0, 4}))
    return "\n".join([table, *renewals, textwrap.fill(verdict, width, break_on_hyphens=False)])


def run(args: argparse.Namespace) -> int:
    profile = deployment_profile(args.profile, "plan")
    secrets = load_secrets(profile)
    require_compose()
    docker_client()
    check_host(profile)
    note_owner(profile)
    plan = make_plan(desired_state(profile, secrets), secrets, generations.latest(profile))
    if args.json:
        changes = [c.as_dict() for c in plan.sorted_changes()]
        refusal = plan.refusal or None
        document = {
            "profile": profile.name,
            "in_sync": plan.in_sync,
            "changes": changes,
            "renewals": plan.renewals,
            "refusal": refusal,
        }
        print(json.dumps(document, indent=2))
    else:
        print(format_plan(args.profile, plan))
    note_previous_passwords(secrets, plan.in_sync)
    return 0 if plan.in_sync else 1
