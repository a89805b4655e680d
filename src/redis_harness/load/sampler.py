"""Server-side figures during a load run: INFO once a second plus the container's memory and CPU."""

from __future__ import annotations

import time
from typing import Any

import redis

from redis_harness.deploy.connect import connect
from redis_harness.deploy.containers import memory_figures, service_container
from redis_harness.profile.credentials import AnySecrets, Secrets, TargetSecrets
from redis_harness.profile.model import Profile

INFO_FIELDS = (
    "instantaneous_ops_per_sec",
    "total_commands_processed",
    "keyspace_hits",
    "keyspace_misses",
    "used_memory",
    "maxmemory",
    "evicted_keys",
    "expired_keys",
    "connected_clients",
    "mem_fragmentation_ratio",
    "rejected_connections",
)


def oom_replies(errorstats: dict[str, Any]) -> int:
    """The server's own count of -OOM replies (INFO errorstats, one per refused command since it started);
    a cluster client's answer per node is summed."""
    if errorstats and all(isinstance(v, dict) and "count" not in v for v in errorstats.values()):
        return sum(oom_replies(node) for node in errorstats.values())
    return int((errorstats.get("errorstat_OOM") or {}).get("count", 0))


class ServerSampler:
    """Call sample() about once a second; each call appends one row to `series`.

    On a target the INFO is the admin's; without admin credentials a row only says whether the
    target answered a service user's PING (its INFO fields absent: not available, not zero)."""

    def __init__(self, profile: Profile, secrets: AnySecrets) -> None:
        self.profile = profile
        self.secrets = secrets
        self.series: list[dict[str, Any]] = []
        self._client: redis.Redis | None = None
        self._container = None

    def _redis(self) -> redis.Redis:
        if self._client is None and isinstance(self.secrets, TargetSecrets):
            secrets = self.secrets
            user, password = secrets.login(secrets.admin.user if secrets.admin else secrets.services[0].user)
            self._client = connect(
                self.profile, user, password, timeout_s=1.0, sentinel_password=secrets.sentinel_password
            )
        if self._client is None:
            assert isinstance(self.secrets, Secrets)
            self._client = connect(
                self.profile,
                "admin",
                self.secrets.admin.password,
                timeout_s=1.0,
                sentinel_password=self.secrets.default.password,
            )
        return self._client

    def sample(self) -> dict[str, Any]:
        row: dict[str, Any] = {"t": time.time()}
        try:
            if isinstance(self.secrets, TargetSecrets) and self.secrets.admin is None:
                row["up"] = bool(self._redis().ping())
            else:
                info = self._redis().info()
                row.update({key: info.get(key) for key in INFO_FIELDS})
                row["oom_replies"] = oom_replies(self._redis().info("errorstats"))
                row["up"] = True
        except redis.RedisError:
            row["up"] = False  # a fault is in progress: the gap is part of the story
        row.update(self._container_figures())
        self.series.append(row)
        return row

    def _container_figures(self) -> dict[str, Any]:
        if self.profile.target is not None:
            return {}  # not a container of the harness's
        try:
            if self._container is None:
                # The first data node: the primary unless a failover moved it.
                self._container = service_container(self.profile)
            stats = self._container.stats(stream=False, one_shot=True)
        except Exception:  # noqa: BLE001 - a restarting container has no stats; keep sampling
            self._container = None
            return {}
        cpu = stats.get("cpu_stats", {}).get("cpu_usage", {}).get("total_usage")
        memory = memory_figures(stats)
        return {
            "container_memory": memory["memory_used"],
            "container_memory_limit": memory["memory_limit"],
            "container_cpu_ns": cpu,
        }

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def with_rates(series: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-second rates between consecutive rows: evictions/s, expirations/s, ops/s, CPU share, hit ratio."""
    rows = []
    previous: dict[str, Any] | None = None
    for row in series:
        out = dict(row)
        if previous is not None and row.get("up") and previous.get("up"):
            elapsed = max(1e-3, row["t"] - previous["t"])
            for counter, rate in (
                ("evicted_keys", "evictions_per_s"),
                ("expired_keys", "expirations_per_s"),
                ("total_commands_processed", "ops_per_s"),
            ):
                if row.get(counter) is not None and previous.get(counter) is not None:
                    out[rate] = max(0.0, (row[counter] - previous[counter]) / elapsed)
            hits = (row.get("keyspace_hits") or 0) - (previous.get("keyspace_hits") or 0)
            misses = (row.get("keyspace_misses") or 0) - (previous.get("keyspace_misses") or 0)
            out["hit_ratio"] = hits / (hits + misses) if hits + misses > 0 else None
            if row.get("container_cpu_ns") and previous.get("container_cpu_ns"):
                out["cpu_cores"] = max(0.0, (row["container_cpu_ns"] - previous["container_cpu_ns"]) / 1e9 / elapsed)
        rows.append(out)
        previous = row
    return rows
