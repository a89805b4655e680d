"""What a deployment should be: the rendered files, the secret files, the image, in memory.

`up`, `plan` and `rollback` compare this with what runs; nothing here writes a
file, so every check that can refuse runs before anything changes on disk.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass, field
from typing import Any

import yaml

from redis_harness import paths
from redis_harness.errors import HarnessError
from redis_harness.profile.credentials import Secrets
from redis_harness.profile.model import Profile
from redis_harness.render.files import check_claim, deployment_files
from redis_harness.render.secret_files import deployment_secret_files


@dataclass(frozen=True)
class Desired:
    profile: Profile
    files: dict[str, str]  # compose/<name>/: file name -> text
    secret_files: dict[str, str]  # .state/<name>/: file name -> content (never printed)
    secrets_hash: str  # identifies the secrets without revealing them
    image_ref: str
    service_hashes: dict[str, str] = field(default_factory=dict)  # compose service -> config hash

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        """The compose services as the rendered file declares them (limits, ports, image)."""
        return dict(yaml.safe_load(self.files["docker-compose.yml"]).get("services") or {})


def secrets_fingerprint(secrets: Secrets) -> str:
    """One SHA-256 over every password: tells two sets of secrets apart, reveals none."""
    digest = hashlib.sha256(b"redis-harness secrets\0")
    for password in secrets.all_passwords():
        digest.update(hashlib.sha256(password.encode("utf-8")).digest())
    return digest.hexdigest()


def service_hashes(profile: Profile, compose_text: str) -> dict[str, str]:
    """Compose's own config hash of each service of `compose_text`, as it would label the
    containers; read from stdin so nothing is written. Relative paths resolve against
    compose/<name>/, where the file will live."""
    cmd = [
        "docker",
        "compose",
        "--project-name",
        profile.project,
        "--project-directory",
        str(paths.deployment_dir(profile.name)),
        "--file",
        "-",
        "config",
        "--hash=*",
    ]
    result = subprocess.run(cmd, input=compose_text, capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise HarnessError(f"docker compose config failed for {profile.project}: {detail}")
    hashes = {}
    for line in result.stdout.splitlines():
        service, _, digest = line.strip().partition(" ")
        if digest:
            hashes[service] = digest
    return hashes


def desired_state(profile: Profile, secrets: Secrets, *, renew_all: bool = False) -> Desired:
    """The deployment as the profile says, in memory; `renew_all` (cert rotate): new leaf certificates."""
    check_claim(profile, paths.deployment_dir(profile.name))  # a same-named deployment of another file
    files = deployment_files(profile, secrets)
    return Desired(
        profile=profile,
        files=files,
        secret_files={s.name: s.content for s in deployment_secret_files(profile, secrets, renew_all=renew_all)},
        secrets_hash=secrets_fingerprint(secrets),
        image_ref=profile.image.ref,
        service_hashes=service_hashes(profile, files["docker-compose.yml"]),
    )


def with_files(desired: Desired, files: dict[str, str], secret_files: dict[str, str], image_ref: str) -> Desired:
    """The same deployment with other rendered files and secret files (a generation being restored)."""
    return Desired(
        profile=desired.profile,
        files=files,
        secret_files=secret_files,
        secrets_hash=desired.secrets_hash,
        image_ref=image_ref,
        service_hashes=service_hashes(desired.profile, files["docker-compose.yml"]),
    )
