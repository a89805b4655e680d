"""Failover: take the current primary of a Sentinel or Cluster deployment away, time how long
until another node is primary, then give the old one back (it rejoins as a replica).

How the primary goes away (`how`):
- pause       the cgroup freezer: the process stops, connections hang.
- kill        SIGKILL, then kept down (a manual stop, which the restart policy leaves
              alone) until a new primary is named; a plain kill would not do: the restart
              policy brings the node back in a fraction of a second, before anyone noticed.
- disconnect  off both of its networks (`edge`, which carries its published port, and
              `internal`, where the other nodes and the Sentinels meet it).
- partition   off `internal` only: the Sentinels and replicas lose it, its own clients do
              not, and what it accepts meanwhile is discarded when it rejoins. The partition
              is held `hold_s` longer after the failover, as a real one would outlast it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis_harness.deploy.readiness import current_primary, wait_for_new_primary
from redis_harness.errors import BadInput
from redis_harness.faults import inject
from redis_harness.faults.inject import FaultRecord
from redis_harness.faults.sentinel_steps import read_steps
from redis_harness.profile.credentials import Secrets
from redis_harness.profile.model import Profile
from redis_harness.progress import note

HOWS = ("pause", "kill", "disconnect", "partition")
NEW_PRIMARY_TIMEOUT_S = 60.0
PARTITION_HOLD_S = 5.0


@dataclass
class Failover:
    how: str
    old_primary: str
    new_primary: str
    record: FaultRecord  # the fault on the old primary (in place, reverted)
    new_primary_at: float  # time.time() when the new primary was seen
    new_primary_s: float  # from the fault requested to the new primary seen
    sentinel_steps: dict[str, Any] | None = None  # Sentinel: when each step was logged (faults.sentinel_steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "how": self.how,
            "old_primary": self.old_primary,
            "new_primary": self.new_primary,
            "new_primary_s": round(self.new_primary_s, 3),
            "new_primary_at": self.new_primary_at,
            "sentinel_steps": self.sentinel_steps,
            "record": self.record.to_dict(),
        }


def _take_away(profile: Profile, node: str, how: str, hold_s: float) -> tuple[FaultRecord, Callable[[], None]]:
    """Put the fault in place; return its record and what undoes it."""
    if how == "kill":
        record = inject.kill(profile, node=node)
        inject.stop(profile, node=node, grace_s=0)  # keep it down: a manual stop is not restarted
        return record, lambda: inject.start(profile, node=node)
    if how == "disconnect":
        record = inject.disconnect(profile, "edge", node=node)
        inject.disconnect(profile, "internal", node=node)

        def reconnect_both() -> None:
            inject.reconnect(profile, "internal", node=node)
            inject.reconnect(profile, "edge", node=node)

        return record, reconnect_both
    if how == "partition":
        record = inject.disconnect(profile, "internal", node=node)

        def heal() -> None:
            note(f"holding the partition of {node} {hold_s:g} s longer")
            time.sleep(hold_s)
            inject.reconnect(profile, "internal", node=node)

        return record, heal
    record = inject.pause(profile, node=node)
    return record, lambda: inject.unpause(profile, node=node)


def check(profile: Profile, how: str) -> None:
    """BadInput unless `how` is known and the deployment promotes replicas by itself."""
    if how not in HOWS:
        raise BadInput(f"--how: {how!r} is not a way to take a primary away; use one of {', '.join(HOWS)}")
    if profile.topology.sentinel is None and profile.topology.cluster is None:
        raise BadInput(
            f"failover: profile '{profile.name}' has nothing that promotes a replica; "
            "use a Sentinel or Cluster profile (ha, cluster)"
        )


def failover(
    profile: Profile,
    secrets: Secrets,
    how: str = "pause",
    *,
    timeout_s: float = NEW_PRIMARY_TIMEOUT_S,
    hold_s: float = PARTITION_HOLD_S,
) -> Failover:
    """Take whichever node is the primary now away by `how`, wait for a new primary, restore.

    The old node is given back whether or not a new primary appeared; HarnessError when none
    did within timeout_s."""
    check(profile, how)
    old = current_primary(profile, secrets) or profile.data_nodes[0].service
    note(f"taking the primary {old} away ({how})")
    record, undo = _take_away(profile, old, how, hold_s)
    try:
        note(f"waiting for a new primary (up to {timeout_s:g} s)")
        new, waited_s = wait_for_new_primary(profile, secrets, old, timeout_s)
        seen_at = time.time()
    finally:
        note(f"giving {old} back")
        undo()
        record.mark_reverted()
    steps = read_steps(profile, record.requested_at).to_dict() if profile.topology.sentinel is not None else None
    return Failover(how, old, new, record, seen_at, record.in_place_after_s + waited_s, steps)
