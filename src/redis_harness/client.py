"""Connections to a deployment's Redis from the host (loopback endpoint only)."""

from __future__ import annotations

import redis

from .errors import BadInput
from .profile import Profile


def endpoint(profile: Profile) -> tuple[str, int]:
    if profile.network.publish == "none":
        raise BadInput(
            f"network.publish: profile '{profile.name}' publishes no port, so the host cannot reach it; "
            "set network.publish: loopback"
        )
    return profile.network.host, profile.network.port


def connect(profile: Profile, username: str | None, password: str, *, timeout_s: float = 2.0) -> redis.Redis:
    """A client with explicit timeouts: a paused server must not hang the caller."""
    host, port = endpoint(profile)
    return redis.Redis(
        host=host,
        port=port,
        username=username,
        password=password,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        decode_responses=True,
    )
