"""Which certificate a running node serves now: one TLS handshake with its published port.

Redis reads its certificate files when it starts and on `CONFIG SET tls-*`; a Sentinel only when it
starts. So the files in .state/<name>/ say what a node *should* serve, and only a handshake says what
it does: `plan` compares the two, `up` and `cert rotate` check them equal after loading, and monitor
takes the expiry clients actually see from it.
"""

from __future__ import annotations

import socket
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from redis_harness import paths
from redis_harness.profile.model import Profile
from redis_harness.profile.topology import Node
from redis_harness.render.certificates import HARNESS_CLIENT, CertInfo, client_paths, read_cert


def served_certificate(profile: Profile, node: Node, timeout_s: float = 2.0) -> CertInfo | str:
    """The certificate `node` presents on its published port, read (not trusted: whatever it serves,
    even from another CA, is what we want to see), or why it could not be read."""
    if node.host_port is None:
        return "publishes no port"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if profile.tls.client_auth != "none":  # a server that requires a client certificate gets the harness's
        _, cert, key = client_paths(paths.state_dir(profile.name), HARNESS_CLIENT)
        try:
            context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            return f"the harness's client certificate is unusable: {exc}"
    try:
        raw = socket.create_connection((profile.network.host, node.host_port), timeout=timeout_s)
        with raw, context.wrap_socket(raw) as tls:
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as exc:
        return f"no TLS handshake with {profile.network.host}:{node.host_port}: {exc}"
    if der is None:
        return "no certificate presented"
    pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM).decode("ascii")
    return read_cert(f"{node.service} (served)", pem)
