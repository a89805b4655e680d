"""Clients of a mutual-TLS deployment (tlsci, client_auth required): who gets in and who is refused.

Every refusal is set beside the client that works (the right CA and the service's own certificate), so
a test cannot pass because the deployment is down or the client misconfigured. The certificates a client
should not have (another CA's, an expired one of the deployment's own CA) are made here, with the same
`cryptography` code the harness issues its own with.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from redis.backoff import NoBackoff
from redis.retry import Retry

from redis_harness import paths
from redis_harness.render.certificates import CA_CERT, CA_KEY, client_paths, issue
from redis_harness.verify import tls_probe

from .conftest import Deployment

pytestmark = pytest.mark.integration

SERVICE = "price"


@dataclass(frozen=True)
class Pki:
    """Certificate files a test client may show: the deployment's own and the ones it must refuse."""

    ca: Path  # the deployment's CA certificate
    own: tuple[Path, Path]  # the service's certificate and key, as the harness issued them
    other_ca: Path  # a CA the deployment never heard of
    other_ca_client: tuple[Path, Path]  # a client certificate that CA issued
    expired: tuple[Path, Path]  # a client certificate of the deployment's own CA, expired


def _other_ca() -> tuple[str, str]:
    """A CA of its own (another name, another key): (certificate PEM, key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone else's CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii"), key_pem


def _write(folder: Path, name: str, pair: tuple[str, str]) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    cert.write_text(pair[0])
    key.touch(mode=0o600)
    key.write_text(pair[1])
    return cert, key


@pytest.fixture(scope="module")
def pki(tls_deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> Pki:
    profile = tls_deployment.profile
    state = paths.state_dir(profile.name)
    folder = tmp_path_factory.mktemp("tls-clients")
    now = dt.datetime.now(dt.UTC)
    other_pem, other_key = _other_ca()
    (folder / "other-ca.crt").write_text(other_pem)
    ca_pem, ca_key = (state / CA_CERT).read_text(), (state / CA_KEY).read_text()
    year = dt.timedelta(days=365)
    _, own_cert, own_key = client_paths(state, SERVICE)
    return Pki(
        ca=state / CA_CERT,
        own=(own_cert, own_key),
        other_ca=folder / "other-ca.crt",
        other_ca_client=_write(folder, "other", issue(profile, other_pem, other_key, SERVICE, None, now, year)),
        # Issued ten days ago for one day: expired nine days ago, signed by the deployment's own CA.
        expired=_write(
            folder,
            "expired",
            issue(profile, ca_pem, ca_key, SERVICE, None, now - dt.timedelta(days=10), dt.timedelta(days=1)),
        ),
    )


def _client(tls: Deployment, ca: Path | None, cert: tuple[Path, Path] | None, user: str = SERVICE) -> redis.Redis:
    """The service's login over TLS (ca None: plaintext), as a service would configure redis-py; no retries."""
    profile = tls.profile
    options = (
        {}
        if ca is None
        else {
            "ssl": True,
            "ssl_ca_certs": str(ca),
            "ssl_cert_reqs": "required",
            "ssl_check_hostname": True,
            "ssl_certfile": str(cert[0]) if cert else None,
            "ssl_keyfile": str(cert[1]) if cert else None,
        }
    )
    return redis.Redis(
        host=profile.network.host,
        port=profile.network.port,
        username=user,
        password=tls.secrets.service(user).password,
        protocol=2,
        socket_connect_timeout=2,
        socket_timeout=2,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
        **options,
    )


@pytest.fixture
def client(tls_deployment: Deployment, pki: Pki) -> Iterator[redis.Redis]:
    """The service as it should connect: the deployment's CA, its own certificate."""
    good = _client(tls_deployment, pki.ca, pki.own)
    yield good
    good.close()


def _refused(tls: Deployment, ca: Path | None, cert: tuple[Path, Path] | None) -> str:
    """The error a client of this kind gets on its first command; fails the test if it gets an answer."""
    bad = _client(tls, ca, cert)
    try:
        with pytest.raises(redis.ConnectionError) as refused:
            bad.ping()
    finally:
        bad.close()
    # Not an AUTH answer: the session itself was refused before the password was looked at.
    assert not isinstance(refused.value, redis.AuthenticationError)
    return str(refused.value)


def _tls12_alert(tls: Deployment, pki: Pki, cert: tuple[Path, Path] | None) -> str:
    """The same client held to TLS 1.2, where the server's refusal arrives as a named alert in the handshake
    (TLS 1.3 only closes the session after it)."""
    context = tls_probe.client_context(pki.ca, cert, protocol="TLSv1.2")
    answer = tls_probe.over_tls(tls.profile.network.host, tls.profile.network.port, context)
    assert not answer.accepted, answer.detail
    return answer.detail


def test_service_over_mutual_tls_works_and_stays_in_its_prefix(client: redis.Redis) -> None:
    assert client.ping()
    client.set(f"{SERVICE}:v1:tls:1", "ok", ex=60)
    assert client.get(f"{SERVICE}:v1:tls:1") == "ok"
    for key in ("processing:v1:tls:1", "tls:1"):
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.get(key)
    info = client.connection_pool.get_connection()
    try:
        version = info._sock.version()  # type: ignore[union-attr]
    finally:
        client.connection_pool.release(info)
    assert version in ("TLSv1.2", "TLSv1.3")


def test_client_without_certificate_refused(client: redis.Redis, tls_deployment: Deployment, pki: Pki) -> None:
    assert client.ping()
    _refused(tls_deployment, pki.ca, None)
    assert "HANDSHAKE_FAILURE" in _tls12_alert(tls_deployment, pki, None)


def test_client_certificate_from_another_ca_refused(client: redis.Redis, tls_deployment: Deployment, pki: Pki) -> None:
    assert client.ping()
    _refused(tls_deployment, pki.ca, pki.other_ca_client)
    assert "UNKNOWN_CA" in _tls12_alert(tls_deployment, pki, pki.other_ca_client)


def test_expired_client_certificate_from_the_deployments_own_ca_refused(
    client: redis.Redis, tls_deployment: Deployment, pki: Pki
) -> None:
    cert = x509.load_pem_x509_certificate(pki.expired[0].read_bytes())
    assert cert.not_valid_after_utc < dt.datetime.now(dt.UTC)  # expired, and issued by the deployment's CA:
    assert cert.issuer == x509.load_pem_x509_certificate(pki.ca.read_bytes()).subject
    assert client.ping()
    _refused(tls_deployment, pki.ca, pki.expired)
    assert "CERTIFICATE_EXPIRED" in _tls12_alert(tls_deployment, pki, pki.expired)


def test_client_trusting_another_ca_refuses_the_server(
    client: redis.Redis, tls_deployment: Deployment, pki: Pki
) -> None:
    """The client side of the check: a client that trusts only another CA will not talk to this server."""
    assert client.ping()
    error = _refused(tls_deployment, pki.other_ca, pki.own)
    assert "CERTIFICATE_VERIFY_FAILED" in error


def test_plaintext_to_the_tls_port_fails(client: redis.Redis, tls_deployment: Deployment) -> None:
    assert client.ping()
    error = _refused(tls_deployment, None, None)
    assert "reset" in error.lower() or "closed" in error.lower(), error
