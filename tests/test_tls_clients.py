"""Clients over TLS against the shared mutual-TLS deployment (tlsci): the lean load user's RESP
connection, `load --scenario raw`, `bench` with its plaintext twin (ci), and the shipped client
library configured from the environment (REDIS_TLS_*), each beside the variant that must fail."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import yaml

from redis_harness import paths
from redis_harness.bench import measure as bench
from redis_harness.client.cache import ServiceCache
from redis_harness.client.connection import ResilientRedis, TlsSettings
from redis_harness.deploy.tls_client import client_ssl_context
from redis_harness.errors import HarnessError
from redis_harness.load.resp import CallWatchdog, ConnectionFailed, RedisReplyError, RespConnection, encode
from redis_harness.origin.store import OriginStore
from redis_harness.profile.model import Profile
from redis_harness.render.certificates import client_paths, issue_ca

from .conftest import REPO, Deployment, variant_profile

pytestmark = pytest.mark.integration


def same_name(deployment: Deployment, tmp_path: Path, tls: dict[str, object]) -> Profile:
    """The deployment's profile with other TLS settings: what a client built from it would do."""
    profile = deployment.profile
    tmp_path.mkdir(parents=True, exist_ok=True)
    security = {**yaml.safe_load((REPO / "profiles" / "ci.yaml").read_text())["security"], "tls": tls}
    return variant_profile("ci", tmp_path, profile.name, network={"port": profile.network.port}, security=security)


def ping(deployment: Deployment, tls: object) -> object:
    profile = deployment.profile
    password = deployment.secrets.service("price").password
    connection = RespConnection(profile.network.host, profile.network.port, "price", password, 1.0, tls=tls)  # type: ignore[arg-type]
    try:
        return connection.execute(encode("PING"))
    finally:
        connection.close()


def test_lean_connection_needs_tls_the_ca_and_its_certificate(tls_deployment: Deployment, tmp_path: Path) -> None:
    """The lean user's socket with the context the lean user builds (the service's certificate) answers;
    without the certificate (client_auth none in the profile), with another CA, or in plaintext it is refused."""
    assert ping(tls_deployment, client_ssl_context(tls_deployment.profile, "price")) == b"PONG"
    without_certificate = client_ssl_context(same_name(tls_deployment, tmp_path, {"enabled": True}), "price")
    assert without_certificate is not None and without_certificate.verify_mode  # TLS, the CA, no certificate
    other_ca = tmp_path / "other-ca.crt"
    other_ca.write_text(issue_ca(tls_deployment.profile, dt.datetime.now(dt.UTC))[0])
    _, cert, key = client_paths(paths.state_dir(tls_deployment.profile.name), "price")
    wrong_ca = TlsSettings(ca_file=str(other_ca), cert_file=str(cert), key_file=str(key)).ssl_context()
    for variant, says in ((without_certificate, None), (wrong_ca, "CERTIFICATE_VERIFY_FAILED"), (None, None)):
        with pytest.raises(RedisReplyError, match=says):
            ping(tls_deployment, variant)


@pytest.mark.parametrize("cooperative", [False, True], ids=["blocking", "cooperative"])
def test_lean_connection_over_tls_carries_many_records_and_reconnects(
    tls_deployment: Deployment, cooperative: bool
) -> None:
    """The lean user's TLS in memory (resp.TlsChannel) on a blocking socket and a cooperative one: a 200 kB
    reply (13 TLS records, many socket reads), 300 pipelined replies in one call, and the server closing the
    connection (a ConnectionFailed, then the next call connects again) all come through whole."""
    profile = tls_deployment.profile
    password = tls_deployment.secrets.service("price").password
    tls = client_ssl_context(profile, "price")
    watchdog = CallWatchdog() if cooperative else None  # the lean user's way under gevent (CooperativeSocket)
    lean = RespConnection(
        profile.network.host, profile.network.port, "price", password, 2.0, socket.socket, tls, watchdog
    )
    value = bytes(range(256)) * 800
    lean.execute(encode("DEL", "price:tls-lean:n"))
    try:
        assert lean.execute(encode("SET", "price:tls-lean:big", value)) == b"OK"
        assert lean.execute(encode("GET", "price:tls-lean:big")) == value
        assert lean.execute(encode("INCR", "price:tls-lean:n") * 300, 300) == list(range(1, 301))
        assert lean.execute(encode("QUIT")) == b"OK"  # the server closes the connection after this reply
        with pytest.raises(ConnectionFailed):  # the server closed it: the next call finds out, never hangs
            lean.execute(encode("PING"))
        assert lean.execute(encode("GET", "price:tls-lean:n")) == b"300"  # connected again
        assert lean.connects == 2
    finally:
        lean.execute(encode("DEL", "price:tls-lean:big", "price:tls-lean:n"))
        lean.close()


def harness(deployment: Deployment, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "redis_harness.cli", *args],
        capture_output=True,
        text=True,
        env={**deployment.env, "REDIS_HARNESS_ENV_FILE": "/nonexistent/.env"},
        cwd=REPO,
        timeout=timeout_s,
    )
    print(result.stdout[-4000:], result.stderr[-3000:])
    return result


def test_load_raw_over_tls_has_no_errors(tls_deployment: Deployment, tmp_path: Path) -> None:
    """`load tlsci --scenario raw`: the lean user and the calibration over TLS, client certificates required."""
    profile = str(tls_deployment.profile.source)
    args = ("--scenario", "raw", "--users", "5", "--rate", "2000", "--duration", "3s", "--report", str(tmp_path))
    result = harness(tls_deployment, "load", profile, *args)
    report = json.loads((tmp_path / "report.json").read_text())
    commands = report["commands"]
    assert set(commands) == {"GET raw", "SET raw"}
    assert all(c["count"] > 1000 and c["errors"] == 0 for c in commands.values()), commands
    assert 0 < report["calibration"]["ping_p50_us"] <= report["calibration"]["ping_p99_us"]
    assert result.returncode == 0, result.stderr[-2000:]


def test_redis_benchmark_over_tls_and_its_broken_variants(tls_deployment: Deployment, tmp_path: Path) -> None:
    """redis-benchmark with the harness's TLS flags measures; without --tls it fails visibly (exit 1, the
    server's reset named), and without the client certificate it exits on the server's close or is
    stopped by the time bound: never reported as zeros."""
    binary = shutil.which("redis-benchmark")
    assert binary, "redis-benchmark missing (redis-tools)"
    plaintext = same_name(tls_deployment, tmp_path / "plain", {"enabled": False})
    no_certificate = same_name(tls_deployment, tmp_path / "nocert", {"enabled": True})
    at = bench.bench_endpoint(tls_deployment.profile, tls_deployment.secrets)
    with bench.temporary_user(tls_deployment.profile, tls_deployment.secrets) as user:
        measured = bench.run_redis_benchmark(binary, tls_deployment.profile, at, user, 1, 2000, timeout_s=30)
        assert all(line.rps > 0 and 0 < line.p50_us <= line.p99_us for line in measured.values())
        with pytest.raises(HarnessError, match="redis-benchmark exited 1: .*Connection reset by peer"):
            bench.run_redis_benchmark(binary, plaintext, at, user, 1, 2000, timeout_s=30)
        # Refused after the handshake (TLS 1.3): redis-benchmark either exits on the close or retries
        # until the time bound stops it, depending on when the server's alert arrives; both are named.
        refused = "exited 1: .*Server closed the connection|did not finish within 3 s"
        with pytest.raises(HarnessError, match=refused):
            bench.run_redis_benchmark(binary, no_certificate, at, user, 1, 2000, timeout_s=3)


def test_bench_over_tls_beside_its_plaintext_twin(
    tls_deployment: Deployment, ci_deployment: Deployment, tmp_path: Path
) -> None:
    """`bench tlsci --plaintext ci`: both sides on both deployments (same shape) in one run, the TLS cost."""
    args = ("--plaintext", str(ci_deployment.profile.source), "--duration", "1s", "--report", str(tmp_path))
    result = harness(tls_deployment, "bench", str(tls_deployment.profile.source), *args, timeout_s=400)
    assert result.returncode == 0
    figures = json.loads((tmp_path / "bench.json").read_text())
    assert figures["tls"] == "TLS, client certificate (required)" and figures["plaintext"]["tls"] is None
    for side in (figures, figures["plaintext"]):
        assert all(run["ops_s"] > 0 for run in side["redis_benchmark"].values())
        assert all(run["ops_s"] > 0 for run in side["harness"].values())
        assert all(c["errors"] == 0 for run in side["harness"].values() for c in run["latency"].values())
        assert side["ratios"]["best_closed_loop_vs_redis_benchmark"] > 0
    cost = figures["tls_cost"]
    assert list(cost) == [label for label, _, _ in bench.COST_RUNS]
    assert all(c["plaintext_ops_s"] > 0 and c["tls_ops_s"] > 0 and c["tls_vs_plaintext"] > 0 for c in cost.values())
    assert all(c["get_p50_us"]["tls"] > 0 and c["get_p99_us"]["plaintext"] > 0 for c in cost.values())
    assert "TLS cost: tlsci" in result.stdout and "the lean user's floor 0.60" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 100


def tls_env(deployment: Deployment, user: str, *, certificate: bool = True) -> dict[str, str]:
    """What a Python service gets: the .env names and the TLS files the harness wrote for it."""
    ca, cert, key = client_paths(paths.state_dir(deployment.profile.name), user)
    env = {
        "REDIS_HOST": deployment.profile.network.host,
        "REDIS_PORT": str(deployment.profile.network.port),
        "REDIS_USERNAME": user,
        "REDIS_PASSWORD": deployment.secrets.service(user).password,
        "REDIS_TLS_CA_FILE": str(ca),
    }
    if certificate:
        env |= {"REDIS_TLS_CERT_FILE": str(cert), "REDIS_TLS_KEY_FILE": str(key)}
    return env


def test_service_cache_from_env_over_tls(tls_deployment: Deployment, tmp_path: Path) -> None:
    """The shipped library configured only from the environment: the cache is served by Redis over TLS
    (a hit, not the origin fallback); without the certificate, or without TLS, Redis refuses."""
    env = tls_env(tls_deployment, "price")
    origin = OriginStore.open_seeded(tmp_path / "origin.sqlite")
    cache = ServiceCache.from_env(env, "price", origin)
    try:
        assert cache.invalidate([cache.key("price", "BTC-USDT")])  # deleted now: Redis answered
        first = cache.get("price", "BTC-USDT")
        assert first == origin.read("price", "BTC-USDT") == cache.get("price", "BTC-USDT")
        snapshot = cache.stats.snapshot()
        assert (snapshot["hits"], snapshot["misses"]) == (1, 1), snapshot
        with pytest.raises(redis.exceptions.NoPermissionError):  # the service's own user, over TLS
            cache.client.call(lambda r: r.get("processing:v1:probe:x"))
    finally:
        cache.close()
        origin.close()
    without_certificate = tls_env(tls_deployment, "price", certificate=False)
    plaintext = {k: v for k, v in without_certificate.items() if not k.startswith("REDIS_TLS_")}
    for variant in (without_certificate, plaintext):
        client = ResilientRedis.from_env(variant)
        try:
            with pytest.raises(redis.ConnectionError):
                client.call(lambda r: r.ping())
        finally:
            client.close()
