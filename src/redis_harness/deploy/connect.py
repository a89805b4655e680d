"""The harness side of the client library: a profile and its secrets -> client settings and clients.

The client library (redis_harness.client) knows nothing of profiles; this
module is where a deployment's endpoint, topology (Sentinel, Cluster) and
announced addresses become RedisSettings, for the harness's own clients and
for the load workloads that drive the library as a service would.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from redis_harness.client.cache import ServiceCache
from redis_harness.client.connection import RedisSettings, ResilientRedis, make_redis
from redis_harness.deploy.tls_client import client_tls, tls_kwargs
from redis_harness.errors import BadInput
from redis_harness.origin.store import OriginStore
from redis_harness.profile.credentials import AnySecrets
from redis_harness.profile.model import Profile
from redis_harness.profile.topology import Node


def endpoint(profile: Profile) -> tuple[str, int]:
    """Where the host reaches the deployment (a target: its address, first Sentinel or first seed node)."""
    if profile.target is not None:
        return profile.target.seeds[0]
    if profile.network.publish == "none":
        raise BadInput(
            f"network.publish: profile '{profile.name}' publishes no port, so the host cannot reach it; "
            "set network.publish: loopback"
        )
    return profile.network.host, profile.network.port


def address_map(profile: Profile) -> tuple[tuple[tuple[str, int], tuple[str, int]], ...]:
    """Each data node's announced address (service name, container port) -> its loopback address."""
    return tuple(
        ((node.service, profile.network.container_port), (profile.network.host, node.host_port))
        for node in profile.data_nodes
        if node.host_port is not None
    )


def settings_for(
    profile: Profile,
    username: str | None,
    password: str,
    *,
    sentinel_password: str | None = None,
    **overrides: Any,
) -> RedisSettings:
    """Where the profile's deployment answers from the host, whatever its topology.

    Sentinels require the `default` password (REDIS_PASSWORD); it defaults to
    `password`, which is right when logging in as the default user."""
    if profile.target is not None:
        return target_settings(profile, username, password, sentinel_password=sentinel_password, **overrides)
    host, port = endpoint(profile)
    topology: dict[str, Any] = {"address_map": address_map(profile)}
    if profile.topology.sentinel is not None:
        topology["sentinels"] = tuple((host, n.host_port) for n in profile.sentinel_nodes)
        topology["sentinel_password"] = sentinel_password or password
        topology["master_name"] = profile.topology.sentinel.master_name
    topology["cluster"] = profile.topology.cluster is not None
    topology["tls"] = client_tls(profile, username)
    return RedisSettings(host=host, port=port, username=username, password=password, **{**topology, **overrides})


def login_settings(profile: Profile, secrets: AnySecrets, user: str | None, **overrides: Any) -> RedisSettings:
    """settings_for one of the profile's logins (`user`; None: `default`), with its password from `secrets`."""
    username, password = secrets.login(user)
    # Sentinels know only `default` (REDIS_PASSWORD) for asking where the primary is.
    return settings_for(profile, username, password, sentinel_password=secrets.sentinel_password, **overrides)


def target_settings(
    profile: Profile, username: str | None, password: str, *, sentinel_password: str | None = None, **overrides: Any
) -> RedisSettings:
    """A target's endpoints as they are: no announced addresses to map (the target's nodes announce
    addresses its clients reach), the Sentinels' own password only when the profile names one."""
    target = profile.target
    assert target is not None
    settings: dict[str, Any] = {"tls": client_tls(profile, username)}
    host, port = target.seeds[0]
    if target.kind == "sentinel":
        settings.update(sentinels=target.sentinels, master_name=target.master_name, sentinel_password=sentinel_password)
    elif target.kind == "cluster":
        settings.update(cluster=True, seeds=target.cluster)
    return RedisSettings(host=host, port=port, username=username, password=password, **{**settings, **overrides})


def connect(
    profile: Profile,
    username: str | None,
    password: str,
    *,
    timeout_s: float = 2.0,
    sentinel_password: str | None = None,
) -> redis.Redis:
    """A text-mode client of a deployment's published endpoint (status, checks); with Sentinel,
    of the current primary."""
    settings = settings_for(
        profile,
        username,
        password,
        sentinel_password=sentinel_password,
        connect_timeout_s=timeout_s,
        socket_timeout_s=timeout_s,
        decode_responses=True,
    )
    return make_redis(settings)


def connect_node(
    profile: Profile,
    node: Node,
    username: str | None,
    password: str,
    *,
    timeout_s: float = 2.0,
    retries: int | None = None,
    sentinel_password: str | None = None,
) -> redis.Redis:
    """A text-mode client of one node's own published port, whatever its role: a data node
    (checks of each server; not for applications, which follow the primary) or a Sentinel
    (which takes the default user's password)."""
    if profile.target is not None:
        settings = target_settings(
            profile,
            username,
            password,
            sentinel_password=sentinel_password,  # a Sentinel target's primary is asked of its Sentinels
            connect_timeout_s=timeout_s,
            socket_timeout_s=timeout_s,
            decode_responses=True,
        )
        if node.host_port is not None:  # one server by its address (a Sentinel target's primary: asked for)
            settings = settings.replace(host=node.service.rpartition(":")[0], port=node.host_port, cluster=False)
        return make_redis(settings)
    if node.host_port is None:
        endpoint(profile)  # raises the one-line "publishes no port" error
    return redis.Redis(
        host=profile.network.host,
        port=node.host_port,
        username=username,
        password=password,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        decode_responses=True,
        # redis-py counts a refused password as a connection error, which it retries with backoff
        # (3.3 s in all): a caller asking which password a node takes sets retries=0.
        **({"retry": Retry(NoBackoff(), retries)} if retries is not None else {}),
        **tls_kwargs(profile, username),
    )


def service_cache(
    profile: Profile,
    secrets: AnySecrets,
    service: str,
    origin: OriginStore,
    *,
    settings: Mapping[str, Any] | None = None,
    breaker: Mapping[str, Any] | None = None,
    **options: Any,
) -> ServiceCache:
    """A ServiceCache as the service would run it: its own ACL user (limited to `<service>:*`), the profile's TTLs."""
    name = f"redis-harness-{service}"
    redis_settings = login_settings(profile, secrets, service, client_name=name, **(settings or {}))
    client = ResilientRedis(redis_settings, **(breaker or {}))
    return ServiceCache(client, origin, service=service, ttl=profile.ttl, **options)
