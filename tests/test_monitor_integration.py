"""`monitor --once --json` against a real deployment: idle, memory past the alert, keys without TTL."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from .conftest import REPO, Deployment, deployed, variant_profile

pytestmark = pytest.mark.integration

VALUE = b"x" * 8192


@pytest.fixture(scope="module")
def mon(tmp_path_factory: pytest.TempPathFactory, secret_env: dict[str, str]) -> Iterator[Deployment]:
    profile = variant_profile("ci", tmp_path_factory.mktemp("mon"), "mon", network={"port": 6570})
    with deployed(profile, secret_env) as deployment:
        yield deployment


def monitor_once(deployment: Deployment) -> tuple[int, dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "redis_harness.cli", "monitor", str(deployment.profile.source), "--once", "--json"],
        capture_output=True,
        text=True,
        env=deployment.env,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def admin(deployment: Deployment) -> redis.Redis:
    return redis.Redis(
        port=deployment.profile.network.port, username="admin", password=deployment.secrets.admin.password
    )


def fill(client: redis.Redis, share_of_maxmemory: float, prefix: str, ttl_s: int | None) -> int:
    """Write 8 KiB values until used_memory passes the share of maxmemory (bounded: at most 20,000 keys)."""
    maxmemory = int(client.config_get("maxmemory")["maxmemory"])
    written = 0
    while client.info("memory")["used_memory"] < share_of_maxmemory * maxmemory:
        assert written < 20_000, "memory never filled"
        pipe = client.pipeline(transaction=False)
        for i in range(written, written + 200):
            pipe.set(f"{prefix}:{i}", VALUE, ex=ttl_s)
        pipe.execute()
        written += 200
    return written


def alert(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in report["alerts"] if a["name"] == name)


def test_idle_deployment_fires_nothing(mon: Deployment) -> None:
    code, report = monitor_once(mon)
    assert code == 0, report["alerts"]
    for field in ("nodes", "hit_ratio", "miss_ratio", "evictions_per_s", "connected_clients", "keys_without_ttl_ratio"):
        assert field in report
    assert set(report["memory"]) >= {"used", "maxmemory", "limit", "ratio"}
    assert report["memory"]["maxmemory"] == mon.profile.memory.maxmemory_bytes
    assert report["memory"]["limit"] == mon.profile.resources.memory_bytes
    assert [a["name"] for a in report["alerts"]] == [
        "miss_ratio",
        "memory",
        "slow_updates",
        "evictions",
        "keys_without_ttl",
        "down",
    ]
    assert report["clients"]["admin"]["connected"] >= 1  # the monitor's own connection, seen in CLIENT LIST


def test_memory_past_the_threshold_fires_memory(mon: Deployment) -> None:
    client = admin(mon)
    client.flushall()
    fill(client, 0.85, "price:v1:price", ttl_s=3600)
    code, report = monitor_once(mon)
    client.flushall()
    assert code == 1
    memory = alert(report, "memory")
    assert memory["firing"] and memory["value"] > memory["threshold"] == mon.profile.alerts.memory_ratio
    assert not alert(report, "keys_without_ttl")["firing"]  # every key has a TTL
    assert report["keys_without_ttl_ratio"] == 0


def test_keys_without_ttl_fire_under_volatile_lru(mon: Deployment) -> None:
    client = admin(mon)
    client.flushall()
    fill(client, 0.10, "price:v1:price", ttl_s=3600)
    fill(client, 0.40, "processing:v1:calc", ttl_s=None)
    code, report = monitor_once(mon)
    client.flushall()
    assert code == 1
    assert alert(report, "keys_without_ttl")["firing"]
    assert not alert(report, "memory")["firing"]
    # The memory share is an estimate from sampled keys; with 3 of 4 bytes persistent it sits well above half.
    assert report["memory_without_ttl_ratio"] > 0.5
    assert report["ttl_sampled_keys"] > 100


def test_a_deployment_that_is_not_up_exits_2(tmp_path: Path, cli_env: dict[str, str]) -> None:
    profile = variant_profile("ci", tmp_path, "monabsent", network={"port": 6571})
    result = subprocess.run(
        [sys.executable, "-m", "redis_harness.cli", "monitor", str(profile.source), "--once", "--json"],
        capture_output=True,
        text=True,
        env=cli_env,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "redis-harness: deployment: redis-harness-monabsent is not running; run `redis-harness up monabsent` first"
    ]
    assert result.stdout == ""


def test_the_live_view_refreshes_and_stops_after_count(mon: Deployment) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "redis_harness.cli", "monitor", str(mon.profile.source), "--count", "2"],
        capture_output=True,
        text=True,
        env=mon.env,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for table in ("alerts (profile thresholds)", "data nodes", "clients per ACL user"):
        assert table in result.stdout
