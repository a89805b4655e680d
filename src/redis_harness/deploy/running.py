"""What runs now, read for a comparison with the desired state: containers and their servers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis
from docker.errors import ImageNotFound
from redis.backoff import NoBackoff
from redis.retry import Retry

from redis_harness.deploy.containers import SERVICE_LABEL, project_containers
from redis_harness.deploy.engine import docker_client
from redis_harness.deploy.tls_client import tls_kwargs
from redis_harness.profile.model import Profile

ONEOFF_LABEL = "com.docker.compose.oneoff"
HASH_LABEL = "com.docker.compose.config-hash"


@dataclass
class Server:
    """A data node's server as the admin user reads it; `error` says why it could not be read."""

    config: dict[str, str] = field(default_factory=dict)
    acl_list: list[str] = field(default_factory=list)
    used_memory: int | None = None
    keys: int | None = None
    persistent_keys: int | None = None  # keys without a TTL: only a delete takes them away
    error: str | None = None
    auth_failed: bool = False


def containers_by_service(project_containers_: list[Any]) -> dict[str, Any]:
    """Compose service -> its container (one-off jobs such as cluster-init left out)."""
    found: dict[str, Any] = {}
    for container in project_containers_:
        if container.labels.get(ONEOFF_LABEL) == "True":
            continue
        found[container.labels.get(SERVICE_LABEL, container.name)] = container
    return found


def published_port(container: Any, container_port: int) -> int | None:
    """The loopback port a running container publishes `container_port` on, as Docker has it."""
    bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{container_port}/tcp") or []
    for binding in bindings:
        if binding.get("HostPort"):
            return int(binding["HostPort"])
    return None


def node_client(profile: Profile, container: Any, password: str, timeout_s: float = 2.0) -> redis.Redis:
    """The admin user's client of one running node, through the port it publishes now (which
    may differ from the profile's while a port change is pending). No retries: a refusal is an answer."""
    container_port = profile.network.container_port
    port = published_port(container, container_port)
    if port is None:
        raise redis.ConnectionError(f"{container.name} publishes no port for {container_port}")
    return redis.Redis(
        host=profile.network.host,
        port=port,
        username="admin",
        password=password,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        decode_responses=True,
        retry=Retry(NoBackoff(), 0),
        **tls_kwargs(profile, "admin"),
    )


def read_node(profile: Profile, container: Any, admin_password: str) -> Server:
    try:
        client = node_client(profile, container, admin_password)
    except redis.ConnectionError as exc:
        return Server(error=str(exc))
    try:
        config = client.config_get("*")
        acl = client.acl_list()
        used = client.info("memory")["used_memory"]
        keyspace = client.info("keyspace")
        keys = sum(int(db.get("keys", 0)) for db in keyspace.values() if isinstance(db, dict))
        expiring = sum(int(db.get("expires", 0)) for db in keyspace.values() if isinstance(db, dict))
    except redis.AuthenticationError as exc:
        return Server(error=f"admin login refused ({exc})", auth_failed=True)
    except redis.RedisError as exc:
        return Server(error=str(exc))
    finally:
        client.close()
    return Server(
        config={k: str(v) for k, v in config.items()},
        acl_list=list(acl),
        used_memory=used,
        keys=keys,
        persistent_keys=keys - expiring,
    )


def image_id(ref: str) -> str | None:
    try:
        return str(docker_client().images.get(ref).id)
    except ImageNotFound:
        return None


def running_containers(profile: Profile) -> dict[str, Any]:
    """The deployment's containers by compose service, stopped ones included."""
    return containers_by_service(project_containers(profile))
