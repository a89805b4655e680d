"""Secret files handed to containers at `up`: never rendered into compose/, never committed.

They live in .state/<profile>/ (a 0700 folder) and are mounted read-only at
/run/secrets/<name>, so no password is ever on a command line, in the
environment or in `docker inspect`:

- healthcheck          the ping-only user's password (every node)
- replication.conf     masteruser/masterauth, `include`d by every data node's redis.conf
- sentinel.conf        how Sentinels log in to the data nodes and to each other
- node-lookup          how a data node starting asks the Sentinels for the primary (Sentinel topology)
- cluster-admin        the admin password, for the one-shot cluster-create container only
- exporter             the `exporter` ACL user's password, for the redis_exporters (monitoring.enabled)
- tls-*                with security.tls: the CA, each node's certificate and key, client certificates
                       (render/certificates.py); private keys are 0600, a node's own owned by its user,
                       the exporter's by the monitoring containers' user
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from redis_harness import paths
from redis_harness.profile.credentials import Secrets
from redis_harness.profile.model import Profile
from redis_harness.profile.topology import MASTER_NAME
from redis_harness.render.acl import NODE_LOOKUP_USER, SENTINEL_PEER_USER
from redis_harness.render.certificates import (
    EXPORTER_CLIENT,
    client_files,
    is_private_key,
    mounted_names,
    tls_file_names,
    tls_files,
)

# What a data node mounts of them (Compose and Kubernetes alike); the rest is for Sentinels and one-shots.
DATA_NODE_SECRETS = ("healthcheck", "replication.conf", "node-lookup")
CONTAINER_UID = 999  # the containers' redis user (docker-compose.yml.j2)
MONITORING_UID = 990  # the monitoring image's prometheus user (templates/monitoring/compose.yml.j2)


@dataclass(frozen=True)
class SecretFile:
    name: str
    content: str


def secret_files(profile: Profile, secrets: Secrets) -> list[SecretFile]:
    files = [SecretFile("healthcheck", secrets.healthcheck_password)]
    if profile.topology.has_replicas:
        files.append(
            SecretFile("replication.conf", f"masteruser replication\nmasterauth {secrets.derived('replication')}\n")
        )
    if profile.topology.sentinel is not None:
        files.append(
            SecretFile(
                "sentinel.conf",
                f"sentinel auth-pass {MASTER_NAME} {secrets.derived('sentinel')}\n"
                f"sentinel sentinel-pass {secrets.derived(SENTINEL_PEER_USER)}\n",
            )
        )
        files.append(SecretFile("node-lookup", secrets.derived(NODE_LOOKUP_USER)))
    if profile.topology.cluster is not None:
        files.append(SecretFile("cluster-admin", secrets.admin.password))
    if profile.monitoring.enabled:
        files.append(SecretFile("exporter", secrets.derived("exporter")))
    return files


def deployment_secret_files(profile: Profile, secrets: Secrets, *, renew_all: bool = False) -> list[SecretFile]:
    """What `up` writes in .state/<name>/: the password files and, with TLS on, the CA and the certificates
    (the existing ones where they may stay; `renew_all`, for cert rotate: every leaf new). Kubernetes gets
    only the former (`secret_files`): its pods read TLS from a Secret the cluster's PKI provides, and the
    CA key never leaves this host."""
    existing = read_secret_files(profile, tls_file_names(profile))
    issued = tls_files(profile, existing, renew_all=renew_all)
    tls = [SecretFile(name, content) for name, content in issued.items()]
    return secret_files(profile, secrets) + tls


def secret_path(profile: Profile, name: str) -> Path:
    return paths.state_dir(profile.name) / name


def secret_names(profile: Profile) -> list[str]:
    """The files a deployment mounts; the same list whatever the passwords are."""
    names = ["healthcheck"]
    if profile.topology.has_replicas:
        names.append("replication.conf")
    if profile.topology.sentinel is not None:
        names += ["sentinel.conf", "node-lookup"]
    if profile.topology.cluster is not None:
        names.append("cluster-admin")
    if profile.monitoring.enabled:
        names.append("exporter")
    return names + list(mounted_names(profile))


def state_names(profile: Profile) -> list[str]:
    """Every secret file of the deployment: the mounted ones, and the CA key and client certificates."""
    return list(dict.fromkeys(secret_names(profile) + list(tls_file_names(profile))))


def key_owner(profile: Profile, name: str) -> int | None:
    """The uid a mounted private key belongs to (the one container user that reads it); None for the keys no
    container mounts (the CA's, the clients'), which stay the caller's."""
    if not is_private_key(name) or name not in mounted_names(profile):
        return None
    return MONITORING_UID if name == client_files(EXPORTER_CLIENT)[1] else CONTAINER_UID


def write_secret_files(profile: Profile, secrets: Secrets) -> list[Path]:
    return write_secret_contents(profile, {s.name: s.content for s in deployment_secret_files(profile, secrets)})


def read_secret_files(profile: Profile, names: tuple[str, ...] | list[str] | None = None) -> dict[str, str]:
    """The secret files as they are now (kept in memory only, to put them back on a rollback)."""
    found = {}
    for name in state_names(profile) if names is None else names:
        path = secret_path(profile, name)
        if path.is_file():
            found[name] = path.read_text(encoding="utf-8")
    return found


def write_secret_contents(profile: Profile, contents: dict[str, str]) -> list[Path]:
    """Write secret files in place: a container mounts each file by its inode, so a file
    replaced by a new one would leave the container reading the old (deleted) one."""
    folder = paths.state_dir(profile.name)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)  # other host users cannot reach the files
    written = []
    for name, content in contents.items():
        path = folder / name
        if path.is_file() and path.read_text(encoding="utf-8") == content:
            written.append(path)
            continue
        private = is_private_key(name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600 if private else 0o444)
        try:
            os.fchmod(fd, 0o600 if private else 0o644)
            os.ftruncate(fd, 0)
            os.write(fd, content.encode("utf-8"))
            os.fsync(fd)
            if private:
                # A mounted key: readable by its container's user only. Other keys (the CA's, clients') stay the
                # caller's.
                owner = key_owner(profile, name)
                if owner is not None and os.geteuid() == 0:
                    os.fchown(fd, owner, owner)
            else:
                # The containers' redis user (uid 999) reads it; nobody writes it but `up`.
                os.fchmod(fd, 0o444)
        finally:
            os.close(fd)
        written.append(path)
    return written


def remove_secret_files(profile: Profile) -> None:
    for name in state_names(profile):
        secret_path(profile, name).unlink(missing_ok=True)
