"""Topologies: one node, a primary with replicas, the same watched by Sentinels, or a Cluster.

Every node a deployment runs is listed here with its compose service name
(its host name on the compose networks), its role and its loopback host port,
so the templates, the checks and the host-side clients all read one list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator

from redis_harness.profile.types import INT_MAX, LLONG_MAX, Duration, Floor, Section, refuse

TopologyKind = Literal["standalone", "replication", "sentinel", "cluster"]
TOPOLOGIES: tuple[str, ...] = ("standalone", "replication", "sentinel", "cluster")
MIN_SENTINELS = 3
MIN_CLUSTER_PRIMARIES = 3
MASTER_NAME = "primary"  # the name Sentinel monitors the primary under


@dataclass(frozen=True)
class Node:
    service: str  # compose service = host name inside the deployment's networks
    role: str  # primary | replica | sentinel | cluster (cluster roles are assigned by the cluster)
    host_port: int | None  # published on the loopback address, None when not published
    replica_of: str | None = None


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


class Replication(Section):
    """Replicas of each primary (replication, sentinel and cluster topologies)."""

    replicas: int | None = Field(
        None, ge=0, le=5, description="Replicas per primary (redis-1, redis-2 …); default 2, or 1 on a cluster"
    )
    min_replicas_to_write: int = Field(
        0,
        ge=0,
        le=5,
        description="The primary refuses writes unless this many replicas are connected and lag less than "
        "min_replicas_max_lag: bounds the writes a partitioned old primary can accept (and lose) in a failover",
    )
    min_replicas_max_lag: Duration = Field(
        "1s",
        description="See min_replicas_to_write; whole seconds, 1 s at least (Redis counts a replica's lag "
        "in seconds since its last acknowledgement, sent every second)",
    )

    @field_validator("min_replicas_max_lag")
    @classmethod
    def _lag_fits_redis(cls, seconds: float) -> float:
        if seconds > INT_MAX:
            raise refuse(f"{seconds:g} s is more than Redis accepts for min-replicas-max-lag ({INT_MAX} s); use 10s")
        return seconds

    @property
    def min_replicas_max_lag_s(self) -> int:
        return max(1, int(self.min_replicas_max_lag))

    @property
    def acked_loss_bound_s(self) -> float | None:
        """How long a primary cut off from its replicas (a partition) may go on acknowledging
        writes that the failover then discards; None without min_replicas_to_write (until it
        rejoins). Redis counts a replica's lag in whole seconds since its last acknowledgement,
        which replicas send every second, and recounts its good replicas once a second: the
        refusals start more than lag - 1 and at most lag + 2 seconds after the cut."""
        if self.min_replicas_to_write == 0:
            return None
        return float(self.min_replicas_max_lag_s + 2)


class Sentinel(Section):
    """Sentinels watching the primary (sentinel topology only)."""

    master_name: ClassVar[str] = MASTER_NAME

    sentinels: Annotated[
        int,
        Floor("Sentinel needs 3 or more to agree on a failover without a single point of failure"),
    ] = Field(MIN_SENTINELS, ge=MIN_SENTINELS, le=9, description="How many Sentinels (3 or more)")
    quorum: int | None = Field(
        None, ge=1, le=9, description="Sentinels that must agree the primary is down; default a majority"
    )
    down_after: Duration = Field("5s", description="Unanswered for this long means down (1s or more)")
    failover_timeout: Duration = Field("30s", description="Time allowed for one failover (at least down_after)")
    port: int = Field(
        26379, ge=1024, le=65535, description="Host port of sentinel-0 on the loopback address; the others follow"
    )

    @field_validator("down_after", "failover_timeout")
    @classmethod
    def _fits_sentinel(cls, seconds: float) -> float:
        # Sentinel reads these milliseconds with atoi(): past INT_MAX the figure wraps around.
        if _ms(seconds) > INT_MAX:
            raise refuse(f"{_ms(seconds)} ms is more than Sentinel accepts ({INT_MAX} ms, about 24 days); use e.g. 30s")
        return seconds

    @property
    def down_after_ms(self) -> int:
        return _ms(self.down_after)

    @property
    def failover_timeout_ms(self) -> int:
        return _ms(self.failover_timeout)


class Cluster(Section):
    """Redis Cluster shards (cluster topology only)."""

    primaries: Annotated[int, Floor("Redis Cluster needs 3 primaries for a majority to fail over")] = Field(
        MIN_CLUSTER_PRIMARIES, ge=MIN_CLUSTER_PRIMARIES, le=16, description="Primaries (shards), 3 or more"
    )
    node_timeout: Duration = Field(
        "5s", description="A node unreachable for this long is failing (1s or more; Cluster's default is 15s)"
    )

    @field_validator("node_timeout")
    @classmethod
    def _fits_redis(cls, seconds: float) -> float:
        if _ms(seconds) < 1000:
            raise refuse(f"{_ms(seconds)} ms is below 1000 ms; use 1s or more")
        if _ms(seconds) > LLONG_MAX:
            raise refuse(f"{seconds:g} s is more than Redis accepts for cluster-node-timeout; use e.g. 5s")
        return seconds

    @property
    def node_timeout_ms(self) -> int:
        return _ms(self.node_timeout)


@dataclass(frozen=True)
class Topology:
    kind: str
    replication: Replication | None
    sentinel: Sentinel | None
    cluster: Cluster | None

    @property
    def has_replicas(self) -> bool:
        return self.replication is not None and bool(self.replication.replicas)

    def data_nodes(self, first_port: int | None) -> tuple[Node, ...]:
        def port(i: int) -> int | None:
            return None if first_port is None else first_port + i

        if self.kind == "standalone":
            return (Node("redis", "primary", port(0)),)
        assert self.replication is not None and self.replication.replicas is not None
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


def _given(section: Section | None) -> bool:
    return section is not None and bool(section.model_fields_set)


def resolve_topology(
    kind: str, replication: Replication | None, sentinel: Sentinel | None, cluster: Cluster | None
) -> Topology:
    """The sections the topology uses, with the defaults that depend on it; settings of another topology refused."""
    if kind == "standalone" and _given(replication):
        raise refuse("a standalone topology has no replicas; set topology: replication or remove it", "replication")
    if kind != "sentinel" and _given(sentinel):
        raise refuse("only a sentinel topology has Sentinels; set topology: sentinel or remove it", "sentinel")
    if kind != "cluster" and _given(cluster):
        raise refuse("only a cluster topology has these settings; set topology: cluster or remove it", "cluster")
    return Topology(
        kind=kind,
        replication=None if kind == "standalone" else _replication(kind, replication or Replication()),
        sentinel=_sentinel(sentinel or Sentinel()) if kind == "sentinel" else None,
        cluster=(cluster or Cluster()) if kind == "cluster" else None,
    )


def _replication(kind: str, spec: Replication) -> Replication:
    lowest = 0 if kind == "cluster" else 1
    replicas = spec.replicas if spec.replicas is not None else (1 if kind == "cluster" else 2)
    if replicas < lowest:
        raise refuse(
            f"{replicas} is out of range; use a whole number from {lowest} to 5 ({kind} needs a replica)",
            "replication.replicas",
        )
    if spec.min_replicas_to_write > replicas:
        raise refuse(
            f"{spec.min_replicas_to_write} is more than replication.replicas ({replicas}); "
            "every write would be refused; lower it or add replicas",
            "replication.min_replicas_to_write",
        )
    return spec.model_copy(update={"replicas": replicas})


def _sentinel(spec: Sentinel) -> Sentinel:
    quorum = spec.quorum if spec.quorum is not None else spec.sentinels // 2 + 1
    if quorum > spec.sentinels:
        raise refuse(
            f"{quorum} is larger than sentinel.sentinels ({spec.sentinels}); "
            "no failover could ever be agreed; use at most the Sentinel count (a majority is usual)",
            "sentinel.quorum",
        )
    if spec.down_after_ms < 1000:
        raise refuse(
            f"{spec.down_after_ms} ms is below 1000 ms; a busy primary would be failed over for a hiccup; "
            "use 1s or more",
            "sentinel.down_after",
        )
    if spec.failover_timeout_ms < spec.down_after_ms:
        raise refuse(
            f"{spec.failover_timeout_ms} ms is below sentinel.down_after ({spec.down_after_ms} ms); "
            "set it to at least down_after (Redis's default is 180s)",
            "sentinel.failover_timeout",
        )
    if spec.port + spec.sentinels - 1 > 65535:
        raise refuse(f"{spec.port} leaves no room for {spec.sentinels} Sentinels; use a lower port", "sentinel.port")
    return spec.model_copy(update={"quorum": quorum})
