"""Connections to Redis: settings (from the environment or given), one factory, a breaker.

Connection management, error handling and retries, with redis-py's own machinery:
explicit connect and socket timeouts (a paused server must not hang a caller),
`health_check_interval` (an idle pooled connection is PINGed before reuse, so a
restarted server is noticed before a command is lost on a dead socket), and
redis-py's `Retry` with exponential backoff and jitter on connection and
timeout errors. `ResilientRedis` adds the circuit breaker on top.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import SSLConnection
from redis.exceptions import AuthenticationError, MaxConnectionsError
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelManagedConnection

from redis_harness.client.breaker import CircuitBreaker, Listener
from redis_harness.client.durable import DURABLE_TIMEOUT_MS, durable_write
from redis_harness.client.pool import instrument, pool_status, pools_of

T = TypeVar("T")

# The name Sentinel monitors the primary under, unless the deployment says otherwise.
MASTER_NAME = "primary"


class SettingsError(ValueError):
    """A connection setting from the environment is unusable; the message names the variable and the fix."""


# The .env names of .env.example, plus REDIS_USERNAME for ACL users.
ENV_HOST, ENV_PORT, ENV_DB = "REDIS_HOST", "REDIS_PORT", "REDIS_DB"
ENV_PASSWORD, ENV_USERNAME = "REDIS_PASSWORD", "REDIS_USERNAME"
# TLS: the CA bundle that signed the server's certificate turns TLS on; the client's own
# certificate and key are for a deployment that asks for one (security.tls.client_auth).
ENV_TLS_CA, ENV_TLS_CERT, ENV_TLS_KEY = "REDIS_TLS_CA_FILE", "REDIS_TLS_CERT_FILE", "REDIS_TLS_KEY_FILE"
# Topologies: REDIS_SENTINELS (host:port,…) with REDIS_SENTINEL_PASSWORD and REDIS_MASTER_NAME, or
# REDIS_CLUSTER=1; REDIS_ADDRESS_MAP (name:port=host:port,…) maps the addresses nodes announce to
# the ones this client reaches (the deployment's published ports).
ENV_SENTINELS, ENV_SENTINEL_PASSWORD, ENV_MASTER_NAME = (
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_PASSWORD",
    "REDIS_MASTER_NAME",
)
ENV_CLUSTER, ENV_ADDRESS_MAP = "REDIS_CLUSTER", "REDIS_ADDRESS_MAP"
TLS_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


@dataclass(frozen=True)
class TlsSettings:
    """How a client speaks TLS to Redis: the server is checked against `ca_file` (and its name or
    address against the certificate's SANs); `cert_file`/`key_file` prove the client's own identity."""

    ca_file: str
    cert_file: str | None = None
    key_file: str | None = None
    min_version: str = "TLSv1.2"

    def redis_kwargs(self) -> dict[str, Any]:
        """redis-py's connection arguments for this TLS setting."""
        return {
            "ssl": True,
            "ssl_ca_certs": self.ca_file,
            "ssl_certfile": self.cert_file,
            "ssl_keyfile": self.key_file,
            "ssl_cert_reqs": "required",
            "ssl_check_hostname": True,
            "ssl_min_version": TLS_VERSIONS[self.min_version],
        }

    def ssl_context(self) -> ssl.SSLContext:
        """The same checks for a client on its own socket (the lean load user): the server's certificate
        verified against `ca_file` and its name checked, this client's certificate shown when set.

        Built from `ssl.SSLContext` as it is when called: gevent's cooperative class in a process gevent
        has patched (Locust), the standard library's otherwise."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname
        context.minimum_version = TLS_VERSIONS[self.min_version]
        context.load_verify_locations(cafile=self.ca_file)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


@dataclass(frozen=True)
class RedisSettings:
    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: str | None = None
    connect_timeout_s: float = 1.0
    socket_timeout_s: float = 1.0
    # Retries after the first attempt; each backs off base*2^n scaled by a random factor, capped.
    retries: int = 2
    backoff_base_s: float = 0.05
    backoff_cap_s: float = 0.5
    health_check_interval_s: int = 10
    # CLIENT SETNAME on connect: needs @connection, which not every ACL user has (healthcheck).
    client_name: str | None = None
    decode_responses: bool = False  # values are binary (codec.py)
    # Sentinel topology: ask these Sentinels (reachable addresses) for the current primary.
    sentinels: tuple[tuple[str, int], ...] = ()
    sentinel_password: str | None = None
    master_name: str = MASTER_NAME
    cluster: bool = False  # Cluster topology: host/port is one entry node, the rest is discovered
    # Cluster: more entry nodes (a Redis the harness did not deploy names its seed nodes).
    seeds: tuple[tuple[str, int], ...] = ()
    # Nodes announce their service names (redis-1:6379), which only resolve inside the
    # deployment's networks: announced address -> the address published on the loopback.
    address_map: tuple[tuple[tuple[str, int], tuple[str, int]], ...] = ()
    # Connections per pool (per node on a Cluster); None keeps redis-py's default. Beyond it a
    # checkout fails with MaxConnectionsError, counted in pool_status()["errors"].
    max_connections: int | None = None
    tls: TlsSettings | None = None  # None: plaintext

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: Any) -> RedisSettings:
        """REDIS_HOST, REDIS_PORT, REDIS_DB, REDIS_PASSWORD, REDIS_USERNAME (the names in .env.example);
        REDIS_TLS_CA_FILE (TLS on) with REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE (a client certificate);
        REDIS_SENTINELS, REDIS_SENTINEL_PASSWORD, REDIS_MASTER_NAME, REDIS_CLUSTER and REDIS_ADDRESS_MAP."""
        values: dict[str, Any] = {}
        if env.get(ENV_HOST):
            values["host"] = env[ENV_HOST]
        for var, field, lo, hi in ((ENV_PORT, "port", 1, 65535), (ENV_DB, "db", 0, 15)):
            raw = env.get(var)
            if raw:
                if not raw.strip().isdigit() or not lo <= int(raw) <= hi:
                    raise SettingsError(f"{var}: {raw!r} is not a whole number from {lo} to {hi}")
                values[field] = int(raw)
        if env.get(ENV_PASSWORD):
            values["password"] = env[ENV_PASSWORD]
        if env.get(ENV_USERNAME):
            values["username"] = env[ENV_USERNAME]
        values.update(_tls_from_env(env))
        values.update(_topology_from_env(env))
        return cls(**{**values, **overrides})

    def replace(self, **changes: Any) -> RedisSettings:
        return dataclasses.replace(self, **changes)

    @property
    def worst_case_call_s(self) -> float:
        """Longest one command can take before it raises: every attempt may spend the
        connect timeout, the handshake read and the command read, plus the backoffs."""
        attempt = self.connect_timeout_s + 2 * self.socket_timeout_s
        return (self.retries + 1) * attempt + self.retries * self.backoff_cap_s


def _address(var: str, text: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise SettingsError(f"{var}: {text.strip()!r} is not host:port; write e.g. 10.0.4.10:26379")
    return host, int(port)


def _addresses(var: str, text: str) -> tuple[tuple[str, int], ...]:
    return tuple(_address(var, part) for part in text.split(",") if part.strip())


def _topology_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if env.get(ENV_SENTINELS):
        values["sentinels"] = _addresses(ENV_SENTINELS, env[ENV_SENTINELS])
        values["sentinel_password"] = env.get(ENV_SENTINEL_PASSWORD) or env.get(ENV_PASSWORD) or None
        if env.get(ENV_MASTER_NAME):
            values["master_name"] = env[ENV_MASTER_NAME]
    cluster = (env.get(ENV_CLUSTER) or "").strip().lower()
    if cluster not in ("", "0", "1", "false", "true", "no", "yes"):
        raise SettingsError(f"{ENV_CLUSTER}: {cluster!r} is not 1 or 0")
    if cluster in ("1", "true", "yes"):
        if "sentinels" in values:
            raise SettingsError(f"{ENV_CLUSTER}: a Cluster has no Sentinels; unset {ENV_SENTINELS} or {ENV_CLUSTER}")
        values["cluster"] = True
    if env.get(ENV_ADDRESS_MAP):
        pairs = []
        for part in env[ENV_ADDRESS_MAP].split(","):
            if not part.strip():
                continue
            announced, sep, reachable = part.partition("=")
            if not sep:
                raise SettingsError(f"{ENV_ADDRESS_MAP}: {part.strip()!r} is not name:port=host:port")
            pairs.append((_address(ENV_ADDRESS_MAP, announced), _address(ENV_ADDRESS_MAP, reachable)))
        values["address_map"] = tuple(pairs)
    return values


def _tls_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    ca, cert, key = (env.get(var) or None for var in (ENV_TLS_CA, ENV_TLS_CERT, ENV_TLS_KEY))
    if not ca:
        if cert or key:
            raise SettingsError(f"{ENV_TLS_CERT if cert else ENV_TLS_KEY}: set; also set {ENV_TLS_CA} (TLS needs it)")
        return {}
    if bool(cert) != bool(key):
        missing = ENV_TLS_KEY if cert else ENV_TLS_CERT
        raise SettingsError(f"{missing}: not set; a client certificate needs both the certificate and its key")
    tls = TlsSettings(ca_file=ca, cert_file=cert, key_file=key)
    _check_tls_files(tls)
    return {"tls": tls}


def _check_tls_files(tls: TlsSettings) -> None:
    """Each file read and parsed now, so a wrong path or file names its variable here rather than
    surfacing as an ssl error from the first connection."""
    for var, path in ((ENV_TLS_CA, tls.ca_file), (ENV_TLS_CERT, tls.cert_file), (ENV_TLS_KEY, tls.key_file)):
        if path is None:
            continue
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise SettingsError(
                f"{var}: cannot read {path!r} ({exc.strerror}); give the path of a readable file"
            ) from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=tls.ca_file)
    except (ssl.SSLError, ValueError):
        raise SettingsError(
            f"{ENV_TLS_CA}: {tls.ca_file!r} holds no PEM certificate; give the deployment's CA bundle"
        ) from None
    if tls.cert_file:
        try:
            context.load_cert_chain(tls.cert_file, tls.key_file)
        except ssl.SSLError:
            raise SettingsError(
                f"{ENV_TLS_CERT}: {tls.cert_file!r} does not load with {ENV_TLS_KEY} {tls.key_file!r} "
                "(not PEM, or the key is not this certificate's); give the service's own pair"
            ) from None


class RemappedSentinel(Sentinel):
    """redis-py's Sentinel, with the addresses it reports mapped to reachable ones
    (the Sentinel counterpart of RedisCluster's address_remap)."""

    def __init__(self, remap: Callable[[tuple[str, int]], tuple[str, int]], *args: Any, **kwargs: Any) -> None:
        self._remap = remap
        super().__init__(*args, **kwargs)

    def discover_master(self, service_name: str) -> tuple[str, int]:
        return self._remap(super().discover_master(service_name))

    def discover_slaves(self, service_name: str) -> list[tuple[str, int]]:
        return [self._remap(address) for address in super().discover_slaves(service_name)]


class PrimaryFollowingConnection(SentinelManagedConnection):
    """A connection to the Sentinel-named primary that also drops itself on NOREPLICAS.

    redis-py asks Sentinel again after READONLY (the old primary has been demoted). A primary
    that answers NOREPLICAS has lost its replicas: after a pause or a partition it is most likely
    an old primary already replaced, which Sentinel demotes only once it can reach it again. Until
    then every write to it fails, so the next command should ask Sentinel, which names the new
    primary (or this one again, when it merely lost its replicas for a while)."""

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        except redis.ResponseError as exc:
            if self.connection_pool.is_master and str(exc).startswith("NOREPLICAS"):
                self.disconnect()
                raise redis.ConnectionError(f"the primary has no replicas to write to: {exc}") from exc
            raise


class PrimaryFollowingSSLConnection(PrimaryFollowingConnection, SSLConnection):
    """PrimaryFollowingConnection over TLS (as redis-py's SentinelManagedSSLConnection)."""


class UnmappedAddress(redis.ConnectionError):
    """Sentinel or Cluster named an address that is not a node of the deployment.

    Refused rather than followed: whoever can make a Sentinel report another
    host (SENTINEL MONITOR, a forged hello message) would otherwise receive
    this client's AUTH with its username and password."""


def remapper(settings: RedisSettings) -> Callable[[tuple[str, int]], tuple[str, int]]:
    """Announced address -> reachable one; with a map, an address outside it is refused."""
    table = {announced: reachable for announced, reachable in settings.address_map}

    def remap(address: tuple[str, int]) -> tuple[str, int]:
        key = (str(address[0]), int(address[1]))
        if not table:
            return key
        if key not in table:
            raise UnmappedAddress(f"{key[0]}:{key[1]} is not a node of this deployment; not connecting to it")
        return table[key]

    return remap


def make_redis(settings: RedisSettings) -> redis.Redis:
    """The one factory: every client of the harness is built here (standalone, Sentinel or Cluster)."""
    retry = Retry(
        ExponentialWithJitterBackoff(cap=settings.backoff_cap_s, base=settings.backoff_base_s), settings.retries
    )
    common: dict[str, Any] = {
        "username": settings.username,
        "password": settings.password,
        "socket_connect_timeout": settings.connect_timeout_s,
        "socket_timeout": settings.socket_timeout_s,
        "socket_keepalive": True,
        "retry": retry,  # retries ConnectionError (incl. BusyLoadingError while the AOF loads) and TimeoutError
        "health_check_interval": settings.health_check_interval_s,
        "client_name": settings.client_name,
        "decode_responses": settings.decode_responses,
    }
    if settings.max_connections is not None:
        common["max_connections"] = settings.max_connections
    tls = settings.tls.redis_kwargs() if settings.tls else {}
    common.update(tls)
    if settings.cluster:
        # Every published node is a way in: the cluster stays reachable with any one of them down.
        reachable = [reachable for _, reachable in settings.address_map] or list(settings.seeds)
        reachable = reachable or [(settings.host, settings.port)]
        return RedisCluster(  # type: ignore[return-value]  # same command API
            startup_nodes=[ClusterNode(host, port) for host, port in reachable],
            address_remap=remapper(settings),
            **common,
        )
    if settings.sentinels:
        sentinel = RemappedSentinel(
            remapper(settings),
            list(settings.sentinels),
            sentinel_kwargs={
                "password": settings.sentinel_password,
                "socket_timeout": settings.socket_timeout_s,
                "socket_connect_timeout": settings.connect_timeout_s,
                **tls,
            },
        )
        return sentinel.master_for(
            settings.master_name,
            db=settings.db,
            connection_class=PrimaryFollowingSSLConnection if settings.tls else PrimaryFollowingConnection,
            **common,
        )
    return redis.Redis(host=settings.host, port=settings.port, db=settings.db, **common)


def is_outage(exc: BaseException) -> bool:
    """Errors that mean Redis cannot be reached or did not answer in time.

    A wrong password (AuthenticationError) and an exhausted local pool are
    ConnectionErrors too, but they are ours to fix, not an outage to wait out.
    """
    if isinstance(exc, (AuthenticationError, MaxConnectionsError)):
        return False
    return isinstance(exc, (redis.ConnectionError, redis.TimeoutError))


def check_durable(settings: RedisSettings, timeout_ms: int) -> None:
    """ValueError when a durable write through these settings could not mean what it says."""
    if settings.cluster:
        raise ValueError("durable: not on a Cluster client (WAIT must follow the write on its shard's connection)")
    if timeout_ms / 1000 >= settings.socket_timeout_s:
        raise ValueError(
            f"durable: timeout_ms {timeout_ms} is not shorter than the socket timeout "
            f"({settings.socket_timeout_s:g} s): the read would time out before WAIT answers"
        )


class ResilientRedis:
    """A redis.Redis whose calls go through a circuit breaker.

    Call `call(lambda r: r.get(key))`: with the breaker closed the command runs
    (with redis-py's retries); after `fail_max` consecutive outages it raises
    BreakerOpen at once until the cooldown lets one trial call through.
    """

    def __init__(
        self,
        settings: RedisSettings,
        *,
        fail_max: int = 5,
        reset_timeout_s: float = 5.0,
        listeners: tuple[Listener, ...] = (),
        name: str | None = None,
    ) -> None:
        self.settings = settings
        self.redis = make_redis(settings)
        for pool in pools_of(self.redis):
            instrument(pool)  # waits and errors count from the first command on
        self.breaker = CircuitBreaker(
            name or f"{settings.username or 'default'}@{settings.host}:{settings.port}",
            fail_max=fail_max,
            reset_timeout_s=reset_timeout_s,
            is_failure=is_outage,
            listeners=listeners,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str], **breaker: Any) -> ResilientRedis:
        return cls(RedisSettings.from_env(env), **breaker)

    def call(self, fn: Callable[[redis.Redis], T]) -> T:
        return self.breaker.call(fn, self.redis)

    def pipeline(self, fill: Callable[[Any], None], *, transaction: bool = False) -> list[Any]:
        """Queue commands with `fill(pipe)` and send them in one round trip."""

        def run(r: redis.Redis) -> list[Any]:
            with r.pipeline(transaction=transaction) as pipe:
                fill(pipe)
                return pipe.execute()

        return self.call(run)

    def durable(
        self, fill: Callable[[Any], None], *, replicas: int = 1, timeout_ms: int = DURABLE_TIMEOUT_MS
    ) -> list[Any]:
        """`pipeline(fill)` acknowledged only once `replicas` replicas confirmed it (client.durable):
        NotDurable otherwise, a failed write to the caller but not an outage to the breaker."""
        check_durable(self.settings, timeout_ms)
        return self.call(lambda r: durable_write(r, fill, replicas=replicas, timeout_ms=timeout_ms))

    def pool_status(self) -> dict[str, int | None]:
        """Connections in use, idle, the maximum, waits and errors of this client's pool(s)."""
        return pool_status(self.redis)

    def close(self) -> None:
        self.redis.close()
