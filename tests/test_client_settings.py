"""Client settings from the environment or a Profile, and how the one factory's clients behave."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from redis_harness.client.connection import RedisSettings, SettingsError, TlsSettings, is_outage, make_redis
from redis_harness.deploy.connect import settings_for
from redis_harness.errors import BadInput
from redis_harness.render.certificates import issue, issue_ca

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
    ],
)
def test_bad_topology_or_tls_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        RedisSettings.from_env(env)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


# ----------------------------------------------------------------------------- TLS from the environment


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A CA, the price service's certificate and key, another service's key and a file that is no PEM,
    issued by the harness's own issuer (render/certificates.py)."""
    folder = tmp_path_factory.mktemp("pki")
    profile = variant_profile("ci", folder, "tlsenv")
    now = dt.datetime.now(dt.UTC)
    ca, ca_key = issue_ca(profile, now)
    cert, key = issue(profile, ca, ca_key, "price", None, now, dt.timedelta(days=1))
    _, other_key = issue(profile, ca, ca_key, "processing", None, now, dt.timedelta(days=1))
    files = {"ca": ca, "cert": cert, "key": key, "other_key": other_key, "junk": "not a certificate\n"}
    for name, text in files.items():
        (folder / name).write_text(text)
    return {name: str(folder / name) for name in files}


TLS_VARS = ("REDIS_TLS_CA_FILE", "REDIS_TLS_CERT_FILE", "REDIS_TLS_KEY_FILE")


def test_tls_settings_from_the_environment(pki: dict[str, str]) -> None:
    full = RedisSettings.from_env(dict(zip(TLS_VARS, (pki["ca"], pki["cert"], pki["key"]), strict=True)))
    assert full.tls == TlsSettings(ca_file=pki["ca"], cert_file=pki["cert"], key_file=pki["key"])
    assert full.tls.redis_kwargs()["ssl_certfile"] == pki["cert"]
    assert RedisSettings.from_env({"REDIS_TLS_CA_FILE": pki["ca"]}).tls == TlsSettings(ca_file=pki["ca"])
    assert RedisSettings.from_env({"REDIS_TLS_CA_FILE": ""}).tls is None  # empty: plaintext, as unset


@pytest.mark.parametrize(
    ("given", "var", "says"),
    [
        ({"REDIS_TLS_CERT_FILE": "cert", "REDIS_TLS_KEY_FILE": "key"}, "REDIS_TLS_CERT_FILE", "also set REDIS_TLS_CA"),
        ({"REDIS_TLS_CA_FILE": "ca", "REDIS_TLS_CERT_FILE": "cert"}, "REDIS_TLS_KEY_FILE", "not set"),
        ({"REDIS_TLS_CA_FILE": "ca", "REDIS_TLS_KEY_FILE": "key"}, "REDIS_TLS_CERT_FILE", "not set"),
        ({"REDIS_TLS_CA_FILE": "/nonexistent/ca.crt"}, "REDIS_TLS_CA_FILE", "cannot read"),
        ({"REDIS_TLS_CA_FILE": "junk"}, "REDIS_TLS_CA_FILE", "holds no PEM certificate"),
        ({"REDIS_TLS_CA_FILE": "ca", "REDIS_TLS_CERT_FILE": "cert", "REDIS_TLS_KEY_FILE": "/nonexistent/k"},
         "REDIS_TLS_KEY_FILE", "cannot read"),
        ({"REDIS_TLS_CA_FILE": "ca", "REDIS_TLS_CERT_FILE": "cert", "REDIS_TLS_KEY_FILE": "other_key"},
         "REDIS_TLS_CERT_FILE", "the key is not this certificate's"),
        ({"REDIS_TLS_CA_FILE": "ca", "REDIS_TLS_CERT_FILE": "junk", "REDIS_TLS_KEY_FILE": "key"},
         "REDIS_TLS_CERT_FILE", "does not load"),
    ],
)  # fmt: skip
def test_bad_tls_environment_names_the_variable_in_one_line(
    pki: dict[str, str], given: dict[str, str], var: str, says: str
) -> None:
    env = {name: pki.get(value, value) for name, value in given.items()}
    with pytest.raises(SettingsError, match=f"^{var}: ") as raised:
        RedisSettings.from_env(env)
    assert says in str(raised.value) and "\n" not in str(raised.value)
