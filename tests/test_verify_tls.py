"""`verify` with TLS on: every TLS and secret check passes on tlsci, and fails on a broken variant of it.

The variants break the running deployment the way an operator or an attacker could (CONFIG SET, a file
copied into the container, a key left readable, a key pasted into a rendered file, a container carrying
a key in its labels) and put it back afterwards; verify must name exactly the checks each breaks.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from cryptography.hazmat.primitives import serialization

from redis_harness import paths
from redis_harness.deploy.connect import connect_node
from redis_harness.deploy.containers import PROJECT_LABEL, service_container
from redis_harness.deploy.engine import docker_client
from redis_harness.profile.model import Profile
from redis_harness.render.certificates import CA_CERT, CA_KEY, Names, client_files, issue, server_names
from redis_harness.verify import parsers

from .conftest import Deployment
from .test_tls_integration import _other_ca
from .test_verify import failed, verify_outcomes

pytestmark = pytest.mark.integration

NODE = "redis"
TLS_CHECKS = {
    f"plaintext_refused[{NODE}]",
    "no_plaintext_listener",
    f"served_certificate_from_deployment_ca[{NODE}]",
    f"served_certificate_names_match_profile[{NODE}]",
    f"served_certificate_valid_beyond_renew_before[{NODE}]",
    f"client_without_certificate_refused[{NODE}]",
    f"protocol_below_min_version_refused[{NODE}]",
    "ca_key_in_no_container",
    "private_keys_private_on_host",
    "no_plaintext_secret_in_any_container_inspect",
}


@pytest.fixture
def admin(tls_deployment: Deployment) -> Iterator[redis.Redis]:
    """admin over TLS, opened before a variant breaks anything: it puts the deployment back."""
    profile = tls_deployment.profile
    client = connect_node(profile, profile.data_nodes[0], "admin", tls_deployment.secrets.admin.password)
    client.ping()
    yield client
    client.close()


def _put(container: Any, files: dict[str, str]) -> None:
    """Files into the container's /data volume (the root filesystem is read-only), owned by redis, 0600."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid = len(data), 0o600, 999, 999
            tar.addfile(info, io.BytesIO(data))
    assert container.put_archive("/data", buffer.getvalue())


def _remove(container: Any, names: list[str]) -> None:
    container.exec_run(["rm", "-f", *(f"/data/{name}" for name in names)])


def _state(profile: Profile) -> Path:
    return paths.state_dir(profile.name)


def test_verify_passes_every_tls_check_on_the_tls_deployment(tls_deployment: Deployment, tmp_path: Path) -> None:
    outcomes = verify_outcomes(tls_deployment.profile, tls_deployment.env, tmp_path)
    assert failed(outcomes) == set()
    assert {name: outcomes.get(name) for name in TLS_CHECKS} == dict.fromkeys(TLS_CHECKS, "pass")


def test_verify_names_each_tls_setting_broken_at_run_time(
    tls_deployment: Deployment, admin: redis.Redis, tmp_path: Path
) -> None:
    """Client certificates no longer asked for, a plaintext port opened beside the TLS one, TLS 1.1 allowed
    (with the server's OpenSSL level lowered so it really speaks it), and a served certificate that lacks
    names the profile gives and expires within renew_before (the deployment's CA signed it)."""
    profile = tls_deployment.profile
    state = _state(profile)
    container = service_container(profile, NODE)
    before = admin.config_get("tls-*") | admin.config_get("port")
    now = dt.datetime.now(dt.UTC)
    names = server_names(profile, profile.data_nodes[0])
    short = Names(tuple(n for n in names.dns if n not in (NODE, "localhost")), names.ips)
    soon = dt.timedelta(seconds=profile.tls.renew_before_s / 2)
    cert, key = issue(profile, (state / CA_CERT).read_text(), (state / CA_KEY).read_text(), NODE, short, now, soon)
    _put(container, {"short.crt": cert, "short.key": key})
    try:
        admin.config_set("tls-auth-clients", "no")
        admin.config_set("port", 6380)
        admin.config_set("tls-protocols", "TLSv1.1 TLSv1.2 TLSv1.3")
        admin.config_set("tls-ciphers", "DEFAULT:@SECLEVEL=0")
        admin.execute_command("CONFIG", "SET", "tls-cert-file", "/data/short.crt", "tls-key-file", "/data/short.key")
        outcomes = verify_outcomes(profile, tls_deployment.env, tmp_path)
    finally:
        admin.execute_command(
            "CONFIG", "SET", *[x for name in ("tls-cert-file", "tls-key-file") for x in (name, before[name])]
        )
        for name in ("tls-auth-clients", "port", "tls-protocols", "tls-ciphers"):
            admin.config_set(name, before[name])
        _remove(container, ["short.crt", "short.key"])
    assert failed(outcomes) == {
        f"client_without_certificate_refused[{NODE}]",
        "config_matches_profile[tls-auth-clients]",
        "no_plaintext_listener",
        "config_matches_profile[port]",
        f"protocol_below_min_version_refused[{NODE}]",
        "config_matches_profile[tls-protocols]",
        f"served_certificate_names_match_profile[{NODE}]",
        f"served_certificate_valid_beyond_renew_before[{NODE}]",
        "config_matches_profile[tls-cert-file]",
        "config_matches_profile[tls-key-file]",
    }


def test_verify_names_plaintext_on_the_published_port(
    tls_deployment: Deployment, admin: redis.Redis, tmp_path: Path
) -> None:
    """The TLS listener moved away and a plaintext one on the published port: the harness's own TLS clients
    cannot reach the node then, so only the plaintext check is run."""
    profile = tls_deployment.profile
    port = profile.network.container_port
    admin.config_set("tls-port", port + 1)
    admin.config_set("port", port)
    try:
        outcomes = verify_outcomes(profile, tls_deployment.env, tmp_path, "-k", "plaintext_refused")
    finally:
        admin.config_set("port", 0)  # the connection made over TLS stays open through both changes
        admin.config_set("tls-port", port)
    assert failed(outcomes) == {f"plaintext_refused[{NODE}]"}


def test_verify_names_a_served_certificate_from_another_ca(
    tls_deployment: Deployment, admin: redis.Redis, tmp_path: Path
) -> None:
    """Right names, long validity, another CA: only the CA check fails (the harness's own clients, which
    trust the deployment's CA, refuse the node then, so the certificate checks are run alone)."""
    profile = tls_deployment.profile
    container = service_container(profile, NODE)
    before = admin.config_get("tls-cert-file") | admin.config_get("tls-key-file")
    other_pem, other_key = _other_ca()
    names = server_names(profile, profile.data_nodes[0])
    cert, key = issue(profile, other_pem, other_key, NODE, names, dt.datetime.now(dt.UTC), dt.timedelta(days=90))
    _put(container, {"other.crt": cert, "other.key": key})
    try:
        admin.execute_command("CONFIG", "SET", "tls-cert-file", "/data/other.crt", "tls-key-file", "/data/other.key")
        outcomes = verify_outcomes(profile, tls_deployment.env, tmp_path, "-k", "served_certificate")
    finally:
        admin.execute_command("CONFIG", "SET", *[x for item in before.items() for x in item])
        _remove(container, ["other.crt", "other.key"])
    assert failed(outcomes) == {f"served_certificate_from_deployment_ca[{NODE}]"}


def test_verify_names_each_leaked_key(tls_deployment: Deployment, tmp_path: Path) -> None:
    """The CA key copied into the container (re-encoded as SEC1: found by its public key, not its text), a
    client key left readable on the host, a key line pasted into a rendered file, and a container of the
    deployment carrying a key in a label."""
    profile = tls_deployment.profile
    state = _state(profile)
    container = service_container(profile, NODE)
    ca_key = serialization.load_pem_private_key((state / CA_KEY).read_bytes(), password=None)
    sec1 = ca_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode("ascii")
    client_key = state / client_files("price")[1]
    conf = paths.deployment_dir(profile.name) / "redis.conf"
    original_conf = conf.read_text()
    key_line = parsers.pem_body_lines(client_key.read_text())[0]
    docker = docker_client()
    carrier = None
    _put(container, {"backup.pem": sec1})
    try:
        os.chmod(client_key, 0o644)
        conf.write_text(original_conf + f"# {key_line}\n")
        carrier = docker.containers.run(
            profile.image.ref,
            entrypoint=["sleep", "60"],
            labels={PROJECT_LABEL: profile.project, "io.redis-harness.probe": "tls-leak", "note": key_line},
            network_disabled=True,
            read_only=True,
            detach=True,
        )
        outcomes = verify_outcomes(profile, tls_deployment.env, tmp_path)
    finally:
        if carrier is not None:
            carrier.remove(force=True, v=True)
        os.chmod(client_key, 0o600)
        conf.write_text(original_conf)
        _remove(container, ["backup.pem"])
    assert failed(outcomes) == {
        "ca_key_in_no_container",
        "private_keys_private_on_host",
        "no_plaintext_secret_in_rendered_files",
        "no_plaintext_secret_in_any_container_inspect",
    }
