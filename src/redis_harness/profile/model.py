"""The deployment profile: a pydantic model of the YAML, validated and derived.

A profile is one YAML file; loading it yields an immutable Profile carrying
every derived number (maxmemory in bytes, slowlog threshold in µs, …) so the
templates only print values. The same model gives the JSON schema editors
use (profiles/profile.schema.json) and the settings table in docs/profiles.md. Bad input
raises BadInput with one line naming the field and the fix.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from redis_harness import paths
from redis_harness.errors import BadInput
from redis_harness.profile.messages import bad_input
from redis_harness.profile.target import TARGET_KEYS, Target
from redis_harness.profile.topology import (
    Cluster,
    Node,
    Replication,
    Sentinel,
    Topology,
    TopologyKind,
    resolve_topology,
)
from redis_harness.profile.types import LLONG_MAX, Duration, Hint, Section, Size, refuse
from redis_harness.profile.units import size_bytes
from redis_harness.profile.yaml_file import EMPTY_FIX, read_yaml

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
MAX_RATIO = 0.9
MIN_MEMORY = 16 * 1024**2
# The project's own image, built offline from Debian's packages (`redis-harness image build`).
DEFAULT_IMAGE = "redis-harness/redis:7.0-bookworm"
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,40}$"
ENV_NAME_PATTERN = r"^[A-Z][A-Z0-9_]*$"
# A TTL's absolute expiry (now + TTL, in ms) must fit Redis's signed 64-bit integer; half of it leaves
# room for "now" for the next hundred million years.
MAX_TTL_MS = LLONG_MAX // 2


class Image(Section):
    """The container image every node runs."""

    ref: str = Field(
        DEFAULT_IMAGE,
        description="Image pinned by tag (repository:tag, never latest). `redis-harness/...` images are built "
        "offline from Debian's packages (`redis-harness image build`); any other ref is pulled, e.g. redis:7.2.5",
    )

    @field_validator("ref")
    @classmethod
    def _pinned(cls, ref: str) -> str:
        name, _, tag = ref.rpartition(":")
        if not name or not tag or "/" in tag or tag == "latest":
            raise refuse(
                f"{ref!r} is not pinned; write repository:tag with an explicit "
                "version, e.g. redis:7.2.5 or redis-harness/redis:7.0-bookworm"
            )
        return ref

    updates: Literal["pinned", "newest"] = Field(
        "pinned",
        description="newest: `plan` checks the image against Debian's -security and -updates archives and `up` "
        "rebuilds it and rolls the containers onto it when a package is behind (redis-harness/... images only); "
        "pinned: the image stays as built",
    )

    @property
    def is_offline_build(self) -> bool:
        """Images in the harness's own namespace are built locally, never pulled."""
        return self.ref.startswith("redis-harness/")

    @model_validator(mode="after")
    def _newest_is_built_here(self) -> Image:
        if self.updates == "newest" and not self.is_offline_build:
            raise refuse(
                f"newest needs an image built here from Debian's archives, and {self.ref} is pulled; "
                "set image.updates: pinned, or image.ref: redis-harness/redis:7.0-bookworm",
                "updates",
            )
        return self


class Resources(Section):
    """Limits of each container."""

    memory_bytes: Size = Field(
        "256mb",
        alias="memory",
        description="Container memory limit, no swap (binary units: 1gb = 2^30 bytes; 16mb to 1 TiB, "
        "and no more than the host has)",
    )
    cpus: float = Field(1.0, ge=0.1, le=64, description="CPU limit in cores (no more than the host has)")
    pids: int = Field(
        128, ge=16, le=65536, description="Process/thread limit (Redis needs a handful; forks for RDB/AOF rewrite)"
    )

    @field_validator("memory_bytes")
    @classmethod
    def _enough(cls, memory: int) -> int:
        if memory < MIN_MEMORY:
            raise refuse(f"{memory} bytes is too small; give Redis at least 16mb")
        return memory


# What the container holds besides the data set and client buffers: the server's own
# allocator and binary, and the healthcheck's sh + redis-cli, which run in the same cgroup.
PROCESS_RESERVE_BYTES = 8 * 1024**2
MIN_CLIENT_BUFFER_BYTES = 1024**2  # Redis's floor for client-query-buffer-limit and a 1 MiB reply


class Memory(Section):
    """Redis's own memory limit and what it evicts."""

    maxmemory_ratio: Annotated[
        float, Hint("leave room for fragmentation, buffers and fork copy-on-write (default 0.70)")
    ] = Field(
        0.70,
        gt=0,
        le=MAX_RATIO,
        description="maxmemory = ratio x resources.memory, in (0, 0.9]; the rest is for fragmentation, "
        "client buffers and fork copy-on-write",
    )
    policy: Literal[EVICTION_POLICIES] = Field(  # type: ignore[valid-type]
        "volatile-lru", description="Eviction policy; volatile-lru evicts only keys that have a TTL"
    )
    samples: int = Field(
        5, ge=1, le=64, description="Keys sampled per eviction (higher = closer to true LRU, more CPU)"
    )
    # The container limit maxmemory derives from; set by the Profile, never read from YAML.
    _limit_bytes: int = PrivateAttr(0)

    @model_validator(mode="before")
    @classmethod
    def _maxmemory_is_derived(cls, data: Any) -> Any:
        if isinstance(data, dict) and "maxmemory" in data:
            try:
                unlimited = size_bytes(data["maxmemory"]) == 0
            except ValueError:
                unlimited = False
            if unlimited:
                raise refuse(
                    "0 (unlimited) with a container memory limit gets Redis OOM-killed instead of evicting; "
                    "remove it and set memory.maxmemory_ratio",
                    "maxmemory",
                )
            raise refuse(
                "set memory.maxmemory_ratio instead; maxmemory is derived from resources.memory "
                "so the two cannot disagree",
                "maxmemory",
            )
        return data

    @property
    def maxmemory_bytes(self) -> int:
        """ratio x the container memory limit."""
        return int(self._limit_bytes * self.maxmemory_ratio)

    @property
    def headroom_bytes(self) -> int:
        """What maxmemory leaves of the container."""
        return self._limit_bytes - self.maxmemory_bytes

    @property
    def clients_bytes(self) -> int:
        """maxmemory-clients: the most all clients' query and output buffers may hold together; a quarter
        of the headroom, so data + buffers + the process's own memory stay below the container limit
        whatever clients send or leave unread."""
        return max(MIN_CLIENT_BUFFER_BYTES, self.headroom_bytes // 4)

    @property
    def client_output_hard_bytes(self) -> int:
        """One normal or Pub/Sub client's output buffer: half the clients' budget."""
        return max(MIN_CLIENT_BUFFER_BYTES, self.clients_bytes // 2)

    @property
    def client_output_soft_bytes(self) -> int:
        return self.client_output_hard_bytes // 2


RdbRules = Annotated[
    tuple[tuple[int, int], ...],
    BeforeValidator(lambda value: _rdb_rules(value)),
    WithJsonSchema({"type": "array", "items": {"type": "string", "pattern": r"^\s*\d+\s+\d+\s*$"}}),
]


def _rdb_rules(value: Any) -> tuple[tuple[int, int], ...]:
    if not isinstance(value, (list, tuple)):
        raise refuse("expected a list like ['3600 1', '300 100'] or []")
    pairs = []
    for rule in value:
        parts = rule.split() if isinstance(rule, str) else []
        if len(parts) != 2 or not all(p.isdigit() and 0 < int(p) <= 2**31 - 1 for p in parts):
            raise refuse(f"{rule!r} is not 'SECONDS CHANGES'; write e.g. '300 100'")
        pairs.append((int(parts[0]), int(parts[1])))
    return tuple(pairs)


class Persistence(Section):
    """What survives a restart: the append-only file and RDB snapshots on the /data volume."""

    aof: bool = Field(True, description="Append-only file on the /data volume")
    appendfsync: Literal["always", "everysec", "no"] = Field(
        "everysec", description="always | everysec (lose at most ~1 s on a crash) | no"
    )
    rdb_save: RdbRules = Field(
        ["3600 1", "300 100", "60 10000"],
        description="RDB snapshot rules 'SECONDS CHANGES'; [] turns RDB off",
    )

    @property
    def save_directive(self) -> str:
        return " ".join(f"{secs} {changes}" for secs, changes in self.rdb_save)

    @property
    def kill_loss_window_s(self) -> float | None:
        """How long before a SIGKILL of Redis an acknowledged write may still be lost; None: no bound
        (without the AOF, all since the last RDB snapshot). A killed process loses only what it had not
        yet written to the AOF file (the page cache outlives it): nothing, except with everysec, where
        Redis postpones the write for up to 2 s while a background fsync is slow. A host crash loses
        more (whatever was not fsynced)."""
        if not self.aof:
            return None
        return 2.0 if self.appendfsync == "everysec" else 0.0


class Network(Section):
    """Where the deployment is reachable from, and from whom."""

    container_port: ClassVar[int] = 6379

    publish: Literal["loopback", "host", "none"] = Field(
        "loopback",
        description="loopback: publish on network.host:network.port (a loopback address); host: publish on a host "
        "address other hosts reach, accepting only the networks in network.allow; none: reachable only from "
        "containers on the deployment's internal network",
    )
    host: str = Field(
        "127.0.0.1",
        description="Host address of the published port: a loopback address, or with publish: host one of the "
        "host's own IPv4 addresses",
    )
    port: int = Field(
        6379, ge=1024, le=65535, description="Host port of the first node; the other nodes follow (redis-1 on port+1 …)"
    )
    allow: tuple[str, ...] = Field(
        (),
        description="With publish: host, the client networks (CIDR, e.g. 10.0.4.0/24) whose new connections "
        "the host firewall accepts; every other source is dropped. Required: there is no default 'everyone'",
    )

    @field_validator("host")
    @classmethod
    def _ipv4(cls, host: str) -> str:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise refuse(f"{host!r} is not an IP address; use 127.0.0.1") from None
        if address.version == 6:
            raise refuse(f"{host} is an IPv6 address, which the harness does not support; use 127.0.0.1")
        return host

    @field_validator("allow", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            raise refuse("expected a list of networks like [10.0.4.0/24]")
        networks = []
        for item in value:
            try:
                network = ipaddress.ip_network(str(item), strict=True)
            except ValueError as exc:
                fix = "write the network address, e.g. 10.0.4.0/24" if "host bits" in str(exc) else "e.g. 10.0.4.0/24"
                raise refuse(f"{item!r} is not an IPv4 network; {fix}") from None
            if network.version == 6:
                raise refuse(f"{item} is an IPv6 network, which the harness does not support; e.g. 10.0.4.0/24")
            if network.prefixlen == 0:
                raise refuse(f"{item} is every address; name the client networks, e.g. 10.0.4.0/24")
            networks.append(str(network))
        return tuple(networks)

    @model_validator(mode="after")
    def _where_published(self) -> Network:
        address = ipaddress.ip_address(self.host)
        if self.publish == "loopback" and not address.is_loopback:
            raise refuse(
                f"{self.host} is not a loopback address but network.publish is loopback; "
                "use 127.0.0.1, or publish: host with an allow list (or publish: none)",
                "host",
            )
        if self.publish == "host":
            if address.is_unspecified or address.is_multicast:
                raise refuse(f"{self.host} is not one host address; name the address clients connect to", "host")
            if not self.allow:
                raise refuse("publish: host needs the client networks it accepts; e.g. allow: [10.0.4.0/24]", "allow")
        elif self.allow:
            raise refuse("only publish: host uses an allow list; remove it or set publish: host", "allow")
        return self

    @property
    def allows_only_loopback(self) -> bool:
        return all(ipaddress.ip_network(network).subnet_of(LOOPBACK) for network in self.allow)


LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


@dataclass(frozen=True)
class ServiceUser:
    name: str
    password_env: str

    @property
    def key_pattern(self) -> str:
        # key design {service}:{version}:{entity}:{id}
        return f"{self.name}:*"


class ServiceSpec(Section):
    """One service's ACL user."""

    password_env: Annotated[str | None, Hint("write an environment variable name like REDIS_PRICE_PASSWORD")] = Field(
        None,
        pattern=ENV_NAME_PATTERN,
        description="Environment variable (or .env entry) with the user's password; default REDIS_<NAME>_PASSWORD",
    )


RESERVED_USERS = ("default", "admin", "healthcheck", "replication", "sentinel")
DEFAULT_SERVICES = {
    name: ServiceSpec(password_env=f"REDIS_{name.upper()}_PASSWORD") for name in ("price", "processing", "acquisition")
}


class Tls(Section):
    """TLS on every link: clients, replication, Sentinel and the Cluster bus (Redis's own tls-* settings)."""

    enabled: bool = Field(False, description="TLS on every port; the plaintext port is closed (port 0)")
    client_auth: Literal["none", "optional", "required"] = Field(
        "none",
        description="none: clients prove who they are with their ACL password only; required: every client also "
        "shows a certificate from the deployment's CA (mutual TLS); optional: a certificate, when shown, is checked",
    )
    min_version: Literal["TLSv1.2", "TLSv1.3"] = Field(
        "TLSv1.2", description="Oldest protocol accepted: TLSv1.2 (TLS 1.2 and 1.3) or TLSv1.3"
    )
    validity_s: Duration = Field(
        "90d", alias="validity", description="Lifetime of the certificates the harness's CA issues (1d to 825d)"
    )
    renew_before_s: Duration = Field(
        "30d",
        alias="renew_before",
        description="`up` issues new certificates, and monitor and the alerts warn, once one expires within this",
    )
    names: tuple[str, ...] = Field(
        (),
        description="More names or addresses clients use for the deployment (its published address, service "
        "names, localhost and 127.0.0.1 are always in the server certificate)",
    )
    ca_file: str | None = Field(
        None,
        description="Your own PKI instead of the harness's CA: the CA bundle clients and nodes trust "
        "(with cert_file and key_file; paths relative to the profile file)",
    )
    cert_file: str | None = Field(None, description="Your own PKI: the server certificate every node presents")
    key_file: str | None = Field(None, description="Your own PKI: that certificate's private key")

    @field_validator("validity_s")
    @classmethod
    def _sane_validity(cls, seconds: float) -> float:
        if not 86400 <= seconds <= 825 * 86400:
            raise refuse("must be between 1d and 825d (what clients accept for a server certificate), e.g. 90d")
        return seconds

    @field_validator("names", mode="before")
    @classmethod
    def _names(cls, names: Any) -> tuple[str, ...]:
        # Before strict validation: YAML gives a list, the model keeps a tuple.
        if not isinstance(names, (list, tuple)) or not all(isinstance(name, str) for name in names):
            raise refuse("expected a list of host names or addresses, e.g. [redis.internal, 10.0.4.7]")
        for name in names:
            if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$", name):
                raise refuse(f"{name!r} is not a host name or IPv4 address; e.g. redis.internal or 10.0.4.7")
        return tuple(names)

    @model_validator(mode="after")
    def _coherent(self) -> Tls:
        if self.renew_before_s >= self.validity_s:
            raise refuse(
                f"{self.renew_before_s / 86400:g}d is not shorter than validity ({self.validity_s / 86400:g}d); "
                "certificates would be renewed at every up; e.g. renew_before: 30d",
                "renew_before",
            )
        own = {"ca_file": self.ca_file, "cert_file": self.cert_file, "key_file": self.key_file}
        given = [field for field, value in own.items() if value]
        if given and len(given) != 3:
            missing = ", ".join(field for field in own if field not in given)
            raise refuse(f"your own PKI needs ca_file, cert_file and key_file; add {missing}", given[0])
        if given and not self.enabled:
            raise refuse("certificate files are given but TLS is off; set security.tls.enabled: true", "enabled")
        return self

    @property
    def own_pki(self) -> bool:
        return self.ca_file is not None


class Security(Section):
    """ACL users and password rules."""

    service_specs: dict[str, ServiceSpec] = Field(
        default_factory=lambda: dict(DEFAULT_SERVICES),
        alias="services",
        min_length=1,
        description="One ACL user per service, limited to keys and channels `<service>:*` "
        "(key design {service}:{version}:{entity}:{id})",
    )
    min_password_length: int = Field(
        16, ge=8, le=1024, description="Shortest password accepted (a prod profile needs at least 32)"
    )
    tls: Tls = Field(default_factory=Tls, description="TLS on every link (off by default)")
    default_user: str = Field(
        "off",
        description="What a client that sends only a password (the `default` user, REDIS_PASSWORD) may do: "
        "`off` (nothing) or exactly the rights of one service, never more",
    )

    @field_validator("default_user", mode="before")
    @classmethod
    def _bare_off(cls, value: Any) -> Any:
        return "off" if value is False else value  # YAML 1.1 reads a bare `off` as false

    @model_validator(mode="after")
    def _default_is_off_or_a_service(self) -> Security:
        allowed = ("off", *self.service_specs)
        if self.default_user not in allowed:
            raise refuse(f"{self.default_user!r} is not valid; use one of {', '.join(allowed)}", "default_user")
        return self

    @property
    def default_service(self) -> ServiceUser | None:
        return next((s for s in self.services if s.name == self.default_user), None)

    @field_validator("service_specs")
    @classmethod
    def _usable_names(cls, specs: dict[str, ServiceSpec]) -> dict[str, ServiceSpec]:
        for name in specs:
            if not re.match(NAME_PATTERN, name) or name in RESERVED_USERS:
                raise refuse(f"{name!r} is not a usable user name; use lower-case letters and digits", name)
        return specs

    @property
    def services(self) -> tuple[ServiceUser, ...]:
        return tuple(
            ServiceUser(name, spec.password_env or f"REDIS_{name.upper()}_PASSWORD")
            for name, spec in self.service_specs.items()
        )


class Server(Section):
    """Connection and slowlog settings of every Redis node."""

    tcp_backlog: int = Field(
        511, ge=1, le=65535, description="Listen backlog (capped by the host's net.core.somaxconn)"
    )
    maxclients: int = Field(1000, ge=1, le=100000, description="Maximum client connections")
    timeout_s: int = Field(
        10,
        ge=0,
        le=86400,
        alias="timeout",
        description="Close idle clients after this many seconds (0 = never); keeps idle strangers from "
        "holding every maxclients slot",
    )
    slowlog_max_len: int = Field(128, ge=1, le=100000, description="Entries kept in SLOWLOG")


def _ttl_fits(seconds: float) -> float:
    if seconds * 1000 > MAX_TTL_MS:
        raise refuse(f"{seconds:g} s is longer than Redis accepts as an expire time; use e.g. 24h")
    return seconds


Ttl_ = Annotated[Duration, AfterValidator(_ttl_fits)]


class Ttl(Section):
    """How long a cached value of each data type may be served before it is read again."""

    price: Ttl_ = Field("30s", description="Prices move fastest")
    liquidity: Ttl_ = Field("60s", description="Order-book liquidity")
    volume: Ttl_ = Field("300s", description="Trading volume")
    historical: Ttl_ = Field("24h", description="History hardly changes")


class Alerts(Section):
    """Thresholds: alerts, load-run gates, and the server's slowlog and latency monitor."""

    miss_ratio: float = Field(0.20, ge=0, le=1, description="Alert when the cache miss ratio exceeds this")
    memory_ratio: float = Field(0.80, ge=0, le=1, description="Alert when used memory exceeds this share of maxmemory")
    slow_update_s: Duration = Field(
        "100ms",
        alias="slow_update",
        description="Alert on updates slower than this; also the slowlog and latency-monitor threshold of the server",
    )
    evictions_per_s: float = Field(100, ge=0, le=1e9, description="Alert when evictions per second exceed this")
    error_ratio: float = Field(
        0.01, ge=0, le=1, description="Alert when more than this share of commands fail (load runs)"
    )
    recovery_s: Duration = Field(
        "30s", alias="recovery", description="Longest acceptable error window after a fault (recovery scenario)"
    )
    keys_without_ttl_ratio: float = Field(
        0.5,
        ge=0,
        le=1,
        description="With a volatile-* policy: alert when more than this share of keys has no TTL "
        "(Redis may evict none of them, and refuses writes with -OOM once memory is full)",
    )

    @field_validator("slow_update_s")
    @classmethod
    def _fits_slowlog(cls, seconds: float) -> float:
        # slowlog-log-slower-than is a long long in µs: past it Redis refuses its config and restart-loops.
        if round(seconds * 1_000_000) > LLONG_MAX:
            raise refuse(
                f"{seconds:g} s is more than Redis accepts for slowlog-log-slower-than ({LLONG_MAX} µs); use e.g. 100ms"
            )
        return seconds

    @property
    def slowlog_threshold_us(self) -> int:
        return int(round(self.slow_update_s * 1_000_000))

    @property
    def latency_monitor_threshold_ms(self) -> int:
        return max(1, int(round(self.slow_update_s * 1000)))


class Monitoring(Section):
    """Prometheus, Alertmanager and one redis_exporter per data node, beside the deployment."""

    enabled: bool = Field(
        False,
        description="Run the monitoring stack with the deployment; with security.tls, over TLS, and a "
        "blackbox_exporter probes each node's certificate expiry",
    )
    prometheus_port: int = Field(
        9090, ge=1024, le=65535, description="Prometheus's port, published on network.host (loopback) only"
    )
    alertmanager_port: int = Field(
        9093, ge=1024, le=65535, description="Alertmanager's port, published on network.host (loopback) only"
    )
    scrape_interval_s: Duration = Field(
        "5s", alias="scrape_interval", description="How often Prometheus reads the exporters (1s to 300s)"
    )
    alert_for_s: Duration = Field(
        "30s", alias="alert_for", description="How long a condition must hold before its alert fires"
    )
    # The monitoring containers' own image and limits: fixed, not profile settings.
    image: ClassVar[str] = "redis-harness/monitoring:bookworm"
    memory_bytes: ClassVar[int] = 256 * 1024**2
    cpus: ClassVar[float] = 0.5
    pids: ClassVar[int] = 256

    @field_validator("scrape_interval_s")
    @classmethod
    def _sane_interval(cls, seconds: float) -> float:
        if not 1 <= seconds <= 300:
            raise refuse("must be between 1s and 300s, e.g. 5s")
        return seconds

    @model_validator(mode="after")
    def _two_ports(self) -> Monitoring:
        if self.prometheus_port == self.alertmanager_port:
            raise refuse("the same port as monitoring.prometheus_port; pick another", "alertmanager_port")
        return self


class Profile(Section):
    """One deployment: its topology, limits, Redis settings, users and thresholds; or, with `target:`,
    a Redis the harness did not deploy (then only name, target, ttl and alerts are allowed)."""

    model_config = Section.model_config | {"title": "redis-harness profile"}

    name: Annotated[str, Hint("use lower-case letters, digits, - or _ (it names the compose project)")] = Field(
        pattern=NAME_PATTERN,
        description="Deployment name: compose project `redis-harness-<name>`, folder compose/<name>/; "
        "default the file's name",
    )
    topology_kind: TopologyKind = Field(
        "standalone",
        alias="topology",
        description="standalone | replication | sentinel | cluster (see profiles/ha.yaml, cluster.yaml)",
    )
    environment: Literal[ENVIRONMENTS] = Field(  # type: ignore[valid-type]
        "dev", description="dev | ci | prod; prod refuses passwords shorter than 32 characters"
    )
    image: Image = Field(default_factory=Image, description="The container image")
    resources: Resources = Field(default_factory=Resources, description="Container limits")
    memory: Memory = Field(default_factory=Memory, description="maxmemory and eviction")
    persistence: Persistence = Field(default_factory=Persistence, description="AOF and RDB")
    network: Network = Field(default_factory=Network, description="The published port")
    security: Security = Field(default_factory=Security, description="ACL users")
    server: Server = Field(default_factory=Server, description="Connections and slowlog")
    restart: Literal["no", "always", "on-failure", "unless-stopped"] = Field(
        "unless-stopped", description="Container restart policy: no | always | on-failure | unless-stopped"
    )
    ttl_table: Ttl = Field(
        default_factory=Ttl, alias="ttl", description="Cache TTL per data type (read by clients and load scenarios)"
    )
    alerts: Alerts = Field(default_factory=Alerts, description="Alert and gate thresholds")
    monitoring: Monitoring = Field(
        default_factory=Monitoring, description="Prometheus, Alertmanager and redis_exporter (off by default)"
    )
    replication: Replication | None = Field(None, description="Replicas (replication, sentinel, cluster)")
    sentinel: Sentinel | None = Field(None, description="Sentinels (sentinel topology)")
    cluster: Cluster | None = Field(None, description="Cluster shards (cluster topology)")
    target: Target | None = Field(
        None,
        description="A Redis the harness did not deploy (load, monitor and verify as an audit work on it; "
        "up, down, rollback, fault, render and bench refuse); a target profile has only name, target, ttl and alerts",
    )

    _source: Path = PrivateAttr(Path("profile.yaml"))
    _topology: Topology = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _name_defaults_to_the_file(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and "name" not in data and info.context and "source" in info.context:
            data = {**data, "name": Path(info.context["source"]).stem}
        if isinstance(data, dict) and "target" in data:
            extra = next((key for key in data if key not in TARGET_KEYS), None)
            if extra is not None:
                raise refuse(
                    "a target profile describes a Redis the harness did not deploy, so it has no deployment "
                    f"settings; remove {extra} (keys allowed beside target: {', '.join(TARGET_KEYS[2:])})",
                    str(extra),
                )
        return data

    @model_validator(mode="after")
    def _derive(self, info: ValidationInfo) -> Profile:
        if info.context and "source" in info.context:
            self._source = Path(info.context["source"])
        if self.target is not None:
            self._topology = Topology(kind=self.target.kind, replication=None, sentinel=None, cluster=None)
            return self
        self._topology = resolve_topology(self.topology_kind, self.replication, self.sentinel, self.cluster)
        self.memory._limit_bytes = self.resources.memory_bytes
        self._check_memory_floor()
        self._check_monitoring()
        persistence = self.persistence
        if self._topology.has_replicas and not persistence.aof and not persistence.rdb_save and self.restart != "no":
            raise refuse(
                "a primary with replicas has neither AOF nor RDB but restarts automatically; it would come back "
                "empty and its replicas would copy the empty data set; turn on persistence.aof or set restart: no",
                "persistence",
            )
        self._check_published_safely()
        last_port = self.network.port + len(self.data_nodes) - 1
        if last_port > 65535:
            raise refuse(f"{self.network.port} leaves no room for {len(self.data_nodes)} nodes", "network.port")
        return self

    def _check_published_safely(self) -> None:
        network = self.network
        if network.publish == "host" and not self.security.tls.enabled and not network.allows_only_loopback:
            raise refuse(
                "publish: host would send passwords and data in plaintext over the network; "
                "set security.tls.enabled: true (or allow only 127.0.0.0/8)",
                "network.publish",
            )

    def _check_monitoring(self) -> None:
        monitoring = self.monitoring
        if not monitoring.enabled:
            return
        if self.network.publish != "loopback":
            raise refuse("needs network.publish: loopback, where its ports are published", "monitoring.enabled")
        taken = {n.host_port for n in self.nodes}
        for field, port in (
            ("prometheus_port", monitoring.prometheus_port),
            ("alertmanager_port", monitoring.alertmanager_port),
        ):
            if port in taken:
                raise refuse(f"{port} is a Redis or Sentinel node's port; pick another", f"monitoring.{field}")

    def _check_memory_floor(self) -> None:
        memory, limit = self.memory, self.resources.memory_bytes
        if memory.headroom_bytes - memory.clients_bytes >= PROCESS_RESERVE_BYTES:
            return
        # headroom - max(1 MiB, headroom / 4) >= reserve  <=>  headroom >= max(reserve + 1 MiB, reserve * 4/3)
        needed = max(PROCESS_RESERVE_BYTES + MIN_CLIENT_BUFFER_BYTES, PROCESS_RESERVE_BYTES * 4 / 3)
        needed /= 1 - memory.maxmemory_ratio
        raise refuse(
            f"{limit} bytes leaves {memory.headroom_bytes} beside maxmemory for client buffers "
            f"({memory.clients_bytes}), the server process and its healthcheck ({PROCESS_RESERVE_BYTES}); "
            f"give at least {math.ceil(needed / 1024**2)}mb or lower memory.maxmemory_ratio",
            "resources.memory",
        )

    @property
    def source(self) -> Path:
        return self._source

    @property
    def is_target(self) -> bool:
        """A Redis the harness did not deploy: read and loaded, never changed."""
        return self.target is not None

    @property
    def topology(self) -> Topology:
        return self._topology

    @property
    def ttl(self) -> Mapping[str, float]:
        return MappingProxyType(self.ttl_table.model_dump())

    @property
    def project(self) -> str:
        """Compose project name; containers, networks and volumes carry it."""
        return f"redis-harness-{self.name}"

    @property
    def published(self) -> bool:
        return self.network.publish != "none"

    @property
    def tls(self) -> Tls:
        return self.security.tls

    @property
    def data_nodes(self) -> tuple[Node, ...]:
        """Every Redis server of the deployment; node i is published on network.port + i. A target's: its
        address, or its Cluster seed nodes (named host:port), or its Sentinels' primary (named by master name)."""
        target = self.target
        if target is not None:
            if target.kind == "sentinel":
                return (Node(f"{target.master_name}", "primary", None),)
            return tuple(Node(f"{host}:{port}", target.kind, port) for host, port in target.seeds)
        return self.topology.data_nodes(self.network.port if self.published else None)

    @property
    def sentinel_nodes(self) -> tuple[Node, ...]:
        if self.target is not None:
            return ()  # asked for the primary, never checked or changed by the harness
        return self.topology.sentinel_nodes(self.published)

    @property
    def nodes(self) -> tuple[Node, ...]:
        return self.data_nodes + self.sentinel_nodes


# --------------------------------------------------------------------------- entry points


def profile_from_mapping(raw: Any, source: Path) -> Profile:
    """Validate a parsed profile and derive every number the templates print."""
    if raw is None:
        raise BadInput(f"{source}: the profile is empty; {EMPTY_FIX}")
    try:
        return Profile.model_validate(raw, context={"source": source})
    except ValidationError as exc:
        raise bad_input(exc, Profile) from None


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
    return profile_from_mapping(read_yaml(path), path)
