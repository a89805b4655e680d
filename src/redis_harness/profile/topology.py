"""Topologies: one node, a primary with replicas, the same watched by Sentinels, or a Cluster.

Every node a deployment runs is listed here with its compose service name
(its host name on the compose networks), its role and its loopback host port,
so the templates, the checks and the host-side clients all read one list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis_harness.errors import BadInput
from redis_harness.profile.fields import number, section
from redis_harness.profile.units import parse_duration

TOPOLOGIES = ("standalone", "replication", "sentinel", "cluster")
MIN_SENTINELS = 3
MIN_CLUSTER_PRIMARIES = 3
MASTER_NAME = "primary"  # the name Sentinel monitors the primary under


@dataclass(frozen=True)
class Node:
    service: str  # compose service = host name inside the deployment's networks
    role: str  # primary | replica | sentinel | cluster (cluster roles are assigned by the cluster)
    host_port: int | None  # published on the loopback address, None when not published
    replica_of: str | None = None


@dataclass(frozen=True)
class Replication:
    replicas: int  # per primary
    min_replicas_to_write: int
    min_replicas_max_lag_s: int


@dataclass(frozen=True)
class SentinelSpec:
    sentinels: int
    quorum: int
    down_after_ms: int
    failover_timeout_ms: int
    port: int  # host port of the first Sentinel; the others follow
    master_name: str = MASTER_NAME


@dataclass(frozen=True)
class ClusterSpec:
    primaries: int
    node_timeout_ms: int


@dataclass(frozen=True)
class Topology:
    kind: str
    replication: Replication | None
    sentinel: SentinelSpec | None
    cluster: ClusterSpec | None

    @property
    def has_replicas(self) -> bool:
        return self.replication is not None and self.replication.replicas > 0

    def data_nodes(self, first_port: int | None) -> tuple[Node, ...]:
        def port(i: int) -> int | None:
            return None if first_port is None else first_port + i

        if self.kind == "standalone":
            return (Node("redis", "primary", port(0)),)
        assert self.replication is not None
        if self.kind == "cluster":
            assert self.cluster is not None
            count = self.cluster.primaries * (1 + self.replication.replicas)
            return tuple(Node(f"redis-{i}", "cluster", port(i)) for i in range(count))
        nodes = [Node("redis-0", "primary", port(0))]
        nodes += [Node(f"redis-{i}", "replica", port(i), "redis-0") for i in range(1, self.replication.replicas + 1)]
        return tuple(nodes)

    def sentinel_nodes(self, published: bool) -> tuple[Node, ...]:
        if self.sentinel is None:
            return ()
        first = self.sentinel.port if published else None
        return tuple(
            Node(f"sentinel-{i}", "sentinel", None if first is None else first + i)
            for i in range(self.sentinel.sentinels)
        )


def _at_least(field: str, value: Any, minimum: int, maximum: int, why: str) -> int:
    """A whole count with a floor that has a reason (said in the message) and a sane ceiling."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BadInput(f"{field}: {value!r} is fewer than {minimum}; {why}")
    return number(field, value, lo=minimum, hi=maximum, integer=True)


def _ms(field: str, value: Any) -> int:
    return int(round(parse_duration(field, value) * 1000))


def _replication(raw: Any, kind: str) -> Replication | None:
    s = section(raw, "replication", ("replicas", "min_replicas_to_write", "min_replicas_max_lag"))
    if kind == "standalone":
        if s:
            raise BadInput("replication: a standalone topology has no replicas; set topology: replication or remove it")
        return None
    default_replicas = 1 if kind == "cluster" else 2
    lo = 0 if kind == "cluster" else 1
    replicas = number("replication.replicas", s.get("replicas", default_replicas), lo=lo, hi=5, integer=True)
    to_write = number("replication.min_replicas_to_write", s.get("min_replicas_to_write", 0), lo=0, hi=5, integer=True)
    if to_write > replicas:
        raise BadInput(
            f"replication.min_replicas_to_write: {to_write} is more than replication.replicas ({replicas}); "
            "every write would be refused; lower it or add replicas"
        )
    lag = parse_duration("replication.min_replicas_max_lag", s.get("min_replicas_max_lag", "10s"))
    return Replication(replicas=replicas, min_replicas_to_write=to_write, min_replicas_max_lag_s=max(1, int(lag)))


def _sentinel(raw: Any, kind: str) -> SentinelSpec | None:
    allowed = ("sentinels", "quorum", "down_after", "failover_timeout", "port")
    s = section(raw, "sentinel", allowed)
    if kind != "sentinel":
        if s:
            raise BadInput("sentinel: only a sentinel topology has Sentinels; set topology: sentinel or remove it")
        return None
    sentinels = _at_least(
        "sentinel.sentinels",
        s.get("sentinels", MIN_SENTINELS),
        MIN_SENTINELS,
        9,
        "Sentinel needs 3 or more to agree on a failover without a single point of failure",
    )
    quorum = number("sentinel.quorum", s.get("quorum", sentinels // 2 + 1), lo=1, hi=9, integer=True)
    if quorum > sentinels:
        raise BadInput(
            f"sentinel.quorum: {quorum} is larger than sentinel.sentinels ({sentinels}); "
            "no failover could ever be agreed; use at most the Sentinel count (a majority is usual)"
        )
    down_after = _ms("sentinel.down_after", s.get("down_after", "5s"))
    if down_after < 1000:
        raise BadInput(
            f"sentinel.down_after: {down_after} ms is below 1000 ms; a busy primary would be failed over "
            "for a hiccup; use 1s or more"
        )
    failover_timeout = _ms("sentinel.failover_timeout", s.get("failover_timeout", "30s"))
    if failover_timeout < down_after:
        raise BadInput(
            f"sentinel.failover_timeout: {failover_timeout} ms is below sentinel.down_after ({down_after} ms); "
            "set it to at least down_after (Redis's default is 180s)"
        )
    port = number("sentinel.port", s.get("port", 26379), lo=1024, hi=65535 - sentinels, integer=True)
    return SentinelSpec(sentinels, quorum, down_after, failover_timeout, port)


def _cluster(raw: Any, kind: str) -> ClusterSpec | None:
    s = section(raw, "cluster", ("primaries", "node_timeout"))
    if kind != "cluster":
        if s:
            raise BadInput("cluster: only a cluster topology has these settings; set topology: cluster or remove it")
        return None
    primaries = _at_least(
        "cluster.primaries",
        s.get("primaries", MIN_CLUSTER_PRIMARIES),
        MIN_CLUSTER_PRIMARIES,
        16,
        "Redis Cluster needs 3 primaries for a majority to fail over",
    )
    node_timeout = _ms("cluster.node_timeout", s.get("node_timeout", "5s"))
    if node_timeout < 1000:
        raise BadInput(f"cluster.node_timeout: {node_timeout} ms is below 1000 ms; use 1s or more")
    return ClusterSpec(primaries=primaries, node_timeout_ms=node_timeout)


def parse_topology(kind: str, raw: dict[str, Any]) -> Topology:
    return Topology(
        kind=kind,
        replication=_replication(raw.get("replication"), kind),
        sentinel=_sentinel(raw.get("sentinel"), kind),
        cluster=_cluster(raw.get("cluster"), kind),
    )
