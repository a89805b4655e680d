"""Deployment-wide checks of replication, Sentinel and Cluster (run once, not per node).

Expected values come from the Profile (replica count, Sentinel count and quorum,
Cluster primaries); found values from every node's INFO, ROLE, SENTINEL and
CLUSTER answers over its own loopback port.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from redis_harness.deploy import containers
from redis_harness.deploy.connect import connect_node
from redis_harness.deploy.tls_client import tls_kwargs
from redis_harness.profile.credentials import Secrets
from redis_harness.profile.model import Profile
from redis_harness.verify import parsers
from redis_harness.verify.check import Check

pytestmark = pytest.mark.deployment_wide

CLUSTER_SLOTS = 16384
# A replica more than this far behind its primary is not "close" (bytes of replication stream).
MAX_REPLICA_LAG_BYTES = 1024 * 1024


def _ask_every_data_node(profile: Profile, secrets: Secrets, ask: Callable[[redis.Redis], Any]) -> dict[str, Any]:
    """One answer per data node, by service name, each from the node itself."""
    answers = {}
    for node in profile.data_nodes:
        client = connect_node(profile, node, "admin", secrets.admin.password)
        try:
            answers[node.service] = ask(client)
        finally:
            client.close()
    return answers


@pytest.fixture(scope="module")
def replication(profile: Profile, secrets: Secrets) -> dict[str, dict]:
    """INFO replication of every data node."""
    return _ask_every_data_node(profile, secrets, lambda client: client.info("replication"))


@pytest.fixture(scope="module")
def sentinels(profile: Profile, secrets: Secrets) -> Iterator[list[redis.Redis]]:
    clients = [connect_node(profile, node, None, secrets.default.password) for node in profile.sentinel_nodes]
    yield clients
    for client in clients:
        client.close()


def _primaries(replication: dict[str, dict]) -> list[str]:
    return sorted(name for name, info in replication.items() if info["role"] == "master")


@pytest.mark.needs("replicas")
def test_replication_links_up(profile: Profile, replication: dict[str, dict], check: Check) -> None:
    """Every replica's link to its primary is up, and every primary has its replicas."""
    assert profile.topology.replication is not None
    want = profile.topology.replication.replicas
    down = [
        name for name, info in replication.items() if info["role"] == "slave" and info["master_link_status"] != "up"
    ]
    short = [
        f"{name} has {replication[name]['connected_slaves']}"
        for name in _primaries(replication)
        if replication[name]["connected_slaves"] != want
    ]
    check.that(
        not down and not short,
        f"each primary has {want} replica(s), every link up",
        "; ".join([f"{n} link down" for n in down] + short) or f"primaries {', '.join(_primaries(replication))}",
    )


@pytest.mark.needs("replicas")
def test_replica_offsets_close_to_primary(replication: dict[str, dict], check: Check) -> None:
    lags = {}
    for primary in _primaries(replication):
        offset = replication[primary]["master_repl_offset"]
        for key, value in replication[primary].items():
            if key.startswith("slave") and isinstance(value, dict):
                lags[f"{value['ip']}<-{primary}"] = offset - int(value["offset"])
    behind = {k: v for k, v in lags.items() if v > MAX_REPLICA_LAG_BYTES}
    check.that(
        bool(lags) and not behind,
        f"every replica within {MAX_REPLICA_LAG_BYTES} bytes of its primary",
        ", ".join(f"{k} {v} B" for k, v in (behind or lags).items()) or "no replicas reported",
    )


@pytest.mark.needs("sentinel")
def test_sentinels_agree_on_the_primary(
    profile: Profile, sentinels: list[redis.Redis], replication: dict[str, dict], check: Check
) -> None:
    name = profile.topology.sentinel.master_name
    seen = [tuple(s.sentinel_get_master_addr_by_name(name) or ()) for s in sentinels]
    actual = _primaries(replication)
    agreed = len(set(seen)) == 1 and seen[0] and [seen[0][0]] == actual
    check.that(bool(agreed), f"every Sentinel names the one primary ({', '.join(actual)})", str(seen))


@pytest.mark.needs("sentinel")
def test_sentinel_quorum_and_peers_match_profile(profile: Profile, sentinels: list[redis.Redis], check: Check) -> None:
    spec, replicas = profile.topology.sentinel, profile.topology.replication.replicas
    found = []
    for client in sentinels:
        master = client.sentinel_master(spec.master_name)
        found.append(
            (int(master["quorum"]), int(master["num-other-sentinels"]), int(master["num-slaves"]), master["flags"])
        )
    want = (spec.quorum, spec.sentinels - 1, replicas, "master")
    check.that(
        all(f == want for f in found),
        f"quorum {spec.quorum}, {spec.sentinels - 1} other Sentinels, {replicas} replicas, flags master",
        "; ".join(f"quorum {q}, others {o}, replicas {r}, flags {fl}" for q, o, r, fl in found),
    )


@pytest.mark.needs("sentinel")
def test_sentinel_requires_a_password(profile: Profile, sentinels: list[redis.Redis], check: Check) -> None:
    refused = []
    for node in profile.sentinel_nodes:
        # No retries: redis-py retries an AuthenticationError (a ConnectionError) with backoff.
        client = redis.Redis(
            host=profile.network.host,
            port=node.host_port,
            protocol=2,
            socket_timeout=2,
            retry=Retry(NoBackoff(), 0),
            **tls_kwargs(profile, None),  # over TLS with TLS on: the missing AUTH is what is refused
        )
        try:
            client.ping()
            refused.append(f"{node.service} answered")
        except redis.AuthenticationError:
            pass
        finally:
            client.close()
    check.that(not refused, "PING without AUTH refused by every Sentinel", ", ".join(refused) or "all refused")


@pytest.fixture(scope="module")
def cluster_info(profile: Profile, secrets: Secrets) -> dict[str, dict]:
    return _ask_every_data_node(profile, secrets, lambda client: client.execute_command("CLUSTER INFO"))


@pytest.mark.needs("cluster")
def test_cluster_state_ok_on_every_node(cluster_info: dict[str, dict], check: Check) -> None:
    states = {name: info.get("cluster_state") for name, info in cluster_info.items()}
    check.that(set(states.values()) == {"ok"}, "cluster_state:ok on every node", str(states))


@pytest.mark.needs("cluster")
def test_cluster_all_slots_covered(cluster_info: dict[str, dict], check: Check) -> None:
    found = {
        name: (info.get("cluster_slots_assigned"), info.get("cluster_slots_ok")) for name, info in cluster_info.items()
    }
    want = (str(CLUSTER_SLOTS), str(CLUSTER_SLOTS))
    check.that(all(v == want for v in found.values()), f"{CLUSTER_SLOTS} slots assigned and ok", str(found))


@pytest.mark.needs("cluster")
def test_cluster_primaries_match_profile(
    profile: Profile, cluster_info: dict[str, dict], replication: dict[str, dict], check: Check
) -> None:
    want = profile.topology.cluster.primaries
    sizes = {int(info.get("cluster_size", 0)) for info in cluster_info.values()}
    primaries = _primaries(replication)
    check.that(
        sizes == {want} and len(primaries) == want,
        f"{want} primaries serving slots",
        f"cluster_size {sorted(sizes)}, primaries {', '.join(primaries)}",
    )


@pytest.fixture(scope="module")
def sentinel_containers(profile: Profile, docker: Any) -> list[Any]:
    """docker inspect of every Sentinel container (they get the data nodes' hardening too)."""
    return [containers.running_container(profile, node.service) for node in profile.sentinel_nodes]


@pytest.mark.needs("sentinel")
def test_sentinels_hardened_like_the_data_nodes(profile: Profile, sentinel_containers: list[Any], check: Check) -> None:
    """Non-root, read-only root, no capabilities, no-new-privileges, not privileged, limits, loopback port."""
    problems = []
    for container in sentinel_containers:
        host = container.attrs["HostConfig"]
        name = container.labels.get("com.docker.compose.service")
        if container.attrs["Config"].get("User") in ("", "0", "root", "0:0"):
            problems.append(f"{name} runs as root")
        if not host.get("ReadonlyRootfs"):
            problems.append(f"{name} root filesystem writable")
        if "ALL" not in (host.get("CapDrop") or []) or host.get("CapAdd"):
            problems.append(f"{name} keeps capabilities")
        if not any("no-new-privileges" in opt for opt in host.get("SecurityOpt") or []):
            problems.append(f"{name} lacks no-new-privileges")
        if host.get("Privileged"):
            problems.append(f"{name} privileged")
        if host.get("Memory") != profile.resources.memory_bytes or host.get("PidsLimit") != profile.resources.pids:
            problems.append(f"{name} limits {host.get('Memory')} bytes, {host.get('PidsLimit')} pids")
        for bindings in (container.attrs["NetworkSettings"].get("Ports") or {}).values():
            for binding in bindings or []:
                if not parsers.is_loopback(binding.get("HostIp") or "0.0.0.0"):
                    problems.append(f"{name} published on {binding.get('HostIp') or '0.0.0.0'}")
    check.that(
        not problems,
        f"{len(profile.sentinel_nodes)} Sentinels: non-root, read-only, no capabilities, loopback only",
        "; ".join(problems) or "all hardened",
    )
