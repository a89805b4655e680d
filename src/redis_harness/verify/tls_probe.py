"""Single connection attempts at a TLS port, for verify's TLS checks: what a client of one kind is told.

Each attempt sends one RESP PING and reads the first answer. Any RESP reply (PONG, NOAUTH, an error)
means the server accepted the session: it talks to that client. A reset, an EOF or a TLS alert means
it refused. Raw sockets and `ssl` rather than redis-py: a refusal must be the server's answer to
exactly this client, not a retry or a client-side policy of redis-py.
"""

from __future__ import annotations

import socket
import ssl
import warnings
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

PING = b"*1\r\n$4\r\nPING\r\n"
RESP_TYPES = b"+-:$*_#,(!=%~>|"  # the first byte of any RESP2/RESP3 reply
TIMEOUT_S = 2.0
# OpenSSL 3 refuses TLS 1.0/1.1 on the client side above security level 0: the probe lowers its own
# level so that a refusal of an old protocol is the server's, never the probe's.
SECLEVEL_0 = "DEFAULT:@SECLEVEL=0"
# The newest protocol a probe below the profile's min_version may speak.
BELOW = {"TLSv1.2": "TLSv1.1", "TLSv1.3": "TLSv1.2"}


@dataclass(frozen=True)
class Answer:
    """What one attempt got: accepted (a RESP reply came back) and a short description."""

    accepted: bool
    detail: str


def client_context(
    ca_file: Path | None,
    cert: tuple[Path, Path] | None = None,
    *,
    protocol: str | None = None,
) -> ssl.SSLContext:
    """A client context: trusting `ca_file` (None: no check of the server, to read its certificate
    whatever it is), showing `cert` (certificate, key) when given, speaking only `protocol` when given."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # names are checked on the certificate itself, against the profile
    if ca_file is None:
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(cafile=str(ca_file))
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    if protocol is not None:
        with warnings.catch_warnings():  # TLSv1_1 is deprecated: the probe uses it on purpose
            warnings.simplefilter("ignore", DeprecationWarning)
            version = getattr(ssl.TLSVersion, protocol.replace(".", "_"))
            if version < ssl.TLSVersion.TLSv1_2:
                context.set_ciphers(SECLEVEL_0)
            context.minimum_version = context.maximum_version = version
    return context


def _first_reply(sock: socket.socket) -> Answer:
    sock.sendall(PING)
    data = sock.recv(256)
    if not data:
        return Answer(False, "closed without a reply")
    if data[:1] in RESP_TYPES and data.endswith(b"\r\n"):
        return Answer(True, "replied " + data.decode(errors="replace").splitlines()[0][:40])
    return Answer(False, f"answered {len(data)} B that are not RESP")


def _refusal(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc.__class__.__name__}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return exc.__class__.__name__


def plaintext(host: str, port: int, timeout_s: float = TIMEOUT_S) -> Answer:
    """A plaintext PING to `host:port`."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            return _first_reply(sock)
    except OSError as exc:
        return Answer(False, _refusal(exc))


def over_tls(host: str, port: int, context: ssl.SSLContext, timeout_s: float = TIMEOUT_S) -> Answer:
    """A PING inside a TLS session made with `context` (TLS 1.3 reports a refused client certificate
    only after the handshake, on the first read: the PING is what brings it out)."""
    try:
        with (
            socket.create_connection((host, port), timeout=timeout_s) as raw,
            context.wrap_socket(raw, server_hostname=host) as sock,
        ):
            answer = _first_reply(sock)
            return Answer(answer.accepted, f"{sock.version()}: {answer.detail}")
    except OSError as exc:
        return Answer(False, _refusal(exc))


def served_certificate(
    host: str, port: int, cert: tuple[Path, Path] | None, timeout_s: float = TIMEOUT_S
) -> x509.Certificate:
    """The certificate the server at `host:port` presents in a real handshake (not checked here)."""
    context = client_context(None, cert)
    with (
        socket.create_connection((host, port), timeout=timeout_s) as raw,
        context.wrap_socket(raw, server_hostname=host) as sock,
    ):
        der = sock.getpeercert(binary_form=True)
    if der is None:
        raise ssl.SSLError(f"{host}:{port} presented no certificate")
    return x509.load_der_x509_certificate(der)


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
