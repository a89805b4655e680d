"""How the harness's own clients speak TLS to a deployment with security.tls on.

They trust the deployment's CA (.state/<name>/tls-ca.crt) and, when the deployment asks clients
for a certificate (client_auth optional or required), show the one the harness issued for the
user they log in as (a service's own, or admin's for every other user).
"""

from __future__ import annotations

import ssl
from typing import Any

from redis_harness import paths
from redis_harness.client.connection import TlsSettings
from redis_harness.profile.model import Profile
from redis_harness.render.certificates import HARNESS_CLIENT, client_paths, client_users


def client_tls(profile: Profile, user: str | None) -> TlsSettings | None:
    """The TLS settings of a harness client logging in as `user` (None: plaintext deployment)."""
    if profile.target is not None:  # a Redis the harness did not deploy: the files its profile names
        given = profile.target.tls
        if given is None:
            return None
        files = profile.target.tls_files(profile.source)
        return TlsSettings(
            ca_file=files["ca_file"],
            cert_file=files["cert_file"],
            key_file=files["key_file"],
            min_version=given.min_version,
        )
    tls = profile.tls
    if not tls.enabled:
        return None
    as_user = user if user in client_users(profile) else HARNESS_CLIENT
    ca, cert, key = client_paths(paths.state_dir(profile.name), as_user)
    if tls.client_auth == "none":
        return TlsSettings(ca_file=str(ca), min_version=tls.min_version)
    return TlsSettings(ca_file=str(ca), cert_file=str(cert), key_file=str(key), min_version=tls.min_version)


def tls_kwargs(profile: Profile, user: str | None) -> dict[str, Any]:
    """redis-py's connection arguments for `client_tls` ({} on a plaintext deployment)."""
    settings = client_tls(profile, user)
    return settings.redis_kwargs() if settings else {}


def client_ssl_context(profile: Profile, user: str | None) -> ssl.SSLContext | None:
    """An ssl.SSLContext for a client on its own socket (load/resp.py) with `client_tls`'s settings;
    None on a plaintext deployment."""
    settings = client_tls(profile, user)
    return settings.ssl_context() if settings else None
