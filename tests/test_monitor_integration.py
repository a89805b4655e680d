"""`monitor --once --json` against a real deployment: idle, memory past the alert, keys without TTL, and
that the monitor's own commands stay out of the figures (an idle deployment at ~0 ops/s, an all-miss
client at a miss ratio near 1)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
from rich.console import Console

from redis_harness.monitor.alerts import evaluate
from redis_harness.monitor.figures import TTL_SAMPLE_KEYS, DeploymentReader, Reading, deployment_figures
from redis_harness.monitor.view import render

from .conftest import REPO, Deployment, deployed, variant_profile
from .docs_pictures import keep

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
    keep("monitor.svg", monitor_svg(mon).encode())  # docs/monitoring.md: the view with the alert firing
    client.flushall()
    assert code == 1
    memory = alert(report, "memory")
    assert memory["firing"] and memory["value"] > memory["threshold"] == mon.profile.alerts.memory_ratio
    assert not alert(report, "keys_without_ttl")["firing"]  # every key has a TTL
    assert report["keys_without_ttl_ratio"] == 0


def monitor_svg(deployment: Deployment) -> str:
    """The view `redis-harness monitor` draws, at 100 columns, as an SVG (rich's own export)."""
    with DeploymentReader(deployment.profile, deployment.secrets) as reader:
        before = reader.read(full=False)
        time.sleep(1)
        figures = deployment_figures(reader.read(), before)
    states = evaluate(figures, deployment.profile.alerts)
    console = Console(record=True, width=100, file=io.StringIO())
    console.print(render(f"monitor {deployment.profile.project}", figures, states, {}))
    return console.export_svg(title=f"redis-harness monitor {deployment.profile.name}")


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
    for part in ("ok      miss_ratio", "node ", "traffic ", "memory ", "clients "):
        assert part in result.stdout


# --------------------------------------------------------------------------- the monitor does not measure itself


def keys_with_ttl(client: redis.Redis, count: int = 1000) -> None:
    """Keys for the TTL sample to look up: without any, the monitor sends almost nothing."""
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        pipe.set(f"price:v1:price:{{P{i}}}", "x" * 100, ex=3600)
    pipe.execute()


def self_counting(readings: list[Reading]) -> list[Reading]:
    """The readings as the monitor took them before it counted its own commands: nothing to subtract."""
    return [replace(r, own=None) for r in readings]


def interval(deployment: Deployment) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two full readings one second apart, as the live view takes them (the first one samples TTLs),
    as figures with the monitor's own commands taken out, and as the self-counting monitor had them."""
    with DeploymentReader(deployment.profile, deployment.secrets) as reader:
        before = reader.read()
        time.sleep(1.0)
        now = reader.read()
    return deployment_figures(now, before), deployment_figures(self_counting(now), self_counting(before))


def test_an_idle_deployment_shows_no_traffic(mon: Deployment) -> None:
    client = admin(mon)
    client.flushall()
    keys_with_ttl(client)
    try:
        figures, self_counted = interval(mon)
        code, report = monitor_once(mon)
    finally:
        client.flushall()
    # The healthcheck's AUTH and PING every 3 s are all there is.
    assert figures["ops_per_s"] < 5 and figures["hit_ratio"] is None and figures["miss_ratio"] is None
    assert code == 0 and report["ops_per_s"] < 5 and report["hit_ratio"] is None, report
    # Broken variant: counting its own ~600 commands and 200 TTL lookups, the monitor saw traffic and hits.
    assert self_counted["ops_per_s"] > TTL_SAMPLE_KEYS and self_counted["hit_ratio"] == 1.0


def test_a_client_doing_only_misses_shows_a_miss_ratio_near_one(mon: Deployment) -> None:
    client = admin(mon)
    client.flushall()
    keys_with_ttl(client)
    stop = threading.Event()
    price = redis.Redis(port=mon.profile.network.port, username="price", password=mon.secrets.service("price").password)

    def misses() -> None:  # about 100 GETs a second of keys that do not exist, for at most 30 s
        for i in range(3000):
            if stop.is_set():
                return
            price.get(f"price:v1:price:{{absent-{i}}}")
            time.sleep(0.01)

    worker = threading.Thread(target=misses)
    worker.start()
    try:
        time.sleep(0.5)
        figures, self_counted = interval(mon)
        _, report = monitor_once(mon)
    finally:
        stop.set()
        worker.join()
        price.close()
        client.flushall()
    print(
        f"\n[monitor] all-miss client: {figures['ops_per_s']:.0f} ops/s, miss ratio {figures['miss_ratio']:.3f}; "
        f"self-counting: {self_counted['ops_per_s']:.0f} ops/s, miss ratio {self_counted['miss_ratio']:.3f}"
    )
    assert figures["miss_ratio"] > 0.95 and report["miss_ratio"] > 0.95, report
    # Broken variant: the sample's 200 TTL hits drown ~100 misses.
    assert self_counted["miss_ratio"] < 0.95
