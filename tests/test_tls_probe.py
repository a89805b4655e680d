"""verify's TLS probe against a local TLS server (Python's ssl; the real Redis is in test_verify_tls.py):
how it tells an answer from a refusal, and that a probe below min_version is held to that protocol."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from redis_harness.profile.model import load_profile
from redis_harness.render.certificates import issue, issue_ca, server_names
from redis_harness.verify import tls_probe


@pytest.fixture(scope="module")
def server_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) of a throwaway CA."""
    profile = load_profile("ci")
    folder = tmp_path_factory.mktemp("probe-pki")
    now = dt.datetime.now(dt.UTC)
    ca_pem, ca_key = issue_ca(profile, now)
    cert, key = issue(
        profile, ca_pem, ca_key, "redis", server_names(profile, profile.data_nodes[0]), now, dt.timedelta(days=2)
    )
    for name, text in (("ca.crt", ca_pem), ("server.crt", cert), ("server.key", key)):
        (folder / name).write_text(text)
    return folder / "ca.crt", folder / "server.crt", folder / "server.key"


def _serve(context: ssl.SSLContext | None, reply: bytes) -> Iterator[int]:
    """One connection on a loopback port: a TLS (or plaintext) server that answers any first bytes."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def run() -> None:
        conn, _ = listener.accept()
        try:
            sock = context.wrap_socket(conn, server_side=True) if context else conn
            with sock:
                sock.recv(64)
                sock.sendall(reply)
        except (ssl.SSLError, OSError):
            conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield port
    thread.join(timeout=5)
    listener.close()


def _server_context(files: tuple[Path, Path, Path], minimum: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(files[1]), str(files[2]))
    context.minimum_version = minimum
    return context


def test_an_answer_over_tls_is_accepted_and_the_certificate_read(server_files: tuple[Path, Path, Path]) -> None:
    context = _server_context(server_files, ssl.TLSVersion.TLSv1_2)
    for port in _serve(context, b"-NOAUTH Authentication required.\r\n"):
        answer = tls_probe.over_tls("127.0.0.1", port, tls_probe.client_context(server_files[0]))
        assert answer.accepted and "NOAUTH" in answer.detail
    for port in _serve(context, b"+PONG\r\n"):
        cert = tls_probe.served_certificate("127.0.0.1", port, None)
        assert tls_probe.pem(cert) == server_files[1].read_text()  # the one served, read whole


def test_plaintext_reply_is_accepted_and_a_non_resp_one_is_not() -> None:
    for port in _serve(None, b"+PONG\r\n"):
        assert tls_probe.plaintext("127.0.0.1", port).accepted
    for port in _serve(None, b"\x15\x03\x01\x00\x02\x02\x32"):  # a TLS alert record
        answer = tls_probe.plaintext("127.0.0.1", port)
        assert not answer.accepted and "not RESP" in answer.detail


def test_a_closed_port_is_a_refusal() -> None:
    with socket.create_server(("127.0.0.1", 0)) as spare:
        port = spare.getsockname()[1]
    assert tls_probe.plaintext("127.0.0.1", port) == tls_probe.Answer(False, "connection refused")


def test_a_probe_below_min_version_is_refused_by_the_server(server_files: tuple[Path, Path, Path]) -> None:
    context = _server_context(server_files, ssl.TLSVersion.TLSv1_3)
    for port in _serve(context, b"+PONG\r\n"):
        answer = tls_probe.over_tls("127.0.0.1", port, tls_probe.client_context(server_files[0], protocol="TLSv1.2"))
        assert not answer.accepted and answer.detail.startswith("TLS: "), answer.detail
    assert tls_probe.BELOW == {"TLSv1.2": "TLSv1.1", "TLSv1.3": "TLSv1.2"}
    old = tls_probe.client_context(server_files[0], protocol="TLSv1.1")
    assert old.maximum_version == old.minimum_version == ssl.TLSVersion.TLSv1_1
