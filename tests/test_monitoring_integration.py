"""The Prometheus stack of a real deployment (monitoring.enabled): up, verify's monitoring checks and
their broken variants, and RedisMemoryHigh firing after memory is filled past the profile's threshold."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from redis_harness import paths
from redis_harness.deploy.containers import project_containers
from redis_harness.profile.model import Profile
from redis_harness.render.monitoring import alert_rules

from .browser import chromium_page
from .conftest import REPO, Deployment, deployed, variant_profile
from .docs_pictures import keep
from .test_verify import failed, verify_outcomes

pytestmark = pytest.mark.integration

MONITORING = {
    "enabled": True,
    "prometheus_port": 6590,
    "alertmanager_port": 6591,
    "scrape_interval": "2s",
    "alert_for": "10s",
}
MONITORING_CHECKS = "test_monitoring"


@pytest.fixture(scope="module")
def monstack(tmp_path_factory: pytest.TempPathFactory, secret_env: dict[str, str]) -> Iterator[Deployment]:
    profile = variant_profile(
        "ci", tmp_path_factory.mktemp("monstack"), "monstack", network={"port": 6572}, monitoring=MONITORING
    )
    with deployed(profile, secret_env) as deployment:
        yield deployment


def api(profile: Profile, path: str, port: int | None = None) -> Any:
    url = f"http://127.0.0.1:{port or profile.monitoring.prometheus_port}{path}"
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.load(answer)


def service(profile: Profile, name: str) -> Any:
    return next(c for c in project_containers(profile) if c.labels.get("com.docker.compose.service") == name)


def compose(profile: Profile, *args: str) -> None:
    folder = paths.deployment_dir(profile.name)
    subprocess.run(
        ["docker", "compose", "-p", profile.project, "-f", str(folder / "docker-compose.yml"), *args],
        check=True,
        capture_output=True,
        timeout=120,
    )


def targets_up(profile: Profile) -> bool:
    try:
        targets = api(profile, "/api/v1/targets?state=active")["data"]["activeTargets"]
    except OSError:
        return False
    return bool(targets) and all(t["health"] == "up" for t in targets)


def wait_for(what: str, predicate: Any, timeout_s: float) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout_s, f"{what}: not within {timeout_s} s"
        time.sleep(0.5)
    return time.monotonic() - started


def test_up_brings_the_stack_up_healthy_and_status_names_its_urls(monstack: Deployment) -> None:
    profile = monstack.profile
    roles = {
        c.labels.get("io.redis-harness.role"): c.attrs["State"]["Health"]["Status"] for c in project_containers(profile)
    }
    assert roles == {"primary": "healthy", "exporter": "healthy", "prometheus": "healthy", "alertmanager": "healthy"}
    result = subprocess.run(
        [sys.executable, "-m", "redis_harness.cli", "status", str(profile.source), "--json"],
        capture_output=True,
        text=True,
        env=monstack.env,
        cwd=REPO,
        timeout=60,
    )
    assert json.loads(result.stdout)["monitoring"] == {
        "prometheus_url": "http://127.0.0.1:6590",
        "alertmanager_url": "http://127.0.0.1:6591",
    }
    with urllib.request.urlopen("http://127.0.0.1:6591/-/healthy", timeout=5) as answer:
        assert answer.status == 200


def test_prometheus_loaded_the_six_rules_with_the_profiles_thresholds(monstack: Deployment) -> None:
    groups = api(monstack.profile, "/api/v1/rules?type=alert")["data"]["groups"]
    loaded = {r["name"]: r["annotations"]["threshold"] for g in groups for r in g["rules"]}
    alerts = monstack.profile.alerts
    expected = {
        "RedisDown": 0,
        "RedisMissRatioHigh": alerts.miss_ratio,
        "RedisMemoryHigh": alerts.memory_ratio,
        "RedisSlowUpdates": alerts.slow_update_s,
        "RedisEvictionsFrequent": alerts.evictions_per_s,
        "RedisKeysWithoutTtl": alerts.keys_without_ttl_ratio,
    }
    assert {name: float(value) for name, value in loaded.items()} == expected


def test_verify_passes_with_monitoring(monstack: Deployment, tmp_path: Path) -> None:
    outcomes = verify_outcomes(monstack.profile, monstack.env, tmp_path)
    assert not failed(outcomes), failed(outcomes)
    mine = {name: status for name, status in outcomes.items() if "monitoring" in name or "exporter" in name}
    assert set(mine.values()) == {"pass"}, mine
    assert {
        "every_exporter_target_up",
        "loaded_rules_are_the_profiles",
        "monitoring_containers_hardened",
        "prometheus_data_on_a_named_volume",
        "acl_user_matches_profile[exporter]",
    } <= set(outcomes)


def test_verify_fails_when_an_exporter_is_down(monstack: Deployment, tmp_path: Path) -> None:
    profile = monstack.profile
    exporter = service(profile, "exporter-redis")
    exporter.stop(timeout=5)
    try:

        def target_down() -> bool:
            targets = api(profile, "/api/v1/targets?state=active")["data"]["activeTargets"]
            return any(t["health"] == "down" for t in targets)

        wait_for("Prometheus sees the exporter down", target_down, 30)
        outcomes = verify_outcomes(profile, monstack.env, tmp_path, "-k", MONITORING_CHECKS)
        assert failed(outcomes) == {"every_exporter_target_up"}
    finally:
        exporter.start()
        wait_for("the exporter scraped again", lambda: targets_up(profile), 30)


def test_verify_fails_when_prometheus_runs_other_rules(monstack: Deployment, tmp_path: Path) -> None:
    profile = monstack.profile
    rules = paths.deployment_dir(profile.name) / "rules.yml"
    original = rules.read_text()
    rules.write_text(original.replace("> 0.8", "> 0.95").replace('threshold: "0.8"', 'threshold: "0.95"'))
    prometheus = service(profile, "prometheus")
    try:
        prometheus.restart(timeout=10)
        wait_for("Prometheus answers again", lambda: _answers(profile), 60)
        wait_for("the exporter scraped", lambda: targets_up(profile), 30)
        outcomes = verify_outcomes(profile, monstack.env, tmp_path, "-k", MONITORING_CHECKS)
        assert failed(outcomes) == {"loaded_rules_are_the_profiles"}
    finally:
        rules.write_text(original)
        prometheus.restart(timeout=10)
        wait_for("Prometheus answers again", lambda: _answers(profile), 60)


def _answers(profile: Profile) -> bool:
    try:
        return bool(api(profile, "/api/v1/rules")["data"]["groups"])
    except OSError:
        return False


def test_verify_fails_when_alertmanager_runs_with_a_writable_root(monstack: Deployment, tmp_path: Path) -> None:
    profile = monstack.profile
    document = paths.deployment_dir(profile.name) / "docker-compose.yml"  # the monitoring services are merged in
    original = document.read_text()
    broken = yaml.safe_load(original)
    broken["services"]["alertmanager"]["read_only"] = False
    document.write_text(yaml.safe_dump(broken))
    try:
        compose(profile, "up", "--detach", "--wait", "alertmanager")
        outcomes = verify_outcomes(profile, monstack.env, tmp_path, "-k", MONITORING_CHECKS)
        assert failed(outcomes) == {"monitoring_containers_hardened"}
    finally:
        document.write_text(original)
        compose(profile, "up", "--detach", "--wait", "alertmanager")


def firing_now(profile: Profile) -> list[str]:
    alerts = api(profile, "/api/v1/alerts")["data"]["alerts"]
    return [a["labels"]["alertname"] for a in alerts if a["state"] == "firing"]


def run_load(deployment: Deployment, run_dir: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    result = subprocess.run(
        [sys.executable, "-m", "redis_harness.cli", "load", str(deployment.profile.source), "--report", str(run_dir),
         *args],
        capture_output=True, text=True, env=deployment.env, cwd=REPO, timeout=300,
    )  # fmt: skip
    report_path = run_dir / "report.json"
    return result.returncode, json.loads(report_path.read_text()) if report_path.is_file() else {}, result.stdout


def test_a_healthy_smoke_run_lists_no_prometheus_alert(monstack: Deployment, tmp_path: Path) -> None:
    wait_for("no alert left from earlier tests", lambda: not firing_now(monstack.profile), 60)
    code, report, stdout = run_load(monstack, tmp_path, "--scenario", "smoke", "--duration", "8s")
    assert code == 0, stdout
    assert report["prometheus_alerts"] == []
    assert "prometheus alerts: none fired" in stdout


def test_memory_past_the_threshold_fires_redis_memory_high(monstack: Deployment, capsys: Any, tmp_path: Path) -> None:
    profile = monstack.profile
    client = redis.Redis(port=profile.network.port, username="admin", password=monstack.secrets.admin.password)
    maxmemory = profile.memory.maxmemory_bytes
    written = 0
    while client.info("memory")["used_memory"] < 0.85 * maxmemory:
        assert written < 20_000
        pipe = client.pipeline(transaction=False)
        for i in range(written, written + 200):
            pipe.set(f"price:v1:price:{i}", b"x" * 8192, ex=3600)
        pipe.execute()
        written += 200
    rule = next(r for r in alert_rules(profile) if r.name == "RedisMemoryHigh")
    interval = profile.monitoring.scrape_interval_s

    def firing() -> bool:
        alerts = api(profile, "/api/v1/alerts")["data"]["alerts"]
        return any(a["labels"]["alertname"] == "RedisMemoryHigh" and a["state"] == "firing" for a in alerts)

    # `for`, plus two scrape intervals (the sample that crosses, the evaluation that sees it), plus one
    # evaluation interval for the rule to turn from pending to firing.
    took = wait_for("RedisMemoryHigh firing", firing, rule.for_s + 3 * interval)
    with capsys.disabled():
        print(f"\n[monitoring] RedisMemoryHigh firing {took:.1f} s after used_memory passed 85 % (for {rule.for_s} s)")
    # docs/monitoring.md: Prometheus's own alerts page, with the alert firing.
    with chromium_page(tmp_path, window_size="1200,900") as page:
        page.call("Page.navigate", url=f"http://127.0.0.1:{profile.monitoring.prometheus_port}/classic/alerts")
        shown = "!!document.body && document.body.innerText.includes('RedisMemoryHigh')"
        wait_for("the alerts page", lambda: page.evaluate(shown), 15)
        keep("prometheus-alerts.png", page.screenshot())
    client.flushall()
    client.close()


def test_the_eviction_run_lists_the_alerts_it_caused(monstack: Deployment, tmp_path: Path) -> None:
    code, report, stdout = run_load(monstack, tmp_path, "--scenario", "eviction", "--duration", "25s")
    fired = {a["name"] for a in report["prometheus_alerts"]}
    assert {"RedisEvictionsFrequent", "RedisMemoryHigh"} <= fired, stdout
    assert "prometheus alerts: " in stdout and "RedisEvictionsFrequent" in stdout
    assert "Prometheus alerts during the run" in (tmp_path / "report.html").read_text()
