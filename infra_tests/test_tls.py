"""TLS (security.tls): no plaintext anywhere, the certificates the profile asks for, the CA key kept out.

Each published port is tried the way a client would: a plaintext PING, a handshake that reads the
certificate the node really serves, a client without a certificate, a client held below min_version.
Each refusal check also makes the matching accepted attempt (the right certificate, min_version itself),
so a refusal for another reason (a wrong CA bundle, a dead port) does not pass for the one checked.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from redis_harness import paths
from redis_harness.deploy.containers import project_containers
from redis_harness.profile.model import Profile
from redis_harness.profile.topology import Node
from redis_harness.render.certificates import (
    CA_CERT,
    CA_KEY,
    HARNESS_CLIENT,
    Names,
    client_paths,
    is_private_key,
    server_names,
    signed_by,
)
from redis_harness.render.secret_files import CONTAINER_UID, MONITORING_UID, key_owner
from redis_harness.verify import parsers, tls_probe
from redis_harness.verify.check import Check

pytestmark = pytest.mark.needs("tls")

# Where a key could reach a container besides its mounts and writable layer (both searched too).
SEARCHED_DIRS = ("/data", "/etc", "/home", "/root", "/run", "/tmp", "/var")
KEY_FILES_SCRIPT = 'grep -rlI -e "PRIVATE KEY-----" -- "$@" 2>/dev/null; true'
CLUSTER_BUS_OFFSET = 10000  # Redis's bus port when cluster-port is 0
DOCKER_DNS = "127.0.0.11"  # Docker's embedded resolver listens in every container on a user network


@pytest.fixture(scope="session")
def tls_state(profile: Profile) -> Path:
    return paths.state_dir(profile.name)


@pytest.fixture(scope="session")
def ca_pem(tls_state: Path) -> str:
    return (tls_state / CA_CERT).read_text(encoding="ascii")


@pytest.fixture(scope="session")
def harness_cert(profile: Profile, tls_state: Path) -> tuple[Path, Path] | None:
    """The certificate the harness shows as a client (admin's), when the deployment asks for one."""
    if profile.tls.client_auth == "none":
        return None
    _, cert, key = client_paths(tls_state, HARNESS_CLIENT)
    return cert, key


@pytest.fixture(scope="session")
def served(profile: Profile, harness_cert: tuple[Path, Path] | None) -> Callable[[Node], x509.Certificate]:
    """The certificate a node serves on its published port, read once per node over a real handshake."""
    seen: dict[str, x509.Certificate] = {}

    def read(node: Node) -> x509.Certificate:
        if node.service not in seen:
            assert node.host_port is not None
            seen[node.service] = tls_probe.served_certificate(profile.network.host, node.host_port, harness_cert)
        return seen[node.service]

    return read


def _sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    return set(san.get_values_for_type(x509.DNSName)), {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}


# --------------------------------------------------------------------------- no plaintext


def test_plaintext_refused(tls_node: Node, profile: Profile, check: Check) -> None:
    """A plaintext PING to the published port gets no RESP answer (reset or closed by the TLS listener)."""
    assert tls_node.host_port is not None
    answer = tls_probe.plaintext(profile.network.host, tls_node.host_port)
    check.that(not answer.accepted, f"plaintext PING to :{tls_node.host_port} refused", answer.detail)


def test_no_plaintext_listener(profile: Profile, admin: redis.Redis, host: Any, check: Check) -> None:
    """port 0 (CONFIG GET as admin), and the container listens on its TLS ports only: a plaintext port
    opened at run time on another number is found even though nothing publishes it."""
    config = admin.config_get("port") | admin.config_get("tls-port") | admin.config_get("cluster-port")
    tls_ports = {int(config["tls-port"])}
    if profile.topology.cluster is not None:  # the bus is TLS too (tls-cluster, checked below)
        tls_ports.add(int(config["cluster-port"]) or int(config["tls-port"]) + CLUSTER_BUS_OFFSET)
    tables = host.file("/proc/net/tcp").content_string + host.file("/proc/net/tcp6").content_string
    listening = {port for address, port in parsers.listening_sockets(tables) if address != DOCKER_DNS}
    ok = config["port"] == "0" and listening == tls_ports and profile.network.container_port in tls_ports
    check.that(
        ok,
        f"port 0; listening on TLS port {' '.join(map(str, sorted(tls_ports)))} only",
        f"port {config['port']}; listening on {' '.join(map(str, sorted(listening))) or 'nothing'}",
    )


@pytest.mark.needs("replicas")
def test_replication_over_tls(admin: redis.Redis, check: Check) -> None:
    """Replicas (and Sentinels) reach a primary over TLS: tls-replication yes; with port 0 on every node
    (no_plaintext_listener) there is no plaintext port a link could use instead."""
    check.equal("yes", admin.config_get("tls-replication")["tls-replication"])


@pytest.mark.needs("cluster")
def test_cluster_bus_over_tls(admin: redis.Redis, check: Check) -> None:
    check.equal("yes", admin.config_get("tls-cluster")["tls-cluster"])


# --------------------------------------------------------------------------- the served certificate


def test_served_certificate_from_deployment_ca(
    tls_node: Node, served: Callable[[Node], x509.Certificate], ca_pem: str, check: Check
) -> None:
    cert = served(tls_node)
    ca = x509.load_pem_x509_certificate(ca_pem.encode("ascii"))
    signed = signed_by(tls_probe.pem(cert), ca_pem)
    check.that(
        signed,
        f"signed by {ca.subject.rfc4514_string()}",
        f"issuer {cert.issuer.rfc4514_string()}, signature {'valid' if signed else 'not by that CA'}",
    )


def test_served_certificate_names_match_profile(
    tls_node: Node, served: Callable[[Node], x509.Certificate], profile: Profile, check: Check
) -> None:
    """The SANs the profile says: the service name, localhost, 127.0.0.1, network.host, tls.names (with
    your own PKI, the names clients use from outside: network.host and tls.names)."""
    wanted = server_names(profile, tls_node)
    if profile.tls.own_pki:
        outside = {profile.network.host, *profile.tls.names}
        wanted = Names(tuple(n for n in wanted.dns if n in outside), tuple(n for n in wanted.ips if n in outside))
    dns, ips = _sans(served(tls_node))
    missing = sorted((set(wanted.dns) - dns) | (set(wanted.ips) - ips))
    extra = [] if profile.tls.own_pki else sorted((dns - set(wanted.dns)) | (ips - set(wanted.ips)))
    problems = [f"lacks {' '.join(missing)}"] * bool(missing) + [f"also names {' '.join(extra)}"] * bool(extra)
    check.that(
        not problems,
        " ".join([*wanted.dns, *wanted.ips]),
        "; ".join(problems) or " ".join([*sorted(dns), *sorted(ips)]),
    )


def test_served_certificate_valid_beyond_renew_before(
    tls_node: Node, served: Callable[[Node], x509.Certificate], profile: Profile, check: Check
) -> None:
    cert = served(tls_node)
    now = dt.datetime.now(dt.UTC)
    left_d = (cert.not_valid_after_utc - now).total_seconds() / 86400
    renew_d = profile.tls.renew_before_s / 86400
    started = cert.not_valid_before_utc <= now
    check.that(
        started and left_d > renew_d,
        f"valid now and for more than {renew_d:g} d (renew_before)",
        f"valid {cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d} ({left_d:.1f} d left)",
    )


# --------------------------------------------------------------------------- clients the server refuses


def _tried(answer: tls_probe.Answer) -> str:
    return ("accepted" if answer.accepted else "refused") + f" ({answer.detail})"


@pytest.mark.needs("client_certificates")
def test_client_without_certificate_refused(
    tls_node: Node, profile: Profile, tls_state: Path, harness_cert: tuple[Path, Path] | None, check: Check
) -> None:
    """client_auth required: a client that trusts the CA but shows no certificate gets no answer."""
    assert tls_node.host_port is not None
    ca = tls_state / CA_CERT
    without = tls_probe.over_tls(profile.network.host, tls_node.host_port, tls_probe.client_context(ca))
    shown = tls_probe.over_tls(profile.network.host, tls_node.host_port, tls_probe.client_context(ca, harness_cert))
    check.that(
        not without.accepted and shown.accepted,
        "no certificate: refused; admin's: accepted",
        f"no certificate: {_tried(without)}; admin's: {_tried(shown)}",
    )


def test_protocol_below_min_version_refused(
    tls_node: Node, profile: Profile, tls_state: Path, harness_cert: tuple[Path, Path] | None, check: Check
) -> None:
    """A client held to the protocol below min_version (TLS 1.1 under 1.2, 1.2 under 1.3) is refused by the
    server: the probe lowers its own OpenSSL security level so that TLS 1.1 is the server's to refuse."""
    assert tls_node.host_port is not None
    minimum = profile.tls.min_version
    below = tls_probe.BELOW[minimum]
    ca = tls_state / CA_CERT

    def attempt(protocol: str) -> tls_probe.Answer:
        context = tls_probe.client_context(ca, harness_cert, protocol=protocol)
        return tls_probe.over_tls(profile.network.host, tls_node.host_port or 0, context)

    old, current = attempt(below), attempt(minimum)
    check.that(
        not old.accepted and current.accepted,
        f"{below}: refused; {minimum}: accepted",
        f"{below}: {_tried(old)}; {minimum}: {_tried(current)}",
    )


# --------------------------------------------------------------------------- the keys


def _public(key_pem: str) -> bytes | None:
    """The public half of a PEM private key (None when the text is no key cryptography can read)."""
    try:
        key = serialization.load_pem_private_key(key_pem.encode("utf-8", "replace"), password=None)
    except (ValueError, TypeError):
        return None
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.deployment_wide
@pytest.mark.needs("harness_ca")
def test_ca_key_in_no_container(profile: Profile, tls_state: Path, ca_pem: str, check: Check) -> None:
    """No container mounts tls-ca.key, and no PEM private key a container holds (its mounts, its writable
    layer, /data /etc /home /root /run /tmp /var) is the CA's: compared by public key, whatever the file."""
    ca_key_path = (tls_state / CA_KEY).resolve()
    ca_public = (
        x509.load_pem_x509_certificate(ca_pem.encode("ascii"))
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    found, keys, searched = [], 0, 0
    for container in project_containers(profile):
        name = container.labels.get("com.docker.compose.service", container.name)
        mounts = container.attrs.get("Mounts") or []
        found += [f"{name} mounts it at {m['Destination']}" for m in mounts if Path(m["Source"]) == ca_key_path]
        if container.status != "running":
            continue
        searched += 1
        layer = [change["Path"] for change in container.diff() or [] if change["Kind"] in (0, 1)]
        where = sorted({*SEARCHED_DIRS, *(m["Destination"] for m in mounts), *layer})
        listed = container.exec_run(["sh", "-c", KEY_FILES_SCRIPT, "sh", *where]).output.decode(errors="replace")
        for path in sorted(set(listed.split())):
            keys += 1
            content = container.exec_run(["cat", path]).output.decode(errors="replace")
            if _public(content) == ca_public:
                found.append(f"{name}:{path} is the CA key")
    check.that(
        not found,
        "tls-ca.key in no container (mounts, files)",
        "; ".join(found) or f"{keys} private keys in {searched} containers, none the CA's",
    )


@pytest.mark.deployment_wide
def test_private_keys_private_on_host(profile: Profile, tls_state: Path, check: Check) -> None:
    """Every key in .state/<name>/ is 0600; a node's own is owned by the containers' redis user (uid 999),
    the exporter's by the monitoring user (uid 990), the rest (the CA's, the clients') by whoever runs the
    harness."""
    harness_uid = os.geteuid()
    problems, count = [], 0
    for path in sorted(tls_state.iterdir()):
        if not is_private_key(path.name):
            continue
        count += 1
        info = path.stat()
        owner = key_owner(profile, path.name) if harness_uid == 0 else None
        owner = harness_uid if owner is None else owner
        if stat.S_IMODE(info.st_mode) != 0o600 or info.st_uid != owner:
            problems.append(f"{path.name} {stat.S_IMODE(info.st_mode):04o} uid {info.st_uid} (want {owner})")
    check.that(
        count > 0 and not problems,
        f"keys in .state/{profile.name}/ 0600, node keys uid {CONTAINER_UID}, the exporter's {MONITORING_UID}",
        "; ".join(problems) or f"{count} keys, all 0600, owners as wanted",
    )
