"""Which data node is the primary now, as the deployment itself sees it (Sentinel or Cluster)."""

from __future__ import annotations

import time

import redis
from redis.exceptions import RedisClusterException

from .client import connect
from .errors import HarnessError
from .profile import Profile
from .secrets import Secrets

POLL_S = 0.1


def _from_sentinels(profile: Profile, secrets: Secrets) -> str | None:
    """The primary a majority of reachable Sentinels report (None while they disagree)."""
    assert profile.topology.sentinel is not None
    answers: list[str] = []
    for node in profile.sentinel_nodes:
        client = redis.Redis(
            host=profile.network.host,
            port=node.host_port,
            password=secrets.default.password,
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
            decode_responses=True,
        )
        try:
            address = client.sentinel_get_master_addr_by_name(profile.topology.sentinel.master_name)
            if address:
                answers.append(address[0])
        except redis.RedisError:
            pass
        finally:
            client.close()
    for name in set(answers):
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
