"""The Prometheus stack of a real deployment (monitoring.enabled): up, verify's monitoring checks and
their broken variants, and RedisMemoryHigh firing after memory is filled past the profile's threshold.
With mutual TLS (`promtls`): the exporter over TLS with its client certificate, the blackbox_exporter
reading each served certificate's expiry, and RedisCertExpiringSoon firing on a short-lived one."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from redis_harness import paths
from redis_harness.deploy.compose import up
from redis_harness.deploy.containers import data_containers, project_containers
from redis_harness.profile.credentials import load_secrets
from redis_harness.profile.model import Profile
from redis_harness.render.monitoring import alert_rules, exporter_service

from .browser import chromium_page
from .conftest import REPO, TLS_REQUIRED, Deployment, deployed, variant_profile
from .docs_pictures import keep
from .test_certs_integration import _load_short_lived, served
from .test_converge import fresh_env
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


# ------------------------------------------------------------------ over mutual TLS (one deployment)

TLS_MONITORING = {**MONITORING, "prometheus_port": 6901, "alertmanager_port": 6902}


@pytest.fixture(scope="module")
def montls(tmp_path_factory: pytest.TempPathFactory, secret_env: dict[str, str]) -> Iterator[Deployment]:
    """The ci profile with client certificates required and monitoring on, as `promtls` on port 6900."""
    folder = tmp_path_factory.mktemp("promtls")
    # variant_profile merges `security` with ci's: its users stay, TLS is added.
    profile = variant_profile(
        "ci", folder, "promtls", network={"port": 6900}, security=TLS_REQUIRED, monitoring=TLS_MONITORING
    )
    with deployed(profile, secret_env) as deployment:
        wait_for("every target scraped", lambda: targets_up(deployment.profile), 60)
        yield deployment


def query(profile: Profile, promql: str) -> dict[str, float]:
    """An instant query's answer: the `node` label (or job) -> value."""
    path = "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    result = api(profile, path)["data"]["result"]
    return {r["metric"].get("node", r["metric"].get("job", "")): float(r["value"][1]) for r in result}


def firing(profile: Profile, alertname: str) -> bool:
    return alertname in firing_now(profile)


def test_over_tls_exporters_read_redis_and_blackbox_reads_each_served_certificate(montls: Deployment) -> None:
    profile = montls.profile
    nodes = {n.service for n in profile.data_nodes}
    assert query(profile, 'up{job="redis"}') == dict.fromkeys(nodes, 1.0)
    assert query(profile, "redis_up") == dict.fromkeys(nodes, 1.0)
    # Figures only a logged-in INFO gives: the exporter's TLS session (with its client certificate) works.
    assert set(query(profile, "redis_memory_max_bytes")) == nodes
    assert query(profile, 'probe_success{job="tls"}') == {n.service: 1.0 for n in profile.nodes}
    expiry = query(profile, 'probe_ssl_earliest_cert_expiry{job="tls"}')
    assert expiry == {service: cert.not_after.timestamp() for service, cert in served(profile).items()}
    for role in ("exporter", "blackbox"):
        container = next(c for c in project_containers(profile) if c.labels.get("io.redis-harness.role") == role)
        shown = json.dumps(container.attrs)
        assert montls.secrets.derived("exporter") not in shown and "PRIVATE KEY" not in shown, role


def started_after(profile: Profile, at: float) -> set[str]:
    """The nodes whose exporter process started after `at`, compared unrounded: an exporter restarted
    within the second of the rotation counts (a PromQL `> {at:.0f}` rounded it away)."""
    return {node for node, started in query(profile, "process_start_time_seconds").items() if started > at}


def test_an_admin_rotation_restarts_only_the_exporters_which_scrape_with_the_new_password(montls: Deployment) -> None:
    """The exporter's password derives from the admin's: a live rotation (here standalone, TLS) restarts
    the exporters to read their new one and nothing else, and every node is scraped again with it;
    then the rotation back, so the module's other tests keep their secrets."""
    profile = montls.profile
    # In sync as brought up: the monitoring containers' own image is not compared with the nodes'.
    assert up(profile, montls.secrets).outcome.generation is None
    data_started = {c.name: c.attrs["State"]["StartedAt"] for c in data_containers(profile)}
    original = montls.env["REDIS_ADMIN_PASSWORD"]
    new = fresh_env()["REDIS_ADMIN_PASSWORD"]
    nodes = {n.service for n in profile.data_nodes}
    for admin, previous in ((new, original), (original, new)):
        env = {**montls.env, "REDIS_ADMIN_PASSWORD": admin, "REDIS_ADMIN_PASSWORD_PREVIOUS": previous}
        rotated_at = time.time()
        up(profile, load_secrets(profile, env=env))
        wait_for(
            "every exporter restarted and scraping with the new password",
            lambda at=rotated_at: (
                started_after(profile, at) == nodes and query(profile, "redis_up") == dict.fromkeys(nodes, 1.0)
            ),
            60,
        )
    assert {c.name: c.attrs["State"]["StartedAt"] for c in data_containers(profile)} == data_started


def test_verify_passes_over_tls_with_the_blackbox_hardened(montls: Deployment, tmp_path: Path) -> None:
    outcomes = verify_outcomes(montls.profile, montls.env, tmp_path)
    assert not failed(outcomes), failed(outcomes)
    assert outcomes["monitoring_containers_hardened"] == "pass"
    assert outcomes["every_tls_probe_succeeds"] == "pass"
    assert outcomes["private_keys_private_on_host"] == "pass"


def test_an_exporter_without_its_client_certificate_is_refused(montls: Deployment) -> None:
    profile = montls.profile
    document = paths.deployment_dir(profile.name) / "docker-compose.yml"
    original = document.read_text()
    broken = yaml.safe_load(original)
    node = profile.data_nodes[0].service
    exporter = exporter_service(node)
    command = broken["services"][exporter]["command"]
    command[-1] = command[-1].replace(
        " -tls-client-cert-file=/run/secrets/tls-client.crt -tls-client-key-file=/run/secrets/tls-client.key", ""
    )
    assert command[-1] != yaml.safe_load(original)["services"][exporter]["command"][-1]
    document.write_text(yaml.safe_dump(broken))
    try:
        compose(profile, "up", "--detach", "--wait", exporter)
        wait_for("the exporter refused by the node", lambda: query(profile, "redis_up").get(node) == 0, 30)
    finally:
        document.write_text(original)
        compose(profile, "up", "--detach", "--wait", exporter)
        wait_for("the exporter reads the node again", lambda: query(profile, "redis_up").get(node) == 1, 30)


def _internal_ip(profile: Profile, service_name: str) -> str:
    networks = service(profile, service_name).attrs["NetworkSettings"]["Networks"]
    return next(n["IPAddress"] for name, n in networks.items() if name.endswith("_internal"))


def _http_get(container: Any, port: int, path: str, before: str = "") -> str:
    """GET on the container's own loopback with bash's /dev/tcp (no curl in the image)."""
    script = f"exec 3<>/dev/tcp/127.0.0.1/{port} && printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3"
    return container.exec_run(["bash", "-c", before + script]).output.decode(errors="replace")


def _metric(text: str, name: str) -> float | None:
    return next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")), None)


def test_a_probe_checking_another_name_fails_verify_and_fires_the_handshake_alert(
    montls: Deployment, tmp_path: Path
) -> None:
    profile = montls.profile
    config = paths.deployment_dir(profile.name) / "blackbox.yml"
    original = config.read_text()
    broken = yaml.safe_load(original)
    broken["modules"]["redis_tls"]["tcp"]["tls_config"]["server_name"] = "not-a-node.invalid"
    config.write_text(yaml.safe_dump(broken))
    rule = next(r for r in alert_rules(profile) if r.name == "RedisTlsHandshakeFailing")
    interval = profile.monitoring.scrape_interval_s
    blackbox = service(profile, "blackbox")
    try:
        blackbox.restart(timeout=5)
        wait_for("the handshake alert firing", lambda: firing(profile, rule.name), rule.for_s + 15 + 4 * interval)
        outcomes = verify_outcomes(profile, montls.env, tmp_path, "-k", MONITORING_CHECKS)
        assert failed(outcomes) == {"every_tls_probe_succeeds"}
    finally:
        config.write_text(original)
        blackbox.restart(timeout=5)
        wait_for("every probe good again", lambda: set(query(profile, 'probe_success{job="tls"}').values()) == {1}, 30)


def test_both_exporters_check_the_nodes_host_name(montls: Deployment) -> None:
    """By the node's service name the handshake succeeds; by its container address (not in its
    certificate) the very same flags and module fail: the host name is checked."""
    profile = montls.profile
    node = profile.data_nodes[0].service
    ip = _internal_ip(profile, node)
    blackbox = service(profile, "blackbox")
    found = {
        target: _metric(_http_get(blackbox, 9115, f"/probe?module=redis_tls&target={target}:6379"), "probe_success")
        for target in (node, ip)
    }
    assert found == {node: 1.0, ip: 0.0}
    exporter = service(profile, exporter_service(node))
    command = exporter.attrs["Config"]["Cmd"][-1]
    redis_up = {}
    for port, host in ((9122, node), (9123, ip)):
        # The deployed command, on another port, against `host` and for a few seconds, in the exporter's container.
        one_off = command.replace(f"rediss://{node}:", f"rediss://{host}:").replace(":9121", f"127.0.0.1:{port}")
        one_off = one_off.replace("exec prometheus-redis-exporter", "timeout 5 prometheus-redis-exporter")
        assert f"rediss://{host}:6379" in one_off and f"127.0.0.1:{port}" in one_off and "timeout 5" in one_off
        text = _http_get(exporter, port, "/metrics", before=f"{one_off} >/dev/null 2>&1 & sleep 1; ")
        redis_up[host] = _metric(text, "redis_up")
    assert redis_up == {node: 1.0, ip: 0.0}


def test_a_short_lived_certificate_fires_redis_cert_expiring_soon(montls: Deployment, capsys: Any) -> None:
    profile = montls.profile
    rule = next(r for r in alert_rules(profile) if r.name == "RedisCertExpiringSoon")
    assert rule.threshold == profile.tls.renew_before_s / 86400
    assert not firing(profile, "RedisCertExpiringSoon")
    short = _load_short_lived(montls, profile.data_nodes[0].service, days=2)
    interval = profile.monitoring.scrape_interval_s
    took = wait_for("RedisCertExpiringSoon firing", lambda: firing(profile, rule.name), rule.for_s + 4 * interval)
    node = profile.data_nodes[0].service
    assert query(profile, 'probe_ssl_earliest_cert_expiry{job="tls"}')[node] == short.not_after.timestamp()
    alert = next(a for a in api(profile, "/api/v1/alerts")["data"]["alerts"] if a["labels"]["alertname"] == rule.name)
    assert alert["labels"]["node"] == node and alert["annotations"]["threshold"] == rule.threshold_text
    with capsys.disabled():
        print(f"\n[monitoring] RedisCertExpiringSoon firing {took:.1f} s after a 2-day certificate was loaded")
