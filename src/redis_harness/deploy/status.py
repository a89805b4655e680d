"""What a deployment is doing now: containers, health, memory, policy, endpoint."""

from __future__ import annotations

from typing import Any

import redis

from redis_harness.deploy.connect import connect
from redis_harness.deploy.containers import container_facts, project_containers
from redis_harness.profile.credentials import Secrets
from redis_harness.profile.model import Profile
from redis_harness.profile.units import format_size


def _redis_facts(profile: Profile, secrets: Secrets | None) -> dict[str, Any]:
    if secrets is None or profile.network.publish == "none":
        return {"reachable": None}
    try:
        client = connect(profile, "admin", secrets.admin.password, sentinel_password=secrets.default.password)
        info = client.info("memory") | client.info("stats")
        client.close()
    except redis.RedisError as exc:
        return {"reachable": False, "error": str(exc)}
    return {
        "reachable": True,
        "used_memory": info["used_memory"],
        "maxmemory": info["maxmemory"],
        "policy": info["maxmemory_policy"],
        "evicted_keys": info["evicted_keys"],
        "keyspace_hits": info["keyspace_hits"],
        "keyspace_misses": info["keyspace_misses"],
    }


def collect(profile: Profile, secrets: Secrets | None) -> dict[str, Any]:
    containers = [container_facts(c) for c in project_containers(profile)]
    live = _redis_facts(profile, secrets) if containers else {"reachable": None}
    data_services = {node.service for node in profile.data_nodes}
    data_containers = [c for c in containers if c["service"] in data_services]
    used = [c["memory_used"] for c in data_containers if c["memory_used"] is not None]
    return {
        "profile": profile.name,
        "project": profile.project,
        "endpoint": (
            {"host": profile.network.host, "port": profile.network.port}
            if profile.network.publish == "loopback"
            else None
        ),
        "containers": containers,
        # Per container: the limit is every node's; the figure used is the fullest node's.
        "memory_limit": next((c["memory_limit"] for c in data_containers if c["memory_limit"]), None)
        or profile.resources.memory_bytes,
        "memory_used": max(used) if used else None,
        "maxmemory": live.get("maxmemory", profile.memory.maxmemory_bytes),
        "policy": live.get("policy", profile.memory.policy),
        "redis": live,
        "monitoring": (
            {
                "prometheus_url": f"http://{profile.network.host}:{profile.monitoring.prometheus_port}",
                "alertmanager_url": f"http://{profile.network.host}:{profile.monitoring.alertmanager_port}",
            }
            if profile.monitoring.enabled
            else None
        ),
        "healthy": bool(containers)
        and all(c["state"] == "running" and c["health"] in ("healthy", "none") for c in containers),
    }


def format_status(status: dict[str, Any]) -> str:
    lines = [f"profile    {status['profile']}  (compose project {status['project']})"]
    endpoint = status["endpoint"]
    lines.append(f"endpoint   {endpoint['host']}:{endpoint['port']}" if endpoint else "endpoint   none (not published)")
    if not status["containers"]:
        lines.append("containers none: not deployed (run `redis-harness up " + status["profile"] + "`)")
        return "\n".join(lines)
    for c in status["containers"]:
        lines.append(
            f"container  {c['name']}  {c['state']}  health={c['health']}  restarts={c['restart_count']}"
            + ("  OOM-KILLED" if c["oom_killed"] else "")
        )
    used = status["memory_used"]
    lines.append(
        f"memory     {format_size(used) if used is not None else '?'} used of "
        f"{format_size(status['memory_limit'])} container limit"
    )
    live = status["redis"]
    share = status["maxmemory"] / status["memory_limit"] if status["memory_limit"] else 0
    lines.append(f"maxmemory  {format_size(status['maxmemory'])} ({share:.0%} of the limit), policy {status['policy']}")
    if live.get("reachable"):
        lines.append(
            f"redis      used_memory {format_size(live['used_memory'])}, evicted {live['evicted_keys']}, "
            f"hits {live['keyspace_hits']}, misses {live['keyspace_misses']}"
        )
    elif live.get("reachable") is False:
        lines.append(f"redis      NOT REACHABLE: {live['error']}")
    if status["monitoring"]:
        urls = status["monitoring"]
        lines.append(f"monitoring Prometheus {urls['prometheus_url']}, Alertmanager {urls['alertmanager_url']}")
    return "\n".join(lines)
