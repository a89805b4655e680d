"""What a deployment is doing now, and whether it is healthy, said truthfully.

Healthy means: every container runs and passes its healthcheck, none was
OOM-killed or crash-restarted since the last successful `up`, and every data
node answers an authenticated PING with the current secrets. Figures of the
server (maxmemory, policy, memory used) are the ones read live; when they
cannot be read they are reported as unknown, never copied from the profile.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from redis_harness import paths
from redis_harness.deploy import generations, ownership
from redis_harness.deploy.containers import container_facts, project_containers
from redis_harness.deploy.running import published_port
from redis_harness.deploy.tls_client import tls_kwargs
from redis_harness.profile.credentials import Secrets
from redis_harness.profile.model import Profile
from redis_harness.profile.units import format_size
from redis_harness.render.certificates import certificates, tls_file_names
from redis_harness.render.secret_files import read_secret_files
from redis_harness.terminal import view_width

LABEL_WIDTH = len("monitoring ")  # the label column; a wrapped line continues under the values


def _client(profile: Profile, port: int, user: str | None, password: str) -> redis.Redis:
    return redis.Redis(
        host=profile.network.host,
        port=port,
        username=user,
        password=password,
        socket_connect_timeout=2,
        socket_timeout=2,
        decode_responses=True,
        retry=Retry(NoBackoff(), 0),
        **tls_kwargs(profile, user),
    )


def _endpoint(profile: Profile) -> dict[str, Any] | None:
    """Where clients connect; with publish: host, also the networks allowed to."""
    network = profile.network
    if not profile.published:
        return None
    found: dict[str, Any] = {"host": network.host, "port": network.port}
    return found | {"allow": list(network.allow)} if network.publish == "host" else found


def _node_facts(profile: Profile, container: Any, secrets: Secrets | None) -> dict[str, Any]:
    """An authenticated PING (default user and admin) and the admin's live figures of one data node."""
    if secrets is None:
        return {
            "reachable": None,
            "error": f"no secrets: set the passwords in {paths.dotenv_path(profile.name).name} to check the server",
        }
    if profile.network.publish == "none":
        return {"reachable": None, "error": "not published: the host cannot reach it"}
    port = published_port(container, profile.network.container_port)
    if port is None:
        return {"reachable": False, "error": f"{container.name} publishes no port"}
    try:
        if profile.security.default_user != "off":  # with `default` off, its refusal is the profile's will
            default = _client(profile, port, None, secrets.default.password)
            try:
                default.ping()
            finally:
                default.close()
        admin = _client(profile, port, "admin", secrets.admin.password)
        try:
            info = admin.info("memory") | admin.info("stats") | admin.info("replication")
        finally:
            admin.close()
    except redis.AuthenticationError as exc:
        return {"reachable": False, "error": f"{type(exc).__name__}: {exc}", "auth_failed": True}
    except redis.RedisError as exc:
        return {"reachable": False, "error": f"{type(exc).__name__}: {exc}"}
    return {
        "reachable": True,
        "role": info.get("role"),
        "used_memory": info["used_memory"],
        "maxmemory": info["maxmemory"],
        "policy": info["maxmemory_policy"],
        "evicted_keys": info["evicted_keys"],
        "keyspace_hits": info["keyspace_hits"],
        "keyspace_misses": info["keyspace_misses"],
    }


def _problems(profile: Profile, facts: list[dict[str, Any]], nodes: dict[str, dict[str, Any]]) -> list[str]:
    baseline = generations.read_baseline(profile)
    problems = []
    expected = {n.service for n in profile.nodes}
    present = {c["service"] for c in facts}
    problems += [f"{service}: no container" for service in sorted(expected - present)]
    for c in facts:
        if c["state"] != "running":
            problems.append(f"{c['name']}: {c['state']}")
        elif c["health"] not in ("healthy", "none"):
            problems.append(f"{c['name']}: health {c['health']}")
        was = baseline.get(c["service"] or "")
        same = bool(was) and was["id"] == c["id"]
        seen_by_up = same and was.get("oom_killed") and c["restart_count"] == was["restart_count"]
        if c["oom_killed"] and not seen_by_up:
            problems.append(f"{c['name']}: OOM-killed since the last up")
        if same and c["restart_count"] > was["restart_count"]:
            problems.append(
                f"{c['name']}: restarted {c['restart_count'] - was['restart_count']} time(s) since the last up "
                "(crash or OOM kill)"
            )
    for service, node in nodes.items():
        if not node.get("reachable"):
            problems.append(f"{service}: {node.get('error', 'not reachable')}")
    return problems


def collect(profile: Profile, secrets: Secrets | None) -> dict[str, Any]:
    found = project_containers(profile)
    facts = [container_facts(c) | {"id": c.id} for c in found if c.labels.get("com.docker.compose.oneoff") != "True"]
    data_services = {node.service for node in profile.data_nodes}
    nodes = {
        c.labels.get("com.docker.compose.service"): _node_facts(profile, c, secrets)
        for c in found
        if c.labels.get("com.docker.compose.service") in data_services and c.status == "running"
    }
    data = [c for c in facts if c["service"] in data_services]
    used = [c["memory_used"] for c in data if c["memory_used"] is not None]
    primary = next(
        (n for n in nodes.values() if n.get("reachable") and n.get("role") == "master"),
        next((n for n in nodes.values() if n.get("reachable")), {"reachable": None}),
    )
    problems = _problems(profile, facts, nodes) if facts else ["not deployed"]
    owner = ownership.recorded_owner(profile)
    if owner and not owner.is_this_checkout() and any(n.get("auth_failed") for n in nodes.values()):
        problems.append("it belongs to another checkout (see owner): its passwords are that checkout's")
    return {
        "profile": profile.name,
        # Who may change it (deploy.ownership); None when nothing of it exists that names one.
        "owner": owner.as_dict() if owner is not None else None,
        "profile_argument": paths.profile_argument(profile.name, profile.source),
        "project": profile.project,
        "endpoint": _endpoint(profile),
        "tls": _tls_facts(profile),
        "containers": facts,
        # Per container: the limit is every node's; the figure used is the fullest node's.
        "memory_limit": next((c["memory_limit"] for c in data if c["memory_limit"]), None),
        "memory_used": max(used) if used else None,
        # Live figures only: None (unknown) when the server could not be read.
        "maxmemory": primary.get("maxmemory"),
        "policy": primary.get("policy"),
        "redis": primary,
        "nodes": nodes,
        "healthy": not problems,
        "problems": problems,
        "monitoring": (
            {
                "prometheus_url": f"http://{profile.network.host}:{profile.monitoring.prometheus_port}",
                "alertmanager_url": f"http://{profile.network.host}:{profile.monitoring.alertmanager_port}",
            }
            if profile.monitoring.enabled
            else None
        ),
    }


def _tls_facts(profile: Profile) -> dict[str, Any] | None:
    """How clients must connect, and when the soonest certificate `up` issued expires (None: not issued yet)."""
    tls = profile.tls
    if not tls.enabled:
        return None
    issued = certificates(read_secret_files(profile, tls_file_names(profile)))
    soonest = min(issued, key=lambda cert: cert.not_after) if issued else None
    return {
        "min_version": tls.min_version,
        "client_auth": tls.client_auth,
        "soonest_expiry": soonest.not_after.isoformat() if soonest else None,
        "soonest_file": soonest.file if soonest else None,
        "days_left": round(soonest.expires_in(dt.datetime.now(dt.UTC)).total_seconds() / 86400, 1) if soonest else None,
    }


def _size(value: int | None) -> str:
    return format_size(value) if value is not None else "unknown"


def format_status(status: dict[str, Any], width: int | None = None) -> str:
    """One line per fact, a long one wrapped under its value (at most 100 columns)."""
    width = width or view_width()
    lines = _status_lines(status)
    return "\n".join(
        textwrap.fill(line, width, subsequent_indent=" " * LABEL_WIDTH, break_on_hyphens=False) for line in lines
    )


def _status_lines(status: dict[str, Any]) -> list[str]:
    lines = [f"profile    {status['profile']}  (compose project {status['project']})"]
    endpoint = status["endpoint"]
    allow = f" (allow {' '.join(endpoint['allow'])})" if endpoint and endpoint.get("allow") else ""
    lines.append(
        f"endpoint   {endpoint['host']}:{endpoint['port']}{allow}" if endpoint else "endpoint   none (not published)"
    )
    tls = status.get("tls")
    if tls:
        certs = {"required": "client certificates required", "optional": "client certificates checked when shown"}
        expiry = (
            f"; soonest certificate expiry in {tls['days_left']:g} days ({tls['soonest_file']})"
            if tls["days_left"] is not None
            else "; no certificates issued yet"
        )
        lines.append(
            f"tls        {tls['min_version']} or newer, {certs.get(tls['client_auth'], 'passwords only')}{expiry}"
        )
    owner = status.get("owner")
    if owner:
        whose = "this checkout" if owner["this_checkout"] else "another checkout: changes refused here"
        lines.append(f"owner      {owner['user']} on {owner['host']}: {owner['checkout']} ({whose})")
    if not status["containers"]:
        lines.append("containers none: not deployed (run `redis-harness up " + status["profile_argument"] + "`)")
        lines.append("healthy    no: not deployed")
        return lines
    for c in status["containers"]:
        lines.append(
            f"container  {c['name']}  {c['state']}  health={c['health']}  restarts={c['restart_count']}"
            + ("  OOM-KILLED" if c["oom_killed"] else "")
        )
    lines.append(f"memory     {_size(status['memory_used'])} used of {_size(status['memory_limit'])} container limit")
    maxmemory, limit = status["maxmemory"], status["memory_limit"]
    share = f" ({maxmemory / limit:.0%} of the limit)" if maxmemory is not None and limit else ""
    lines.append(f"maxmemory  {_size(maxmemory)}{share}, policy {status['policy'] or 'unknown'}")
    live = status["redis"]
    if live.get("reachable"):
        lines.append(
            f"redis      used_memory {format_size(live['used_memory'])}, evicted {live['evicted_keys']}, "
            f"hits {live['keyspace_hits']}, misses {live['keyspace_misses']}"
        )
    lines.append("healthy    yes" if status["healthy"] else "healthy    NO: " + "; ".join(status["problems"]))
    if status.get("monitoring"):
        urls = status["monitoring"]
        lines.append(f"monitoring Prometheus {urls['prometheus_url']}, Alertmanager {urls['alertmanager_url']}")
    return lines
