"""A planned change of primary under Sentinel, before the primary's container is replaced.

Writes on the old primary are paused until the replicas have caught up with
it, then Sentinel fails over. The pause has to end once a new primary is
chosen: while it lasts, the old primary does not take Sentinel's demotion
either (found on Redis 7.0). Writes that clients sent during the pause may
then run on the old primary before it is demoted and be lost with its
resync: not ruled out (the ha rolling test reports the count; 0 of 6,515 in
the one run measured, 184 of 6,687 without the pause); Redis's own FAILOVER
command, coordinated with Sentinel, would close it.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from redis_harness import progress
from redis_harness.deploy import running
from redis_harness.deploy.connect import connect_node
from redis_harness.deploy.readiness import current_primary, wait_for_new_primary
from redis_harness.errors import HarnessError
from redis_harness.profile.credentials import Secrets
from redis_harness.profile.model import Profile

PAUSE_MS = 20_000  # the longest writes wait; the pause ends as soon as the switch is done
CATCH_UP_S = 5.0
FAILOVER_TIMEOUT_S = 15.0


def _replicas_caught_up(info: dict[str, Any]) -> bool:
    offset = int(info.get("master_repl_offset", 0))
    replicas = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
    return bool(replicas) and all(int(r.get("offset", -1)) >= offset for r in replicas)


def _wait(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise HarnessError(f"up: switchover: {what} not within {timeout_s:.0f} s")
        time.sleep(0.05)


def switch_primary_away(profile: Profile, secrets: Secrets, service: str, container: Any) -> str:
    """Make another node the primary before `service` (the primary now) is replaced; returns it."""
    spec = profile.topology.sentinel
    assert spec is not None
    old = running.node_client(container, profile.network.container_port, profile.network.host, secrets.admin.password)
    sentinel = connect_node(profile, profile.sentinel_nodes[0], None, secrets.default.password)
    try:
        progress.note(f"{service}: pausing writes until the replicas have every one")
        old.execute_command("CLIENT", "PAUSE", PAUSE_MS, "WRITE")
        try:
            _wait(lambda: _replicas_caught_up(old.info("replication")), CATCH_UP_S, "replicas catching up")
            progress.note(f"{service}: SENTINEL FAILOVER")
            sentinel.execute_command("SENTINEL", "FAILOVER", spec.master_name)
            new, waited = wait_for_new_primary(profile, secrets, service, timeout_s=FAILOVER_TIMEOUT_S)
        finally:
            old.execute_command("CLIENT", "UNPAUSE")
        _wait(lambda: old.info("replication").get("role") == "slave", FAILOVER_TIMEOUT_S, "old primary demoted")
    except redis.RedisError as exc:
        raise HarnessError(f"up: switchover away from {service} failed: {exc}") from None
    finally:
        old.close()
        sentinel.close()
    progress.note(f"{new} is the primary ({waited:.1f} s); replacing {service}")
    return new


def needs_switch(profile: Profile, secrets: Secrets, service: str) -> bool:
    return profile.topology.sentinel is not None and current_primary(profile, secrets) == service
