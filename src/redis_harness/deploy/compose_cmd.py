"""The one way to run `docker compose` on a deployment."""

from __future__ import annotations

import subprocess

from redis_harness import paths
from redis_harness.errors import HarnessError
from redis_harness.profile.model import Profile


def compose(profile: Profile, *args: str, use_file: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["docker", "compose", "--project-name", profile.project]
    compose_file = paths.deployment_dir(profile.name) / "docker-compose.yml"
    if use_file and compose_file.is_file():
        cmd += ["--file", str(compose_file)]
    result = subprocess.run([*cmd, *args], capture_output=True, text=True)
    if result.returncode != 0:
        detail = " | ".join(result.stderr.strip().splitlines()[-3:]) or "no output"
        raise HarnessError(f"docker compose {' '.join(args[:4])} failed for {profile.project}: {detail}")
    return result
