"""Secret files handed to containers at `up`: never rendered into compose/, never committed.

They live in .state/<profile>/ (a 0700 folder) and are mounted read-only at
/run/secrets/<name>, so no password is ever on a command line, in the
environment or in `docker inspect`:

- healthcheck          the ping-only user's password (every node)
- replication.conf     masteruser/masterauth, `include`d by every data node's redis.conf
- sentinel.conf        the Sentinels' own password and how they log in to the data nodes
- cluster-admin        the admin password, for the one-shot cluster-create container only
- exporter             the `exporter` ACL user's password, for the redis_exporters (monitoring.enabled)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from redis_harness import paths
from redis_harness.profile.credentials import Secrets
from redis_harness.profile.model import Profile
from redis_harness.profile.topology import MASTER_NAME


@dataclass(frozen=True)
class SecretFile:
    name: str
    content: str


def conf_quote(value: str) -> str:
    """A Redis config string in double quotes; quote and backslash escaped, other bytes as \\xHH."""
    out = []
    for byte in value.encode("utf-8"):
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    return '"' + "".join(out) + '"'


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
                f"requirepass {conf_quote(secrets.default.password)}\n"
                f"user healthcheck on #{secrets.healthcheck_hash} -@all +ping\n",
            )
        )
    if profile.topology.cluster is not None:
        files.append(SecretFile("cluster-admin", secrets.admin.password))
    if profile.monitoring.enabled:
        files.append(SecretFile("exporter", secrets.derived("exporter")))
    return files


def secret_path(profile: Profile, name: str) -> Path:
    return paths.state_dir(profile.name) / name


def secret_names(profile: Profile) -> list[str]:
    """The files a deployment mounts; the same list whatever the passwords are."""
    names = ["healthcheck"]
    if profile.topology.has_replicas:
        names.append("replication.conf")
    if profile.topology.sentinel is not None:
        names.append("sentinel.conf")
    if profile.topology.cluster is not None:
        names.append("cluster-admin")
    if profile.monitoring.enabled:
        names.append("exporter")
    return names


def write_secret_files(profile: Profile, secrets: Secrets) -> list[Path]:
    folder = paths.state_dir(profile.name)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)  # other host users cannot reach the files
    written = []
    for secret in secret_files(profile, secrets):
        path = folder / secret.name
        staging = path.with_name(f".{secret.name}.tmp")
        staging.write_text(secret.content, encoding="utf-8")
        os.chmod(staging, 0o444)  # the containers' redis user (uid 999) reads it
        staging.replace(path)
        written.append(path)
    return written


def remove_secret_files(profile: Profile) -> None:
    for name in secret_names(profile):
        secret_path(profile, name).unlink(missing_ok=True)
