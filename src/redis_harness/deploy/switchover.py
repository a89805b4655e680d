"""A planned change of primary under Sentinel, before the primary's container is replaced.

Writes on the old primary are paused until the replicas have caught up with
it, then Sentinel fails over. Once the Sentinels name the new primary, the
old one is made its replica by the harness, still paused: Sentinel itself
would demote it only about 10 s later, and meanwhile it answers every write
of the clients still connected to it with NOREPLICAS (its replicas follow the
new primary). The paused writes then run on a replica and get READONLY, which
sends redis-py's and ioredis's Sentinel clients to the new primary: no write
is acknowledged by a node that is about to throw it away.

The old primary is replaced only once every Sentinel names the new one. The
Sentinel that ran the failover is the last to switch (after the other replicas
are reconfigured); a client that asked it meanwhile was sent to the old
primary's new container, which starts as a primary of its own until Sentinel
demotes it ~10 s later, and answered NOREPLICAS all that time. For the same
reason a data node that gets a new container while another is the primary is
made that primary's replica as soon as it answers (`follow_primary`).
"""

from __future__ import annotations

import time
from typing import Any

import redis

from redis_harness import progress
from redis_harness.deploy import running
from redis_harness.deploy.connect import connect_node
from redis_harness.deploy.readiness import current_primary, sentinel_answers, wait_for_new_primary
from redis_harness.errors import HarnessError
from redis_harness.profile.credentials import Secrets
from redis_harness.profile.model import Profile

PAUSE_MS = 20_000  # the longest writes wait; the pause ends as soon as the switch is done
CATCH_UP_S = 5.0
FAILOVER_TIMEOUT_S = 15.0


def _replicas_caught_up(old: redis.Redis, replicas: list[redis.Redis]) -> bool:
    """Every replica has processed the paused primary's whole stream. Read from the replicas'
    own INFO: the primary's view of their offsets is refreshed by an ACK once a second."""
    offset = int(old.info("replication").get("master_repl_offset", 0))
    return bool(replicas) and all(int(r.info("replication").get("slave_repl_offset", -1)) >= offset for r in replicas)


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
    old = running.node_client(profile, container, secrets.admin.password)
    containers = running.running_containers(profile)
    replicas = [
        running.node_client(profile, containers[n.service], secrets.admin.password)
        for n in profile.data_nodes
        if n.service != service and n.service in containers and containers[n.service].status == "running"
    ]
    # SENTINEL FAILOVER is the admin user's; `default` may only ask where the primary is. The
    # Sentinel running a failover keeps naming the old primary in SENTINEL MASTERS (which
    # redis-py asks) until every replica follows the new one, several seconds if a replica
    # needs a full sync; the others name the new primary from its first hello (within 2 s).
    # Clients ask the Sentinels in the order they are listed, so the last one runs it.
    sentinel = connect_node(profile, profile.sentinel_nodes[-1], "admin", secrets.admin.password)
    try:
        progress.note(f"{service}: pausing writes until the replicas have every one")
        old.execute_command("CLIENT", "PAUSE", PAUSE_MS, "WRITE")
        try:
            _wait(lambda: _replicas_caught_up(old, replicas), CATCH_UP_S, "replicas catching up")
            progress.note(f"{service}: SENTINEL FAILOVER")
            sentinel.execute_command("SENTINEL", "FAILOVER", spec.master_name)
            new, waited = wait_for_new_primary(profile, secrets, service, timeout_s=FAILOVER_TIMEOUT_S)
            progress.note(f"{service}: REPLICAOF {new}, as the Sentinels now have it")
            old.execute_command("REPLICAOF", new, profile.network.container_port)
        finally:
            old.execute_command("CLIENT", "UNPAUSE")
        _wait(lambda: old.info("replication").get("role") == "slave", FAILOVER_TIMEOUT_S, "old primary demoted")
        _wait(
            lambda: (answers := sentinel_answers(profile, secrets)) != [] and set(answers) == {new},
            FAILOVER_TIMEOUT_S,
            f"every Sentinel naming {new}",
        )
    except redis.RedisError as exc:
        raise HarnessError(f"up: switchover away from {service} failed: {exc}") from None
    finally:
        for client in (old, sentinel, *replicas):
            client.close()
    progress.note(f"{new} is the primary ({waited:.1f} s); replacing {service}")
    return new


START_S = 60.0


def _answers(node: redis.Redis) -> bool:
    """PONG from a node that has started and loaded its data."""
    try:
        return bool(node.ping())
    except redis.RedisError:
        return False


def follow_primary(profile: Profile, secrets: Secrets, service: str, container: Any) -> None:
    """A data node just (re)started under Sentinel follows the current primary at once, not
    the node its command line names (the profile's first), nor itself."""
    primary = current_primary(profile, secrets)
    if primary is None or primary == service:
        return
    node = running.node_client(profile, container, secrets.admin.password)
    try:
        _wait(lambda: _answers(node), START_S, f"{service} answering")
        info = node.info("replication")
        if info.get("role") != "slave" or info.get("master_host") != primary:
            progress.note(f"{service}: REPLICAOF {primary}, the primary the Sentinels name")
            node.execute_command("REPLICAOF", primary, profile.network.container_port)
    except redis.RedisError as exc:
        raise HarnessError(f"up: {service}: could not make it follow {primary}: {exc}") from None
    finally:
        node.close()


def needs_switch(profile: Profile, secrets: Secrets, service: str) -> bool:
    return profile.topology.sentinel is not None and current_primary(profile, secrets) == service
