"""The client library's connection pool status: in use, idle, maximum, waits, errors."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import redis

from redis_harness.client.connection import RedisSettings, ResilientRedis
from redis_harness.deploy.connect import settings_for

from .conftest import Deployment, deployed, variant_profile


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_failed_checkouts_count_as_errors_and_waits() -> None:
    client = ResilientRedis(RedisSettings(port=closed_port(), retries=0, connect_timeout_s=0.2), fail_max=100)
    for _ in range(3):
        with pytest.raises(redis.ConnectionError):
            client.call(lambda r: r.get("k"))
    status = client.pool_status()
    assert status["errors"] == 3 and status["checkouts"] == 3
    # Only the first checkout found nothing idle; redis-py keeps the unconnected connection
    # object in the pool as idle, and the later checkouts take it (and fail to connect it).
    assert status["waits"] == 1
    assert status["in_use"] == 0 and status["idle"] == 1
    client.close()


@pytest.fixture(scope="module")
def monpool(tmp_path_factory: pytest.TempPathFactory, secret_env: dict[str, str]) -> Iterator[Deployment]:
    profile = variant_profile("ci", tmp_path_factory.mktemp("monpool"), "monpool", network={"port": 6573})
    with deployed(profile, secret_env) as deployment:
        yield deployment


@pytest.mark.integration
def test_pool_status_against_a_real_server(monpool: Deployment) -> None:
    settings = settings_for(monpool.profile, "price", monpool.secrets.service("price").password, max_connections=2)
    client = ResilientRedis(settings)
    client.call(lambda r: r.set("price:v1:price:{X}", b"1"))
    first = client.pool_status()
    assert first == {"in_use": 0, "idle": 1, "max": 2, "waits": 1, "errors": 0, "checkouts": 1}

    pool = client.redis.connection_pool
    held = [pool.get_connection(), pool.get_connection()]  # what two concurrent callers would hold
    busy = client.pool_status()
    assert busy["in_use"] == 2 and busy["idle"] == 0
    assert busy["waits"] == 2  # the second checkout found no idle connection

    with pytest.raises(redis.exceptions.MaxConnectionsError):
        client.call(lambda r: r.get("price:v1:price:{X}"))
    assert client.pool_status()["errors"] == 1

    for connection in held:
        pool.release(connection)
    assert client.pool_status()["in_use"] == 0 and client.pool_status()["idle"] == 2
    client.close()
