"""What each data node says about itself now, read as admin: INFO, CLIENT LIST, SLOWLOG, LATENCY, a key sample.

A Reading is one moment of one node; rates (ops/s, evictions/s, hit ratio
over the last interval) come from two readings of the same node, so
`monitor --once` takes two a second apart and the live view keeps the
previous one.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import redis

from redis_harness.deploy.connect import connect_node
from redis_harness.deploy.containers import container_facts, data_containers
from redis_harness.deploy.tls_served import served_certificate
from redis_harness.errors import BadInput
from redis_harness.profile.credentials import AnySecrets, TargetSecrets
from redis_harness.profile.model import Profile
from redis_harness.profile.topology import Node
from redis_harness.render.certificates import CertInfo

# Keys sampled per primary for the share of memory held by keys without a TTL, at most this often.
TTL_SAMPLE_KEYS = 200
TTL_SAMPLE_EVERY_S = 10.0
# A slow update is a slow command of Redis's own @write category (COMMAND LIST FILTERBY ACLCAT write),
# or a transaction or script, which carry writes inside.
WRAPPERS = frozenset({"exec", "eval", "evalsha", "fcall"})
# How far back a slowlog entry still counts as recent.
RECENT_S = 60.0
# The certificates nodes serve change only on a renewal: one handshake per node at most this often.
CERT_EVERY_S = 60.0
COUNTERS = (
    "total_commands_processed",
    "keyspace_hits",
    "keyspace_misses",
    "evicted_keys",
    "expired_keys",
    "rejected_connections",
)


@dataclass
class TtlSample:
    """The keys-without-TTL picture of one primary: key counts from INFO keyspace (exact), memory from a sample."""

    keys: int
    keys_without_ttl: int
    sampled: int
    sampled_bytes: int
    sampled_bytes_without_ttl: int

    @property
    def keys_ratio(self) -> float | None:
        return self.keys_without_ttl / self.keys if self.keys else None

    @property
    def memory_ratio(self) -> float | None:
        return self.sampled_bytes_without_ttl / self.sampled_bytes if self.sampled_bytes else None


@dataclass
class Reading:
    """One node at one moment. `up` False means the node did not answer (then most fields are empty)."""

    service: str
    port: int | None
    t: float
    up: bool
    error: str | None = None
    container: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    clients: dict[str, dict[str, int]] = field(default_factory=dict)  # ACL user -> connected, blocked
    slowlog: list[dict[str, Any]] = field(default_factory=list)
    latency: list[dict[str, Any]] = field(default_factory=list)
    ttl: TtlSample | None = None
    cluster: dict[str, Any] = field(default_factory=dict)
    # What the monitor's own commands added to the counters since the previous reading of this
    # node; None when unknown (the first reading on a connection).
    own: dict[str, int] | None = None
    # Commands the reader's user may not run (a target read without its admin): their figures are
    # not available, which is not the same as zero.
    denied: list[str] = field(default_factory=list)

    @property
    def role(self) -> str | None:
        return self.info.get("role")

    def counter(self, name: str) -> int | None:
        value = self.info.get(name)
        return int(value) if value is not None else None


def clients_per_user(client_list: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """CLIENT LIST -> per ACL user the connections and how many of them are blocked (flag b: BLPOP, WAIT …)."""
    connected: Counter[str] = Counter()
    blocked: Counter[str] = Counter()
    for client in client_list:
        user = client.get("user") or "?"
        connected[user] += 1
        if "b" in (client.get("flags") or ""):
            blocked[user] += 1
    return {user: {"connected": connected[user], "blocked": blocked[user]} for user in sorted(connected)}


def slow_entries(raw: list[dict[str, Any]], writes: frozenset[str]) -> list[dict[str, Any]]:
    """SLOWLOG GET -> entries with the command name, seconds taken, when, and whether it changed data
    (`writes`: the server's write commands, lower case)."""
    entries = []
    for entry in raw:
        command = entry.get("command") or b""
        if isinstance(command, bytes):
            command = command.decode(errors="replace")
        name = str(command).split(" ", 1)[0].lower()
        entries.append(
            {
                "command": str(command)[:60],
                "name": name,
                "duration_s": entry["duration"] / 1e6,
                "start_time": entry["start_time"],
                "update": name in writes or name in WRAPPERS,
                "client": entry.get("client_name") or entry.get("client_address") or "",
            }
        )
    return sorted(entries, key=lambda e: -e["duration_s"])


def keyspace_counts(info: dict[str, Any]) -> tuple[int, int]:
    """(keys, keys with a TTL) over every database in INFO keyspace."""
    keys = expires = 0
    for name, value in info.items():
        if name.startswith("db") and isinstance(value, dict):
            keys += int(value.get("keys", 0))
            expires += int(value.get("expires", 0))
    return keys, expires


def ttl_sample(keys: int, keys_with_ttl: int, ttls: list[Any], sizes: list[Any]) -> tuple[TtlSample, dict[str, int]]:
    """The sample's figures from the TTL and MEMORY USAGE replies of sampled keys, and what the TTLs
    did to the keyspace counters: TTL looks a key up like a read (a hit, or a miss when it is gone:
    reply -2); MEMORY USAGE and RANDOMKEY count nothing (checked on Redis 7.0)."""
    total = without = sampled = hits = misses = 0
    for ttl, size in zip(ttls, sizes, strict=True):
        if not isinstance(ttl, Exception):
            hits, misses = (hits, misses + 1) if ttl == -2 else (hits + 1, misses)
        if isinstance(ttl, Exception) or isinstance(size, Exception) or size is None or ttl == -2:
            continue  # expired or evicted between the two round trips
        sampled += 1
        total += int(size)
        if ttl == -1:
            without += int(size)
    return TtlSample(keys, keys - keys_with_ttl, sampled, total, without), {
        "keyspace_hits": hits,
        "keyspace_misses": misses,
    }


def reader_login(secrets: AnySecrets) -> tuple[str | None, str]:
    """Who the monitor reads as: admin, or on a target without admin credentials its first service user
    (who may see little of the server: what it may not run is reported as not available)."""
    if isinstance(secrets, TargetSecrets):
        return secrets.login(secrets.admin.user if secrets.admin else secrets.services[0].user)
    return "admin", secrets.admin.password


def _allowed(call: Any, reading: Reading, name: str, *args: Any) -> Any:
    """call(*args), or None (and `name` noted as denied) when the user may not run it."""
    try:
        return call(*args)
    except redis.exceptions.NoPermissionError:
        reading.denied.append(name)
        return None


class NodeReader:
    """One data node, read as admin over one connection kept from reading to reading.

    The monitor's own commands count in the node's counters like anyone's (INFO's
    total_commands_processed, and TTL's keyspace hits and misses). The reader counts
    what it sent after each INFO, so the next reading can take its own share out:
    rates then show the deployment's traffic, not the monitor's. Keeping the
    connection keeps a new connection's AUTH out of the interval too.
    """

    def __init__(self, profile: Profile, node: Node, secrets: AnySecrets) -> None:
        self.profile, self.node, self.secrets = profile, node, secrets
        self.user, self.password = reader_login(secrets)
        self._client: redis.Redis | None = None
        self._own: Counter[str] = Counter()  # what this reader did to the counters since its last INFO
        self._since_info = False  # an INFO answered on this connection: _own is complete
        self._writes: frozenset[str] | None = None
        self._ttl: tuple[float, TtlSample] | None = None  # the last key sample and when it was taken
        self._denied_before: set[str] = set()  # commands refused on an earlier reading (not retried)

    def _sent(self, commands: int, **counters: int) -> None:
        self._own["total_commands_processed"] += commands
        self._own.update(counters)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def read(self, container: Any | None, *, full: bool = True, sample_ttl: bool = False) -> Reading:
        """One reading; `full=False` reads the counters only (a baseline for rates). A node that
        does not answer is a Reading with up=False, never an exception."""
        if self.profile.target is not None:
            facts: dict[str, Any] = {"state": "running", "target": True}  # not a container of the harness's
        elif container is None:
            facts = {"state": "missing"}
        else:
            facts = container_facts(container) if full else {"state": container.status}
        reading = Reading(service=self.node.service, port=self.node.host_port, t=time.time(), up=False, container=facts)
        if facts.get("state") != "running":
            reading.error = f"container {facts.get('state')}"
            self.close()
            return reading
        if self._client is None:
            self._client = connect_node(
                self.profile,
                self.node,
                self.user,
                self.password,
                timeout_s=1.0,
                sentinel_password=self.secrets.sentinel_password,
            )
            self._own, self._since_info = Counter(), False
        try:
            self._read(self._client, reading, full, sample_ttl)
            reading.up = True
        except redis.RedisError as exc:
            reading.error = f"{type(exc).__name__}: {exc}"
            self.close()  # what was sent is no longer known: the next reading starts afresh
        return reading

    def _read(self, client: redis.Redis, reading: Reading, full: bool, sample_ttl: bool) -> None:
        own = dict(self._own) if self._since_info else None
        info = _allowed(client.info, reading, "info", "all")
        if info is None:
            client.ping()  # it answers, but tells this user nothing about the server
            reading.t = time.time()
            return
        reading.info = info
        reading.t = time.time()
        reading.own = own
        self._own, self._since_info = Counter(total_commands_processed=1), True  # this INFO counts in the next
        if not full:
            return
        reading.clients = clients_per_user(_allowed(client.client_list, reading, "client list") or [])
        self._sent(1)
        if self._writes is None:
            names = _allowed(client.execute_command, reading, "command", "COMMAND LIST FILTERBY ACLCAT write")
            self._writes = frozenset(str(c).lower() for c in names or [])
            self._sent(1)
        reading.slowlog = slow_entries(_allowed(client.slowlog_get, reading, "slowlog", 16) or [], self._writes)
        self._sent(1)
        latest = _allowed(client.execute_command, reading, "latency", "LATENCY LATEST") or []
        reading.latency = [{"event": e[0], "when": e[1], "latest_ms": e[2], "max_ms": e[3]} for e in latest]
        self._sent(1)
        if sample_ttl and reading.role == "master" and "randomkey" not in self._denied_before:
            try:
                reading.ttl = self._sample_ttls(client, reading.info)
            except redis.exceptions.NoPermissionError:
                self._denied_before.add("randomkey")
        if "randomkey" in self._denied_before:
            reading.denied.append("randomkey")
        if self.profile.topology.cluster is not None or (self.profile.target and self.profile.target.kind == "cluster"):
            reading.cluster = _allowed(client.cluster, reading, "cluster info", "info") or {}
            self._sent(1)

    def _sample_ttls(self, client: redis.Redis, info: dict[str, Any]) -> TtlSample:
        """Estimate the share of memory held by keys without a TTL from TTL_SAMPLE_KEYS random keys.

        RANDOMKEY picks uniformly among keys (with replacement); each pick's TTL
        (-1: none) and MEMORY USAGE weigh in. Key counts are exact from INFO
        keyspace, so only the memory share is an estimate; its error shrinks like
        1/sqrt(count). The memory share moves slowly: a sample younger than
        TTL_SAMPLE_EVERY_S is reused with the current key counts."""
        keys, with_ttl = keyspace_counts(info)
        if keys == 0:
            return TtlSample(0, 0, 0, 0, 0)
        if self._ttl is not None and time.monotonic() - self._ttl[0] < TTL_SAMPLE_EVERY_S:
            return replace(self._ttl[1], keys=keys, keys_without_ttl=keys - with_ttl)
        pipe = client.pipeline(transaction=False)
        for _ in range(TTL_SAMPLE_KEYS):
            pipe.randomkey()
        picked = [k for k in pipe.execute() if k is not None]
        self._sent(TTL_SAMPLE_KEYS)
        pipe = client.pipeline(transaction=False)
        for key in picked:
            pipe.ttl(key)
            pipe.memory_usage(key, samples=0)
        answers = pipe.execute(raise_on_error=False)
        sample, counted = ttl_sample(keys, with_ttl, answers[0::2], answers[1::2])
        self._sent(2 * len(picked), **counted)
        self._ttl = (time.monotonic(), sample)
        return sample


def cert_expiry(served: dict[str, CertInfo | str], now: dt.datetime) -> dict[str, Any] | None:
    """The soonest expiry among the certificates the nodes serve (None when none could be read)."""
    certs = {service: cert for service, cert in served.items() if not isinstance(cert, str)}
    if not certs:
        return None
    node, soonest = min(certs.items(), key=lambda item: item[1].not_after)
    return {
        "days": round(soonest.expires_in(now).total_seconds() / 86400, 2),
        "node": node,
        "not_after": soonest.not_after.isoformat(),
        "serial": soonest.short_serial,
        "unreadable": sorted(service for service, cert in served.items() if isinstance(cert, str)),
    }


class DeploymentReader:
    """Every data node of a deployment, each with its NodeReader; close() when done."""

    def __init__(self, profile: Profile, secrets: AnySecrets) -> None:
        self.profile = profile
        self.readers = [NodeReader(profile, node, secrets) for node in profile.data_nodes]
        policy = profile.target.eviction_policy if profile.target else profile.memory.policy
        self.sample_ttl = policy.startswith("volatile-")
        self.user = reader_login(secrets)[0] or "default"
        self._served: tuple[float, dict[str, CertInfo | str]] | None = None

    def cert_expiry(self) -> dict[str, Any] | None:
        """With TLS: the soonest expiry of what every node (Sentinels too) serves, read at most every
        CERT_EVERY_S; None with TLS off."""
        if not self.profile.tls.enabled:
            return None
        if self._served is None or time.monotonic() - self._served[0] >= CERT_EVERY_S:
            served = {node.service: served_certificate(self.profile, node, 1.0) for node in self.profile.nodes}
            self._served = (time.monotonic(), served)
        return cert_expiry(self._served[1], dt.datetime.now(dt.UTC))

    def __enter__(self) -> DeploymentReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for reader in self.readers:
            reader.close()

    def read(self, *, full: bool = True) -> list[Reading]:
        """Every data node's Reading; BadInput (exit 2) when the deployment is not up at all."""
        profile = self.profile
        if profile.target is not None:
            return self._read_target(full)
        containers = {c.labels.get("com.docker.compose.service"): c for c in data_containers(profile)}
        if not any(c.status == "running" for c in containers.values()):
            raise BadInput(f"deployment: {profile.project} is not running; run `redis-harness up {profile.name}` first")
        readings = [
            reader.read(containers.get(reader.node.service), full=full, sample_ttl=self.sample_ttl)
            for reader in self.readers
        ]
        if not any(r.up for r in readings):
            reasons = "; ".join(f"{r.service}: {r.error}" for r in readings)
            raise BadInput(
                f"deployment: no data node of {profile.project} answers ({reasons}); "
                f"check `redis-harness status {profile.name}`"
            )
        return readings

    def _read_target(self, full: bool) -> list[Reading]:
        """A target's nodes, read without Docker; BadInput (exit 2) when none answers."""
        readings = [reader.read(None, full=full, sample_ttl=self.sample_ttl) for reader in self.readers]
        if not any(r.up for r in readings):
            assert self.profile.target is not None
            reasons = "; ".join(f"{r.service}: {r.error}" for r in readings)
            raise BadInput(f"target: {self.profile.target.where} does not answer ({reasons})")
        return readings


# --------------------------------------------------------------------------- figures from readings


def _rate(now: Reading, before: Reading | None, counter: str) -> float | None:
    """The counter's change per second since `before`, less what the monitor itself did to it."""
    if before is None or not (now.up and before.up):
        return None
    a, b = before.counter(counter), now.counter(counter)
    if a is None or b is None:
        return None
    own = (now.own or {}).get(counter, 0)
    return max(0.0, (b - a - own) / max(1e-3, now.t - before.t))


def _ratio(part: float | None, whole: float | None) -> float | None:
    return part / whole if part is not None and whole else None


def node_figures(now: Reading, before: Reading | None) -> dict[str, Any]:
    """One node's figures over the interval since `before` (rates None on the first reading)."""
    hits, misses = _rate(now, before, "keyspace_hits"), _rate(now, before, "keyspace_misses")
    lookups = (hits or 0) + (misses or 0)
    info = now.info
    used, maxmemory = info.get("used_memory"), info.get("maxmemory") or None
    recent = [e for e in now.slowlog if e["start_time"] >= now.t - RECENT_S]
    figures: dict[str, Any] = {
        "service": now.service,
        "port": now.port,
        "up": now.up,
        "error": now.error,
        "role": now.role,
        "ops_per_s": _rate(now, before, "total_commands_processed"),
        "hit_ratio": hits / lookups if lookups else None,
        "miss_ratio": misses / lookups if lookups else None,
        "used_memory": used,
        "maxmemory": maxmemory,
        "memory_limit": now.container.get("memory_limit"),
        "container_memory": now.container.get("memory_used"),
        "memory_ratio": _ratio(used, maxmemory),
        "evictions_per_s": _rate(now, before, "evicted_keys"),
        "expirations_per_s": _rate(now, before, "expired_keys"),
        "connected_clients": info.get("connected_clients"),
        "blocked_clients": info.get("blocked_clients"),
        "clients": now.clients,
        "rejected_connections": info.get("rejected_connections"),
        "rejected_per_s": _rate(now, before, "rejected_connections"),
        "slowest": now.slowlog[:5],
        "slowest_recent_update_s": max((e["duration_s"] for e in recent if e["update"]), default=None),
        "latency": now.latency,
        "policy": info.get("maxmemory_policy"),
        # What the monitor's own commands added to the counters in the interval, taken out of the rates above.
        "monitor_own": now.own,
    }
    if now.ttl is not None:
        figures.update(
            keys=now.ttl.keys,
            keys_without_ttl=now.ttl.keys_without_ttl,
            keys_without_ttl_ratio=now.ttl.keys_ratio,
            memory_without_ttl_ratio=now.ttl.memory_ratio,
            ttl_sampled_keys=now.ttl.sampled,
        )
    if now.role == "slave":
        figures["replication"] = {
            "primary": f"{info.get('master_host')}:{info.get('master_port')}",
            "link": info.get("master_link_status"),
            "last_io_s": info.get("master_last_io_seconds_ago"),
            "offset": info.get("slave_repl_offset"),
        }
    elif now.role == "master" and info.get("connected_slaves"):
        offset = info.get("master_repl_offset", 0)
        replicas = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
        figures["replication"] = {
            "replicas": len(replicas),
            "lag_bytes": {f"{r.get('ip')}:{r.get('port')}": offset - int(r.get("offset", 0)) for r in replicas},
            "lag_s": {f"{r.get('ip')}:{r.get('port')}": r.get("lag") for r in replicas},
        }
    if now.cluster:
        figures["cluster"] = {
            "state": now.cluster.get("cluster_state"),
            "slots_ok": now.cluster.get("cluster_slots_ok"),
            "known_nodes": now.cluster.get("cluster_known_nodes"),
        }
    return figures


def _total(nodes: list[dict[str, Any]], key: str) -> float | None:
    values = [n[key] for n in nodes if n.get(key) is not None]
    return sum(values) if values else None


def deployment_figures(readings: list[Reading], before: list[Reading] | None) -> dict[str, Any]:
    """The deployment's figures: per node, and across nodes (rates summed, memory of the fullest node)."""
    previous = {r.service: r for r in before or []}
    nodes = [node_figures(r, previous.get(r.service)) for r in readings]
    up = [n for n in nodes if n["up"]]
    hits = sum((_rate(r, previous.get(r.service), "keyspace_hits") or 0) for r in readings)
    misses = sum((_rate(r, previous.get(r.service), "keyspace_misses") or 0) for r in readings)
    fullest = max(up, key=lambda n: n["memory_ratio"] or 0, default=None)
    clients: dict[str, dict[str, int]] = {}
    for n in up:
        for user, counts in n["clients"].items():
            mine = clients.setdefault(user, {"connected": 0, "blocked": 0})
            mine["connected"] += counts["connected"]
            mine["blocked"] += counts["blocked"]
    sampled = [r.ttl for r in readings if r.ttl is not None]
    keys = sum(t.keys for t in sampled)
    sampled_bytes = sum(t.sampled_bytes for t in sampled)
    primaries = [n["service"] for n in up if n["role"] == "master"]
    slowest = sorted((dict(e, node=n["service"]) for n in up for e in n["slowest"]), key=lambda e: -e["duration_s"])
    recent_updates = [n["slowest_recent_update_s"] for n in up if n["slowest_recent_update_s"] is not None]
    interval = [r.t - previous[r.service].t for r in readings if r.service in previous]
    return {
        "nodes": nodes,
        "interval_s": round(max(interval), 3) if interval else None,
        "nodes_down": [n["service"] for n in nodes if not n["up"]],
        "ops_per_s": _total(up, "ops_per_s"),
        "hit_ratio": hits / (hits + misses) if hits + misses else None,
        "miss_ratio": misses / (hits + misses) if hits + misses else None,
        "memory": {
            "used": fullest["used_memory"] if fullest else None,
            "maxmemory": fullest["maxmemory"] if fullest else None,
            "limit": fullest["memory_limit"] if fullest else None,
            "container_used": fullest["container_memory"] if fullest else None,
            "ratio": fullest["memory_ratio"] if fullest else None,
            "node": fullest["service"] if fullest else None,
        },
        "evictions_per_s": _total(up, "evictions_per_s"),
        "expirations_per_s": _total(up, "expirations_per_s"),
        "connected_clients": _total(up, "connected_clients"),
        "blocked_clients": _total(up, "blocked_clients"),
        "clients": clients,
        "rejected_connections": _total(up, "rejected_connections"),
        "policy": next((n["policy"] for n in up if n["policy"]), None),
        "keys": keys if sampled else None,
        "keys_without_ttl_ratio": sum(t.keys_without_ttl for t in sampled) / keys if keys else None,
        "memory_without_ttl_ratio": (
            sum(t.sampled_bytes_without_ttl for t in sampled) / sampled_bytes if sampled_bytes else None
        ),
        "ttl_sampled_keys": sum(t.sampled for t in sampled) if sampled else None,
        "slowest": slowest[:5],
        "slowest_recent_update_s": max(recent_updates, default=None),
        "primaries": primaries,
        # Commands the monitor's user may not run on some node: their figures are not available (None).
        "not_available": sorted({name for r in readings if r.up for name in r.denied}),
        # False on a target (not the harness's containers): no container figures to show.
        "container_figures": not any(r.container.get("target") for r in readings),
    }
