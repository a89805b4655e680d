"""The Docker engine and the Compose v2 plugin, or a clear word on how to get them."""

from __future__ import annotations

import shutil
import subprocess
from functools import lru_cache

import docker
from docker.errors import DockerException

from redis_harness.errors import BadInput

START_HINT = "start it with `sudo scripts/bootstrap-host` (Debian) or `sudo systemctl start docker`"


@lru_cache(maxsize=1)
def docker_client() -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except DockerException as exc:
        reason = str(exc).splitlines()[0][:120]
        raise BadInput(f"docker: engine not reachable ({reason}); {START_HINT}") from None
    return client


def require_compose() -> None:
    if shutil.which("docker") is None:
        raise BadInput("docker: the docker command is missing; install it with `sudo scripts/bootstrap-host`")
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        raise BadInput(
            "docker compose: the Compose v2 plugin is missing; install it with `sudo scripts/bootstrap-host`"
        )
