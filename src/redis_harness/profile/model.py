"""Load, validate and derive a deployment profile.

A profile is one YAML file; loading it yields an immutable Profile carrying
every derived number (maxmemory in bytes, slowlog threshold in µs, …) so the
templates only print values. Bad input raises BadInput with one line naming
the field and the fix.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from redis_harness import paths
from redis_harness.errors import BadInput
from redis_harness.profile.fields import boolean, choice, number, section
from redis_harness.profile.topology import TOPOLOGIES, Node, Topology, parse_topology
from redis_harness.profile.units import parse_duration, parse_size

ENVIRONMENTS = ("dev", "ci", "prod")
EVICTION_POLICIES = (
    "volatile-lru",
    "allkeys-lru",
    "volatile-lfu",
    "allkeys-lfu",
    "volatile-random",
    "allkeys-random",
    "volatile-ttl",
    "noeviction",
)
APPENDFSYNC = ("always", "everysec", "no")
PUBLISH_MODES = ("loopback", "none")
RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")
# The cached data types and how long each stays fresh: prices move fastest, history hardly at all.
DEFAULT_TTL = {"price": "30s", "liquidity": "60s", "volume": "300s", "historical": "24h"}
# The three services that share the cache; each gets an ACL user limited to its prefix.
DEFAULT_SERVICES = {
    "price": {"password_env": "REDIS_PRICE_PASSWORD"},
    "processing": {"password_env": "REDIS_PROCESSING_PASSWORD"},
    "acquisition": {"password_env": "REDIS_ACQUISITION_PASSWORD"},
}
MAX_RATIO = 0.9
# The project's own image, built offline from Debian's packages (`redis-harness image build`).
DEFAULT_IMAGE = "redis-harness/redis:7.0-bookworm"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}$")
_ENV_NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass(frozen=True)
class Image:
    ref: str  # repository:tag, pinned by tag

    @property
    def is_offline_build(self) -> bool:
        """Images in the harness's own namespace are built locally, never pulled."""
        return self.ref.startswith("redis-harness/")


@dataclass(frozen=True)
class Resources:
    memory_bytes: int
    cpus: float
    pids: int


@dataclass(frozen=True)
class Memory:
    maxmemory_ratio: float
    maxmemory_bytes: int  # derived: ratio x container memory limit
    policy: str
    samples: int


@dataclass(frozen=True)
class Persistence:
    aof: bool
    appendfsync: str
    rdb_save: tuple[tuple[int, int], ...]  # (seconds, changes) pairs; empty = RDB off

    @property
    def save_directive(self) -> str:
        return " ".join(f"{secs} {changes}" for secs, changes in self.rdb_save)


@dataclass(frozen=True)
class Network:
    publish: str  # loopback | none
    host: str
    port: int
    container_port: int = 6379


@dataclass(frozen=True)
class ServiceUser:
    name: str
    password_env: str

    @property
    def key_pattern(self) -> str:
        # key design {service}:{version}:{entity}:{id}
        return f"{self.name}:*"


@dataclass(frozen=True)
class Security:
    services: tuple[ServiceUser, ...]
    min_password_length: int


@dataclass(frozen=True)
class Server:
    tcp_backlog: int
    maxclients: int
    timeout_s: int
    slowlog_max_len: int


@dataclass(frozen=True)
class Alerts:
    miss_ratio: float
    memory_ratio: float
    slow_update_s: float
    evictions_per_s: float
    error_ratio: float
    recovery_s: float
    keys_without_ttl_ratio: float = 0.5  # with a volatile-* policy: share of keys Redis may never evict

    @property
    def slowlog_threshold_us(self) -> int:
        return int(round(self.slow_update_s * 1_000_000))

    @property
    def latency_monitor_threshold_ms(self) -> int:
        return max(1, int(round(self.slow_update_s * 1000)))


@dataclass(frozen=True)
class Monitoring:
    """Prometheus, Alertmanager and one redis_exporter per data node, beside the deployment."""

    enabled: bool = False
    prometheus_port: int = 9090  # published on network.host (loopback) only
    alertmanager_port: int = 9093
    scrape_interval_s: float = 5.0
    alert_for_s: float = 30.0  # how long a condition must hold before its alert fires
    image: str = "redis-harness/monitoring:bookworm"
    memory_bytes: int = 256 * 1024**2  # per monitoring container
    cpus: float = 0.5
    pids: int = 256


@dataclass(frozen=True)
class Profile:
    name: str
    source: Path
    topology: Topology
    environment: str
    image: Image
    resources: Resources
    memory: Memory
    persistence: Persistence
    network: Network
    security: Security
    server: Server
    restart: str
    ttl: Mapping[str, float]
    alerts: Alerts
    monitoring: Monitoring = Monitoring()

    @property
    def project(self) -> str:
        """Compose project name; containers, networks and volumes carry it."""
        return f"redis-harness-{self.name}"

    @property
    def published(self) -> bool:
        return self.network.publish == "loopback"

    @property
    def data_nodes(self) -> tuple[Node, ...]:
        """Every Redis server of the deployment; node i is published on network.port + i."""
        return self.topology.data_nodes(self.network.port if self.published else None)

    @property
    def sentinel_nodes(self) -> tuple[Node, ...]:
        return self.topology.sentinel_nodes(self.published)

    @property
    def nodes(self) -> tuple[Node, ...]:
        return self.data_nodes + self.sentinel_nodes


# --------------------------------------------------------------------------- sections


def _image(raw: Any) -> Image:
    s = section(raw, "image", ("ref",))
    ref = s.get("ref", DEFAULT_IMAGE)
    name, _, tag = str(ref).rpartition(":")
    if not name or not tag or "/" in tag or tag == "latest":
        raise BadInput(
            f"image.ref: {ref!r} is not pinned; write repository:tag with an explicit "
            "version, e.g. redis:7.2.5 or redis-harness/redis:7.0-bookworm"
        )
    return Image(ref=str(ref))


def _resources(raw: Any) -> Resources:
    s = section(raw, "resources", ("memory", "cpus", "pids"))
    memory = parse_size("resources.memory", s.get("memory", "256mb"))
    if memory < 16 * 1024**2:
        raise BadInput(f"resources.memory: {memory} bytes is too small; give Redis at least 16mb")
    cpus = number("resources.cpus", s.get("cpus", 1.0), lo=0.1, hi=64)
    pids = number("resources.pids", s.get("pids", 128), lo=16, hi=65536, integer=True)
    return Resources(memory_bytes=memory, cpus=float(cpus), pids=pids)


def _memory(raw: Any, resources: Resources) -> Memory:
    s = section(raw, "memory", ("maxmemory_ratio", "maxmemory", "policy", "samples"))
    if "maxmemory" in s:
        # Only an explicit 0 (unlimited) is ever asked for here; sizes come from the ratio.
        if parse_size("memory.maxmemory", s["maxmemory"]) == 0:
            raise BadInput(
                "memory.maxmemory: 0 (unlimited) with a container memory limit gets Redis "
                "OOM-killed instead of evicting; remove it and set memory.maxmemory_ratio"
            )
        raise BadInput(
            "memory.maxmemory: set memory.maxmemory_ratio instead; maxmemory is derived "
            "from resources.memory so the two cannot disagree"
        )
    ratio = s.get("maxmemory_ratio", 0.70)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= MAX_RATIO:
        raise BadInput(
            f"memory.maxmemory_ratio: {ratio!r} is outside (0, {MAX_RATIO}]; "
            "leave room for fragmentation, buffers and fork copy-on-write (default 0.70)"
        )
    policy = choice("memory.policy", s.get("policy", "volatile-lru"), EVICTION_POLICIES)
    samples = number("memory.samples", s.get("samples", 5), lo=1, hi=64, integer=True)
    return Memory(
        maxmemory_ratio=float(ratio),
        maxmemory_bytes=int(resources.memory_bytes * ratio),
        policy=policy,
        samples=samples,
    )


def _persistence(raw: Any) -> Persistence:
    s = section(raw, "persistence", ("aof", "appendfsync", "rdb_save"))
    aof = boolean("persistence.aof", s.get("aof", True))
    fsync = choice("persistence.appendfsync", s.get("appendfsync", "everysec"), APPENDFSYNC)
    rules = s.get("rdb_save", ["3600 1", "300 100", "60 10000"])
    if not isinstance(rules, list):
        raise BadInput("persistence.rdb_save: expected a list like ['3600 1', '300 100'] or []")
    pairs = []
    for rule in rules:
        parts = str(rule).split()
        if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise BadInput(f"persistence.rdb_save: {rule!r} is not 'SECONDS CHANGES'; write e.g. '300 100'")
        pairs.append((int(parts[0]), int(parts[1])))
    return Persistence(aof=aof, appendfsync=fsync, rdb_save=tuple(pairs))


def _network(raw: Any) -> Network:
    s = section(raw, "network", ("publish", "host", "port"))
    publish = choice("network.publish", s.get("publish", "loopback"), PUBLISH_MODES)
    host = str(s.get("host", "127.0.0.1"))
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise BadInput(f"network.host: {host!r} is not an IP address; use 127.0.0.1") from None
    if publish == "loopback" and not address.is_loopback:
        raise BadInput(
            f"network.host: {host} is not a loopback address but network.publish is loopback; "
            "use 127.0.0.1 (or set publish: none and reach Redis from the internal network)"
        )
    port = number("network.port", s.get("port", 6379), lo=1024, hi=65535, integer=True)
    return Network(publish=publish, host=host, port=port)


def _security(raw: Any) -> Security:
    s = section(raw, "security", ("services", "min_password_length"))
    services_raw = s.get("services", DEFAULT_SERVICES)
    if not isinstance(services_raw, dict) or not services_raw:
        raise BadInput("security.services: expected a mapping of service name to {password_env: VAR}")
    services = []
    for name, spec in services_raw.items():
        field = f"security.services.{name}"
        if not _NAME_RE.match(str(name)) or name in ("default", "admin", "healthcheck"):
            raise BadInput(f"{field}: {name!r} is not a usable user name; use lower-case letters and digits")
        spec = section(spec, field, ("password_env",))
        env = spec.get("password_env", f"REDIS_{str(name).upper()}_PASSWORD")
        if not _ENV_NAME_RE.match(str(env)):
            raise BadInput(f"{field}.password_env: {env!r} is not an environment variable name")
        services.append(ServiceUser(name=str(name), password_env=str(env)))
    min_len = number("security.min_password_length", s.get("min_password_length", 16), lo=8, hi=1024, integer=True)
    return Security(services=tuple(services), min_password_length=min_len)


def _server(raw: Any) -> Server:
    s = section(raw, "server", ("tcp_backlog", "maxclients", "timeout", "slowlog_max_len"))
    return Server(
        tcp_backlog=number("server.tcp_backlog", s.get("tcp_backlog", 511), lo=1, hi=65535, integer=True),
        maxclients=number("server.maxclients", s.get("maxclients", 1000), lo=1, hi=100000, integer=True),
        timeout_s=number("server.timeout", s.get("timeout", 0), lo=0, hi=86400, integer=True),
        slowlog_max_len=number("server.slowlog_max_len", s.get("slowlog_max_len", 128), lo=1, hi=100000, integer=True),
    )


def _ttl(raw: Any) -> Mapping[str, float]:
    s = section(raw, "ttl", tuple(DEFAULT_TTL))
    merged = {**DEFAULT_TTL, **s}
    return MappingProxyType({k: parse_duration(f"ttl.{k}", v) for k, v in merged.items()})


def _alerts(raw: Any) -> Alerts:
    s = section(
        raw,
        "alerts",
        (
            "miss_ratio",
            "memory_ratio",
            "slow_update",
            "evictions_per_s",
            "error_ratio",
            "recovery",
            "keys_without_ttl_ratio",
        ),
    )
    return Alerts(
        miss_ratio=number("alerts.miss_ratio", s.get("miss_ratio", 0.20), lo=0, hi=1),
        memory_ratio=number("alerts.memory_ratio", s.get("memory_ratio", 0.80), lo=0, hi=1),
        slow_update_s=parse_duration("alerts.slow_update", s.get("slow_update", "100ms")),
        evictions_per_s=number("alerts.evictions_per_s", s.get("evictions_per_s", 100), lo=0, hi=1e9),
        error_ratio=number("alerts.error_ratio", s.get("error_ratio", 0.01), lo=0, hi=1),
        recovery_s=parse_duration("alerts.recovery", s.get("recovery", "30s")),
        keys_without_ttl_ratio=number(
            "alerts.keys_without_ttl_ratio", s.get("keys_without_ttl_ratio", 0.5), lo=0, hi=1
        ),
    )


def _monitoring(raw: Any, network: Network) -> Monitoring:
    s = section(raw, "monitoring", ("enabled", "prometheus_port", "alertmanager_port", "scrape_interval", "alert_for"))
    monitoring = Monitoring(
        enabled=boolean("monitoring.enabled", s.get("enabled", False)),
        prometheus_port=number(
            "monitoring.prometheus_port", s.get("prometheus_port", 9090), lo=1024, hi=65535, integer=True
        ),
        alertmanager_port=number(
            "monitoring.alertmanager_port", s.get("alertmanager_port", 9093), lo=1024, hi=65535, integer=True
        ),
        scrape_interval_s=parse_duration("monitoring.scrape_interval", s.get("scrape_interval", "5s")),
        alert_for_s=parse_duration("monitoring.alert_for", s.get("alert_for", "30s")),
    )
    if monitoring.enabled and network.publish != "loopback":
        raise BadInput("monitoring.enabled: needs network.publish: loopback, where its ports are published")
    if monitoring.prometheus_port == monitoring.alertmanager_port:
        raise BadInput("monitoring.alertmanager_port: the same port as monitoring.prometheus_port; pick another")
    if not 1 <= monitoring.scrape_interval_s <= 300:
        raise BadInput("monitoring.scrape_interval: must be between 1s and 300s, e.g. 5s")
    return monitoring


# --------------------------------------------------------------------------- entry points

TOP_LEVEL = (
    "name",
    "topology",
    "environment",
    "image",
    "resources",
    "memory",
    "persistence",
    "network",
    "security",
    "server",
    "restart",
    "ttl",
    "alerts",
    "replication",
    "sentinel",
    "cluster",
    "monitoring",
)


def profile_from_mapping(raw: Any, source: Path) -> Profile:
    """Validate a parsed profile and derive every number the templates print."""
    top = section(raw, "", TOP_LEVEL)
    name = str(top.get("name", source.stem))
    if not _NAME_RE.match(name):
        raise BadInput(f"name: {name!r} is not usable as a project name; use lower-case letters, digits, - or _")
    resources = _resources(top.get("resources"))
    kind = choice("topology", top.get("topology", "standalone"), TOPOLOGIES)
    profile = Profile(
        name=name,
        source=source,
        topology=parse_topology(kind, top),
        environment=choice("environment", top.get("environment", "dev"), ENVIRONMENTS),
        image=_image(top.get("image")),
        resources=resources,
        memory=_memory(top.get("memory"), resources),
        persistence=_persistence(top.get("persistence")),
        network=_network(top.get("network")),
        security=_security(top.get("security")),
        server=_server(top.get("server")),
        restart=choice("restart", top.get("restart", "unless-stopped"), RESTART_POLICIES),
        ttl=_ttl(top.get("ttl")),
        alerts=_alerts(top.get("alerts")),
        monitoring=_monitoring(top.get("monitoring"), _network(top.get("network"))),
    )
    _check_across_sections(profile)
    return profile


def _check_across_sections(profile: Profile) -> None:
    persistence = profile.persistence
    if profile.topology.has_replicas and not persistence.aof and not persistence.rdb_save and profile.restart != "no":
        raise BadInput(
            "persistence: a primary with replicas has neither AOF nor RDB but restarts automatically; it would "
            "come back empty and its replicas would copy the empty data set; turn on persistence.aof or set restart: no"
        )
    if profile.monitoring.enabled:
        taken = {n.host_port for n in profile.nodes}
        for field, port in (
            ("prometheus_port", profile.monitoring.prometheus_port),
            ("alertmanager_port", profile.monitoring.alertmanager_port),
        ):
            if port in taken:
                raise BadInput(f"monitoring.{field}: {port} is a Redis or Sentinel node's port; pick another")
    last_port = profile.network.port + len(profile.data_nodes) - 1
    if last_port > 65535:
        raise BadInput(f"network.port: {profile.network.port} leaves no room for {len(profile.data_nodes)} nodes")


def resolve_profile_path(profile: str) -> Path:
    """PROFILE is a name in profiles/ or a path to a YAML file."""
    candidate = Path(profile)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        path = candidate
    else:
        path = paths.PROFILES_DIR / f"{profile}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in paths.PROFILES_DIR.glob("*.yaml"))
        raise BadInput(f"profile: {profile!r} not found; use one of {', '.join(known)} or a path to a YAML file")
    return path


def load_profile(profile: str) -> Profile:
    path = resolve_profile_path(profile)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise BadInput(f"{path}:{where} is not valid YAML; fix the syntax ({exc.__class__.__name__})") from None
    return profile_from_mapping(raw, path)
