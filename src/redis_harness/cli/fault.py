"""`redis-harness fault PROFILE ACTION [--for SECONDS]`: faults for people and scripts.

`failover` takes the current primary of a Sentinel or Cluster deployment away
(`--how pause|kill|disconnect|partition`), times the new primary and gives the
old node back (redis_harness.faults.failover)."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from redis_harness.cli.common import add_command, add_profile_argument, deployment_profile, require_owned
from redis_harness.cli.progress import shown
from redis_harness.deploy import lock
from redis_harness.errors import BadInput
from redis_harness.faults import inject as faults
from redis_harness.faults.failover import HOWS, NEW_PRIMARY_TIMEOUT_S, PARTITION_HOLD_S, check, failover
from redis_harness.profile.credentials import load_secrets

MAX_FOR_S = 3600.0  # a forgotten --for must still end by itself
ACTIONS = (*faults.FAULTS, "failover")


def register(subparsers: Any) -> None:
    p = add_command(
        subparsers,
        "fault",
        "inject a fault into a deployment's Redis container: kill, restart, pause, disconnect, stop",
        [
            "redis-harness fault dev kill",
            "redis-harness fault dev pause --for 5",
            "redis-harness fault ha disconnect --node redis-1",
            "redis-harness fault ha reconnect --node redis-1",
            "redis-harness fault ha failover --how kill",
        ],
        "kill sends SIGKILL from the host (a crash; the restart policy brings it back). "
        "pause, disconnect and stop stay until undone (unpause, reconnect, start) or for --for SECONDS. "
        "failover takes the current primary away (--how), waits for a new one and gives the old node back. "
        "Every fault is noted in .state/<name>/faults.json, so verify does not count a deliberate kill as a crash.",
    )
    add_profile_argument(p)
    p.add_argument(
        "action", choices=ACTIONS, metavar="ACTION", help=f"what to do to the container: {', '.join(ACTIONS)}"
    )
    p.add_argument(
        "--for", dest="for_s", type=float, metavar="SECONDS", help="undo pause, disconnect or stop after SECONDS"
    )
    p.add_argument("--network", default="edge", choices=("edge", "internal"), help="for disconnect/reconnect")
    p.add_argument("--node", help="which data node (redis-1 …) of a multi-node deployment; default the first")
    p.add_argument(
        "--how",
        choices=HOWS,
        default="pause",
        help="failover: how the primary goes away (default pause; partition cuts it off the internal network only)",
    )
    p.add_argument(
        "--hold",
        dest="hold_s",
        type=float,
        default=PARTITION_HOLD_S,
        metavar="SECONDS",
        help=f"failover --how partition: stay partitioned this long after the failover (default {PARTITION_HOLD_S:g})",
    )
    p.add_argument("--no-wait", action="store_true", help="after kill, restart or start, do not wait until healthy")
    p.add_argument("--json", action="store_true", help="print the fault records as JSON")
    p.set_defaults(func=_cmd_fault)


def _cmd_fault(args: argparse.Namespace) -> int:
    if args.for_s is not None:
        if args.action not in faults.UNDO:
            raise BadInput(f"--for: '{args.action}' is not held; use it with {', '.join(faults.UNDO)}")
        if not 0 < args.for_s <= MAX_FOR_S:
            raise BadInput(f"--for: {args.for_s:g} is out of range; use 0 < SECONDS <= {MAX_FOR_S:g}")
    if args.action == "failover":
        if args.node or args.for_s is not None:
            raise BadInput("failover: it takes whichever node is the primary now; drop --node and --for")
        if not 0 <= args.hold_s <= MAX_FOR_S:
            raise BadInput(f"--hold: {args.hold_s:g} is out of range; use 0 <= SECONDS <= {MAX_FOR_S:g}")
        return _failover(args)
    profile = deployment_profile(args.profile, "fault")
    options: dict[str, Any] = {"network": args.network} if args.action in ("disconnect", "reconnect") else {}
    if args.node:
        known = [n.service for n in profile.data_nodes]
        if args.node not in known:
            raise BadInput(f"--node: {args.node!r} is not a data node of {profile.name}; use one of {', '.join(known)}")
        options["node"] = args.node
    # One operation at a time on a deployment: a fault never lands in the middle of an `up`.
    with lock.held(profile, f"fault {args.action}"):
        require_owned(profile, "fault")
        records = _inject(args, profile, options)
    if args.json:
        print(json.dumps([r.to_dict() for r in records], indent=2))
    return 0


def _inject(args: argparse.Namespace, profile: Any, options: dict[str, Any]) -> list[faults.FaultRecord]:
    records = []
    if args.for_s is not None:
        with faults.injected(profile, args.action, **options) as record:
            _say(args, record, f"in place after {record.in_place_after_s:.2f} s; holding {args.for_s:g} s")
            time.sleep(args.for_s)
        _say(args, record, f"undone ({faults.UNDO[args.action].__name__}) after {record.held_s:.2f} s")
        records.append(record)
    else:
        record = faults.FAULTS[args.action](profile, **options)
        records.append(record)
        _say(args, record, f"in place after {record.in_place_after_s:.2f} s")
        if args.action in faults.UNDO:
            undo = faults.UNDO[args.action].__name__
            _say(args, record, f"stays until `redis-harness fault {args.profile} {undo}`")
    if args.action in ("kill", "restart", "start") and not args.no_wait:
        waited = faults.wait_running(profile, node=args.node, healthy=True)
        records[-1].detail["healthy_after_s"] = round(records[-1].in_place_after_s + waited, 3)
        _say(args, records[-1], f"running and healthy again {waited:.2f} s later")
    return records


def _failover(args: argparse.Namespace) -> int:
    profile = deployment_profile(args.profile, "fault")
    check(profile, args.how)
    secrets = load_secrets(profile)
    with lock.held(profile, "fault failover"), shown("failover"):
        require_owned(profile, "fault")
        result = failover(profile, secrets, args.how, timeout_s=NEW_PRIMARY_TIMEOUT_S, hold_s=args.hold_s)
    if args.json:
        print(json.dumps([result.to_dict()], indent=2))
    else:
        record = result.record
        print(
            f"failover ({args.how}) {result.old_primary}: in place after {record.in_place_after_s:.2f} s; "
            f"new primary {result.new_primary} after {result.new_primary_s:.2f} s; "
            f"{result.old_primary} given back after {record.held_s:.2f} s"
        )
    return 0


def _say(args: argparse.Namespace, record: faults.FaultRecord, text: str) -> None:
    if not args.json:
        print(f"{record.kind} {record.container}: {text}")
