"""The latency floor of a run: one connection, a low rate, before the load starts.

A few hundred PINGs and GETs of a small key, paced so neither Redis nor the
generator is busy; their p50/p99 are what this machine, this network path
and this Redis give with nothing else going on. A report sets each command's
p50 beside them, so a reader sees how far the load moved latency. Measured
on the lean RESP connection (not redis-py), so the floor is not the client's.

On a Cluster the load's commands go to every primary, each its own server: the
floor is measured on each primary through its own published port (the GET's key
hashed to one of that node's slots, so no -MOVED), and the figures of all of them
merged are the run's floor; each node's own are kept beside it. The cluster client's
routing is not measured on purpose: it is the client's cost, which the floor leaves out.
"""

from __future__ import annotations

import time
from typing import Any

from hdrh.histogram import HdrHistogram
from redis.crc import key_slot

from redis_harness.deploy.connect import endpoint
from redis_harness.deploy.tls_client import client_ssl_context
from redis_harness.load.recorder import new_histogram
from redis_harness.load.resp import RedisReplyError, RespConnection, encode
from redis_harness.profile.credentials import AnySecrets, TargetSecrets
from redis_harness.profile.model import Profile

CALLS = 300  # of each command (on a Cluster: of each command on each primary)
INTERVAL_S = 0.002  # 500 calls/s: low enough to leave both sides idle
KEY = "calibration:harness"
MAX_TAGS = 100_000  # hash tags tried for a key in a node's slots (a primary of 3 holds ~1 in 3)


def _timed(connection: RespConnection, payload: bytes) -> float:
    start = time.perf_counter()
    connection.execute(payload)
    return (time.perf_counter() - start) * 1e6


def _measure(connection: RespConnection, key: str) -> tuple[HdrHistogram, HdrHistogram]:
    """PING and GET histograms (µs) of one connection; RedisReplyError when the node did not answer."""
    ping, get = new_histogram(), new_histogram()
    connection.execute(encode("SET", key, "xxx", "EX", 60))
    for histogram, payload in ((ping, encode("PING")), (get, encode("GET", key))):
        for _ in range(CALLS):
            histogram.record_value(max(1, int(_timed(connection, payload))))
            time.sleep(INTERVAL_S)
    connection.execute(encode("DEL", key))
    return ping, get


def _figures(ping: HdrHistogram, get: HdrHistogram) -> dict[str, Any]:
    return {
        "ping_p50_us": ping.get_value_at_percentile(50),
        "ping_p99_us": ping.get_value_at_percentile(99),
        "get_p50_us": get.get_value_at_percentile(50),
        "get_p99_us": get.get_value_at_percentile(99),
        "calls": ping.get_total_count() + get.get_total_count(),
    }


def own_slots(cluster_nodes: str) -> list[tuple[int, int]] | None:
    """The slot ranges of the node that answered CLUSTER NODES (its `myself` line); None for a replica."""
    for line in cluster_nodes.splitlines():
        fields = line.split()
        if len(fields) < 8 or "myself" not in fields[2].split(","):
            continue
        if "master" not in fields[2].split(","):
            return None
        ranges = []
        for part in fields[8:]:
            if part.startswith("["):  # a slot being migrated or imported: not this node's yet
                continue
            first, _, last = part.partition("-")
            ranges.append((int(first), int(last or first)))
        return ranges
    return None


def key_in(ranges: list[tuple[int, int]]) -> str | None:
    """A calibration key whose hash tag puts it in one of `ranges`' slots."""
    for n in range(MAX_TAGS):
        key = f"{KEY}:{{{n}}}"
        slot = key_slot(key.encode())
        if any(first <= slot <= last for first, last in ranges):
            return key
    return None


def _cluster(profile: Profile, secrets: AnySecrets) -> dict[str, Any] | None:
    """Each primary measured on its own port; the run's floor is all of them merged."""
    ping_all, get_all = new_histogram(), new_histogram()
    nodes: dict[str, dict[str, Any]] = {}
    tls = client_ssl_context(profile, "admin")
    for node in profile.data_nodes:
        if node.host_port is None:
            continue
        admin = secrets.admin.password  # a deployment's own Cluster: its admin
        connection = RespConnection(profile.network.host, node.host_port, "admin", admin, 1.0, tls=tls)
        try:
            raw = connection.execute(encode("CLUSTER", "NODES"))
            ranges = own_slots(raw.decode() if isinstance(raw, bytes) else str(raw))
            key = key_in(ranges) if ranges else None
            if key is None:
                continue  # a replica, or a primary without slots: the load sends it nothing
            ping, get = _measure(connection, key)
        except RedisReplyError:
            continue  # a node down is no floor; the others still are
        finally:
            connection.close()
        ping_all.add(ping)
        get_all.add(get)
        nodes[node.service] = _figures(ping, get)
    if not nodes:
        return None
    return {**_figures(ping_all, get_all), "nodes": nodes}


def calibrate(profile: Profile, secrets: AnySecrets) -> dict[str, Any] | None:
    """{ping_p50_us, ping_p99_us, get_p50_us, get_p99_us, calls} (on a Cluster also `nodes`: the same per
    primary); None when the deployment did not answer.

    On a target: as its first service user, on a key under that service's prefix (a Redis the harness did
    not deploy is written only where its services' keys go); standalone targets only."""
    host, port = endpoint(profile)  # an unpublished deployment: the one-line refusal
    key = KEY
    if isinstance(secrets, TargetSecrets):
        if profile.target is None or profile.target.kind != "standalone":
            return None
        service = secrets.services[0].user
        user, password = secrets.login(service)
        key = f"{service}:harness:calibration"
    elif profile.topology.cluster is not None:
        return _cluster(profile, secrets)
    else:
        user, password = "admin", secrets.admin.password
    tls = client_ssl_context(profile, service if isinstance(secrets, TargetSecrets) else "admin")
    connection = RespConnection(host, port, user, password, timeout_s=1.0, tls=tls)
    try:
        ping, get = _measure(connection, key)
    except (RedisReplyError, OSError):
        return None
    finally:
        connection.close()
    return _figures(ping, get)
