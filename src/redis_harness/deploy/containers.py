"""A deployment's containers: the one way to find them, and the one reading of their facts.

Every stage that needs a container (status, verify, faults, the load sampler)
finds it here, and reads its memory the same way, so two views of the same
container cannot disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from redis_harness import paths
from redis_harness.deploy.engine import docker_client
from redis_harness.errors import BadInput
from redis_harness.paths import profile_argument
from redis_harness.profile.model import Profile

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
NETWORK_LABEL = "com.docker.compose.network"
CONFIG_FILES_LABEL = "com.docker.compose.project.config_files"


def project_containers(profile: Profile, include_stopped: bool = True) -> list[Any]:
    return docker_client().containers.list(all=include_stopped, filters={"label": f"{PROJECT_LABEL}={profile.project}"})


def service_container(profile: Profile, service: str | None = None) -> Any:
    """The one container of a compose service (default: the first data node); BadInput when it is not up."""
    service = service or profile.data_nodes[0].service
    for container in project_containers(profile):
        if container.labels.get(SERVICE_LABEL) == service:
            return container
    raise BadInput(
        f"deployment: {profile.project} is not running (no {service} container); "
        f"run `redis-harness up {profile_argument(profile.name, profile.source)}`"
    )


def running_container(profile: Profile, service: str | None = None) -> Any:
    """A node's container, which must be running; BadInput (exit 2) naming the fix otherwise."""
    container = service_container(profile, service)
    if container.status != "running":
        raise BadInput(
            f"deployment: {profile.project} is not running ({container.name} {container.status}); "
            f"run `redis-harness up {profile_argument(profile.name, profile.source)}`"
        )
    return container


def deployed_folder(profile: Profile) -> Path:
    """The folder of the compose file the running containers were made from: the owning checkout's
    compose/<name>/, whichever checkout asks (verify works from anywhere); this checkout's own
    folder when no container names one."""
    for container in project_containers(profile):
        config_files = container.labels.get(CONFIG_FILES_LABEL, "")
        if config_files:
            return Path(config_files.split(",")[0]).parent
    return paths.deployment_dir(profile.name)


def data_containers(profile: Profile) -> list[Any]:
    """The containers of the data nodes (not Sentinels, not one-off jobs)."""
    services = {node.service for node in profile.data_nodes}
    return [c for c in project_containers(profile) if c.labels.get(SERVICE_LABEL) in services]


def memory_figures(stats: dict[str, Any]) -> dict[str, Any]:
    """Memory in use as `docker stats` counts it: page cache the kernel can drop (the AOF's, mostly) is not pressure."""
    memory = stats.get("memory_stats", {})
    details = memory.get("stats", {})
    inactive = details.get("inactive_file", details.get("total_inactive_file", 0))
    usage = memory.get("usage")
    return {"memory_used": usage - inactive if usage is not None else None, "memory_limit": memory.get("limit")}


def container_facts(container: Any) -> dict[str, Any]:
    """State, health, restarts, OOM kill and memory of one container."""
    state = container.attrs["State"]
    facts = {
        "name": container.name,
        "service": container.labels.get(SERVICE_LABEL),
        "state": state.get("Status"),
        "health": (state.get("Health") or {}).get("Status", "none"),
        "restart_count": container.attrs.get("RestartCount", 0),
        "oom_killed": state.get("OOMKilled", False),
        "started_at": state.get("StartedAt"),
        "memory_limit": container.attrs["HostConfig"].get("Memory") or None,
        "memory_used": None,
    }
    if facts["state"] == "running":
        facts["memory_used"] = memory_figures(container.stats(stream=False, one_shot=True))["memory_used"]
    return facts
