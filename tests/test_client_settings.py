"""Client settings from the environment or a Profile, and how the one factory's clients behave."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from redis_harness.client.connection import RedisSettings, SettingsError, is_outage, make_redis
from redis_harness.deploy.connect import settings_for
from redis_harness.errors import BadInput

from .conftest import variant_profile


def test_settings_from_the_plans_environment_names() -> None:
    env = {"REDIS_HOST": "127.0.0.2", "REDIS_PORT": "6390", "REDIS_DB": "3", "REDIS_PASSWORD": "s3cret-s3cret"}
    settings = RedisSettings.from_env({**env, "REDIS_USERNAME": "price"})
    assert (settings.host, settings.port, settings.db, settings.password) == ("127.0.0.2", 6390, 3, "s3cret-s3cret")
    assert settings.username == "price"
    assert RedisSettings.from_env({}).host == "127.0.0.1"
    assert RedisSettings.from_env(env, socket_timeout_s=0.25).socket_timeout_s == 0.25


@pytest.mark.parametrize(("var", "value"), [("REDIS_PORT", "redis"), ("REDIS_PORT", "70000"), ("REDIS_DB", "16")])
def test_bad_environment_values_name_the_variable(var: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"^{var}: "):
        RedisSettings.from_env({var: value})


def test_settings_from_a_profile_use_its_published_endpoint(tmp_path: Path) -> None:
    profile = variant_profile("ci", tmp_path, "clientcfg", network={"port": 6399})
    settings = settings_for(profile, "price", "pw")
    assert (settings.host, settings.port, settings.username) == ("127.0.0.1", 6399, "price")
    hidden = variant_profile("ci", tmp_path, "hiddencfg", network={"publish": "none"})
    with pytest.raises(BadInput, match="network.publish"):
        settings_for(hidden, "price", "pw")


@pytest.fixture
def silent_server() -> Iterator[tuple[int, list[socket.socket]]]:
    """A server that accepts connections but never answers (a paused Redis): its port and what it accepted."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.05)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1], accepted
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.mark.parametrize("retries", [0, 2])
def test_a_silent_server_fails_the_call_after_the_attempts_the_settings_allow(
    silent_server: tuple[int, list[socket.socket]], retries: int
) -> None:
    """The call must give up with TimeoutError (not hang), having tried at least 1 + retries times.
    redis-py retries the connection handshake (CLIENT SETINFO) inside each command attempt too, so
    up to (1 + retries)^2 connections are made; with retries=0 exactly one (an outage probe)."""
    port, accepted = silent_server
    settings = RedisSettings(
        port=port, connect_timeout_s=0.2, socket_timeout_s=0.2, retries=retries, backoff_cap_s=0.01
    )
    client = make_redis(settings)
    with pytest.raises(redis.TimeoutError):
        client.get("k")
    client.close()
    assert 1 + retries <= len(accepted) <= (1 + retries) ** 2


def test_worst_case_call_time_grows_with_timeouts_and_retries() -> None:
    base = RedisSettings(connect_timeout_s=0.5, socket_timeout_s=0.5, retries=1, backoff_cap_s=0.2)
    assert base.worst_case_call_s == pytest.approx(2 * 1.5 + 0.2)
    assert base.replace(retries=3).worst_case_call_s > base.worst_case_call_s


def test_outages_are_connection_and_timeout_errors_but_not_bad_credentials() -> None:
    assert is_outage(redis.ConnectionError("refused")) and is_outage(redis.TimeoutError("slow"))
    assert is_outage(redis.BusyLoadingError("loading the AOF"))
    assert not is_outage(redis.AuthenticationError("wrong password"))
    assert not is_outage(redis.ResponseError("WRONGTYPE"))


def test_sentinel_cluster_and_address_map_from_the_environment() -> None:
    env = {
        "REDIS_SENTINELS": "10.0.4.10:26379, 10.0.4.10:26380",
        "REDIS_SENTINEL_PASSWORD": "ask-only",
        "REDIS_MASTER_NAME": "primary",
        "REDIS_ADDRESS_MAP": "redis-0:6379=10.0.4.10:6400,redis-1:6379=10.0.4.10:6401",
    }
    settings = RedisSettings.from_env(env)
    assert settings.sentinels == (("10.0.4.10", 26379), ("10.0.4.10", 26380))
    assert settings.sentinel_password == "ask-only" and settings.master_name == "primary"
    assert settings.address_map == ((("redis-0", 6379), ("10.0.4.10", 6400)), (("redis-1", 6379), ("10.0.4.10", 6401)))
    assert RedisSettings.from_env({"REDIS_CLUSTER": "1"}).cluster is True
    assert RedisSettings.from_env({"REDIS_CLUSTER": "0"}).cluster is False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REDIS_SENTINELS": "10.0.4.10"}, "REDIS_SENTINELS: '10.0.4.10' is not host:port"),
        ({"REDIS_SENTINELS": "h:99999"}, "REDIS_SENTINELS: 'h:99999' is not host:port"),
        ({"REDIS_CLUSTER": "maybe"}, "REDIS_CLUSTER: 'maybe' is not 1 or 0"),
        ({"REDIS_CLUSTER": "1", "REDIS_SENTINELS": "h:1"}, "REDIS_CLUSTER: a Cluster has no Sentinels"),
        ({"REDIS_ADDRESS_MAP": "redis-0:6379"}, "REDIS_ADDRESS_MAP: 'redis-0:6379' is not name:port=host:port"),
        ({"REDIS_TLS_CERT_FILE": "c.pem"}, "REDIS_TLS_CERT_FILE: set; also set REDIS_TLS_CA_FILE"),
        ({"REDIS_TLS_CA_FILE": "ca.pem", "REDIS_TLS_CERT_FILE": "c.pem"}, "REDIS_TLS_KEY_FILE: not set"),
    ],
)
def test_bad_topology_or_tls_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        RedisSettings.from_env(env)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_tls_from_the_environment_turns_tls_on_with_the_client_certificate() -> None:
    env = {"REDIS_TLS_CA_FILE": "ca.pem", "REDIS_TLS_CERT_FILE": "c.pem", "REDIS_TLS_KEY_FILE": "c.key"}
    tls = RedisSettings.from_env(env).tls
    assert tls is not None and (tls.ca_file, tls.cert_file, tls.key_file) == ("ca.pem", "c.pem", "c.key")
    kwargs = tls.redis_kwargs()
    assert kwargs["ssl"] is True and kwargs["ssl_check_hostname"] is True and kwargs["ssl_cert_reqs"] == "required"
    assert RedisSettings.from_env({}).tls is None
