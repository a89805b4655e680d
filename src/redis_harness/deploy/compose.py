"""Bring a rendered deployment up and down with Docker Compose v2."""

from __future__ import annotations

import errno
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from redis_harness import paths
from redis_harness.deploy import image
from redis_harness.deploy.containers import PROJECT_LABEL
from redis_harness.deploy.engine import docker_client, require_compose
from redis_harness.deploy.readiness import wait_until_settled
from redis_harness.errors import BadInput, HarnessError
from redis_harness.profile.credentials import Secrets
from redis_harness.profile.model import Profile
from redis_harness.render.files import render
from redis_harness.render.secret_files import remove_secret_files, write_secret_files

WAIT_TIMEOUT_S = 90


@dataclass(frozen=True)
class UpResult:
    deployment_dir: Path
    image_source: str


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


def _publishers_of(host: str, port: int) -> list[str]:
    """Names of running containers publishing host:port: a clash with another container
    is named as such, not as an anonymous busy port."""
    names = []
    for container in docker_client().containers.list():
        for bindings in (container.ports or {}).values():
            for binding in bindings or []:
                if int(binding.get("HostPort", 0)) == port and binding.get("HostIp") in (host, "0.0.0.0", "::", ""):
                    names.append(container.name)
    return names


def check_port_free(profile: Profile) -> None:
    if profile.network.publish == "none":
        return
    host, port = profile.network.host, profile.network.port
    others = [n for n in _publishers_of(host, port) if not n.startswith(f"{profile.project}-")]
    if others:
        raise BadInput(
            f"network.port: {host}:{port} is already published by container {others[0]}; "
            f"choose another port in {profile.source} or stop that container"
        )
    if any(n.startswith(f"{profile.project}-") for n in _publishers_of(host, port)):
        return  # our own deployment holds it: this `up` updates it in place
    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise BadInput(
                f"network.port: {host}:{port} is already in use on this host; "
                f"choose another port in {profile.source} or stop the program using it"
            ) from None
        raise
    finally:
        probe.close()


def up(profile: Profile, secrets: Secrets) -> UpResult:
    require_compose()
    docker_client()
    target = render(profile, secrets)
    image_source = image.ensure(profile.image)
    if profile.monitoring.enabled:
        image.ensure_monitoring(profile.monitoring.image)
    check_port_free(profile)
    write_secret_files(profile, secrets)
    try:
        compose(profile, "up", "--detach", "--wait", "--wait-timeout", str(WAIT_TIMEOUT_S), "--remove-orphans")
        if profile.topology.cluster is not None:
            compose(profile, "--profile", "init", "run", "--rm", "--no-deps", "cluster-init")
    except HarnessError as exc:
        logs = compose(profile, "logs", "--no-color", "--tail", "5").stdout.strip()
        raise HarnessError(f"{exc}\nlast log lines:\n{logs}") from None
    if profile.published:  # from the host, only through the published ports
        wait_until_settled(profile, secrets)
    return UpResult(deployment_dir=target, image_source=image_source)


def down(profile: Profile, volumes: bool = False) -> None:
    require_compose()
    docker_client()
    args = ["down", "--remove-orphans"] + (["--volumes"] if volumes else [])
    compose(profile, *args)
    if volumes:
        # Compose removes only the volumes its file declares; sweep any left by an older file.
        client = docker_client()
        for volume in client.volumes.list(filters={"label": f"{PROJECT_LABEL}={profile.project}"}):
            volume.remove(force=True)
        remove_secret_files(profile)
