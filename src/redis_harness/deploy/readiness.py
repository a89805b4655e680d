"""Which data node is the primary now, as the deployment itself sees it (Sentinel or Cluster)."""

from __future__ import annotations

import time

import redis
from redis.exceptions import RedisClusterException

from redis_harness.deploy.connect import connect, connect_node
from redis_harness.errors import HarnessError
from redis_harness.profile.credentials import Secrets
from redis_harness.profile.model import Profile

POLL_S = 0.1
IN_FAILOVER = "(failover in progress)"


def sentinel_answers(profile: Profile, secrets: Secrets) -> list[str]:
    """The primary each reachable Sentinel names (one entry per Sentinel that answered).

    Read from SENTINEL MASTERS, as redis-py's clients do: during a failover the leader's
    GET-MASTER-ADDR-BY-NAME already names the promoted replica while its SENTINEL MASTERS
    still names the old primary (flag failover_in_progress) until the failover ends; such
    an answer counts as IN_FAILOVER."""
    assert profile.topology.sentinel is not None
    answers: list[str] = []
    for node in profile.sentinel_nodes:
        client = connect_node(profile, node, None, secrets.default.password, timeout_s=0.5)
        try:
            state = client.sentinel_masters().get(profile.topology.sentinel.master_name)
            if state:
                in_failover = "failover_in_progress" in str(state.get("flags", ""))
                answers.append(IN_FAILOVER if in_failover else str(state["ip"]))
        except redis.RedisError:
            pass
        finally:
            client.close()
    return answers


def _from_sentinels(profile: Profile, secrets: Secrets) -> str | None:
    """The primary a majority of reachable Sentinels report (None while they disagree)."""
    assert profile.topology.sentinel is not None
    answers = sentinel_answers(profile, secrets)
    for name in set(answers) - {IN_FAILOVER}:
        if answers.count(name) >= profile.topology.sentinel.quorum:
            return name
    return None


def _from_cluster(profile: Profile, secrets: Secrets) -> str | None:
    """The node serving hash slot 0, if the cluster is healthy."""
    try:
        client = connect(profile, "admin", secrets.admin.password, timeout_s=0.5)
        info = client.cluster_info()
        if info.get("cluster_state") != "ok":
            return None
        # redis-py parses CLUSTER SLOTS into {(first, last): {"primary": (host, port), ...}};
        # nodes announce their service names (cluster-preferred-endpoint-type hostname).
        slots = client.execute_command("CLUSTER SLOTS", target_nodes="random")
        client.close()
        for (first, _last), owners in slots.items():
            if int(first) == 0:
                return str(owners["primary"][0])
    except (redis.RedisError, RedisClusterException):  # the latter is no RedisError
        return None
    return None


def current_primary(profile: Profile, secrets: Secrets) -> str | None:
    if profile.topology.sentinel is not None:
        return _from_sentinels(profile, secrets)
    if profile.topology.cluster is not None:
        return _from_cluster(profile, secrets)
    return profile.data_nodes[0].service


def wait_for_new_primary(profile: Profile, secrets: Secrets, old: str, timeout_s: float) -> tuple[str, float]:
    """(new primary, seconds waited) once the deployment has promoted another node."""
    started = time.monotonic()
    deadline = started + timeout_s
    while time.monotonic() < deadline:
        primary = current_primary(profile, secrets)
        if primary is not None and primary != old:
            return primary, time.monotonic() - started
        time.sleep(POLL_S)
    raise HarnessError(f"failover: no new primary within {timeout_s:.0f} s (still {old})")


SETTLE_TIMEOUT_S = 60.0


def _replicas_unlinked(profile: Profile, secrets: Secrets) -> str | None:
    """Every replica's link to its primary up, and as many replicas as the profile asks for."""
    expected = profile.topology.replication.replicas * (
        profile.topology.cluster.primaries if profile.topology.cluster is not None else 1
    )
    linked = 0
    for node in profile.data_nodes:
        client = connect_node(profile, node, "admin", secrets.admin.password, timeout_s=1)
        try:
            info = client.info("replication")
        except redis.RedisError as exc:
            return f"{node.service}: {exc}"
        finally:
            client.close()
        if info["role"] == "slave":
            if info["master_link_status"] != "up":
                return f"{node.service}: link to its primary {info['master_link_status']}"
            linked += 1
    return None if linked == expected else f"{linked} of {expected} replicas linked"


def _sentinels_unaware(profile: Profile, secrets: Secrets) -> str | None:
    """Sentinels find each other and the replicas over time (hello messages, INFO every 10 s)."""
    spec = profile.topology.sentinel
    for node in profile.sentinel_nodes:
        client = connect_node(profile, node, None, secrets.default.password, timeout_s=1)
        try:
            master = client.sentinel_master(spec.master_name)
        except redis.RedisError as exc:
            return f"{node.service}: {exc}"
        finally:
            client.close()
        others, replicas = int(master["num-other-sentinels"]), int(master["num-slaves"])
        if others != spec.sentinels - 1 or replicas != profile.topology.replication.replicas:
            return f"{node.service} sees {others} other Sentinels and {replicas} replicas"
    return None


def _cluster_not_ok(profile: Profile, secrets: Secrets) -> str | None:
    for node in profile.data_nodes:
        client = connect_node(profile, node, "admin", secrets.admin.password, timeout_s=1)
        try:
            state = client.execute_command("CLUSTER INFO").get("cluster_state")
        except redis.RedisError as exc:
            return f"{node.service}: {exc}"
        finally:
            client.close()
        if state != "ok":
            return f"{node.service}: cluster_state {state}"
    return None


def _unsettled(profile: Profile, secrets: Secrets) -> str | None:
    """What is not yet in place after `up` (None when everything is)."""
    topology = profile.topology
    if topology.cluster is not None and (problem := _cluster_not_ok(profile, secrets)):
        return problem
    if topology.has_replicas and (problem := _replicas_unlinked(profile, secrets)):
        return problem
    if topology.sentinel is not None:
        return _sentinels_unaware(profile, secrets)
    return None


def wait_until_settled(profile: Profile, secrets: Secrets, timeout_s: float = SETTLE_TIMEOUT_S) -> float:
    """After `up`: replicas linked, Sentinels aware of each other and of the replicas, Cluster ok."""
    started = time.monotonic()
    while True:
        problem = _unsettled(profile, secrets)
        if problem is None:
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise HarnessError(f"up: {profile.project} not settled after {timeout_s:.0f} s: {problem}")
        time.sleep(0.5)
