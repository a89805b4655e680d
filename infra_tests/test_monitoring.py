"""Monitoring (monitoring.enabled): every exporter scraped, the profile's rules loaded, the containers hardened;
with TLS, every node's TLS probe succeeding (the certificate expiry Prometheus alerts on is read).

Deployment-wide, so checked once, with the first data node; not collected when
the profile has no monitoring. Prometheus is asked over its loopback port, as a
user would; the containers are read with `docker inspect`.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from typing import Any

import pytest

from redis_harness.deploy.containers import project_containers
from redis_harness.profile.model import Profile
from redis_harness.render.monitoring import (
    BLACKBOX_SERVICE,
    TLS_JOB,
    alert_rules,
    exporter_service,
    threshold_literal,
    tls_probe_targets,
)
from redis_harness.verify.check import Check

MONITORING_ROLES = ("exporter", "blackbox", "prometheus", "alertmanager")
ROLE_LABEL = "io.redis-harness.role"
# A fresh Prometheus has not scraped yet: give it a few scrape intervals before judging.
FIRST_SCRAPES = 4


pytestmark = [pytest.mark.deployment_wide, pytest.mark.needs("monitoring")]


def prometheus(profile: Profile, path: str) -> Any:
    url = f"http://{profile.network.host}:{profile.monitoring.prometheus_port}{path}"
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - loopback URL built from the profile
        return json.load(answer)["data"]


def target_health(profile: Profile) -> dict[str, str]:
    """Exporter target (by the node it watches) -> up | down | unknown."""
    targets = prometheus(profile, "/api/v1/targets?state=active")["activeTargets"]
    return {t["labels"].get("node", t["scrapeUrl"]): t["health"] for t in targets if t["labels"].get("job") == "redis"}


def test_every_exporter_target_up(profile: Profile, check: Check) -> None:
    expected = {n.service: "up" for n in profile.data_nodes}
    deadline = time.monotonic() + FIRST_SCRAPES * profile.monitoring.scrape_interval_s
    found = target_health(profile)
    while found != expected and "unknown" in found.values() and time.monotonic() < deadline:
        time.sleep(1)
        found = target_health(profile)
    check.equal(expected, found)


def probe_results(profile: Profile) -> dict[str, float]:
    """Node -> probe_success of its latest TLS probe (1 a good handshake, 0 a failed one)."""
    query = urllib.parse.urlencode({"query": f'probe_success{{job="{TLS_JOB}"}}'})
    result = prometheus(profile, f"/api/v1/query?{query}")["result"]
    return {r["metric"].get("node", r["metric"].get("instance", "")): float(r["value"][1]) for r in result}


@pytest.mark.needs("tls")
def test_every_tls_probe_succeeds(profile: Profile, check: Check) -> None:
    """The blackbox_exporter's handshake with every node and Sentinel, by its service name, succeeds."""
    expected = {service: 1.0 for service, _ in tls_probe_targets(profile)}
    deadline = time.monotonic() + FIRST_SCRAPES * profile.monitoring.scrape_interval_s
    found = probe_results(profile)
    while found != expected and len(found) < len(expected) and time.monotonic() < deadline:
        time.sleep(1)
        found = probe_results(profile)
    check.equal(expected, found)


def loaded_rules(profile: Profile) -> dict[str, dict[str, Any]]:
    groups = prometheus(profile, "/api/v1/rules?type=alert")["groups"]
    return {rule["name"]: rule for group in groups for rule in group["rules"]}


def test_loaded_rules_are_the_profiles(profile: Profile, check: Check) -> None:
    """Names, `for`, the threshold annotation, and the threshold in the query Prometheus runs."""
    rules = {r.name: r for r in alert_rules(profile)}
    expected = {
        r.name: {"for_s": r.for_s, "threshold": r.threshold_text, "query": threshold_literal(r)} for r in rules.values()
    }
    found = {}
    for name, rule in loaded_rules(profile).items():
        literal = threshold_literal(rules[name]) if name in rules else None
        found[name] = {
            "for_s": int(rule["duration"]),
            "threshold": rule["annotations"].get("threshold"),
            # The threshold as the query compares with it; the whole query when it is not there.
            "query": literal if literal and literal in rule["query"] else rule["query"],
        }
    check.equal(expected, found)


def hardening(container: Any) -> dict[str, Any]:
    host = container.attrs["HostConfig"]
    published = {
        f"{b.get('HostIp')}:{b.get('HostPort')}"
        for bindings in (container.attrs["NetworkSettings"]["Ports"] or {}).values()
        for b in bindings or []
    }
    return {
        "non_root": container.attrs["Config"].get("User", "") not in ("", "0", "root", "0:0"),
        "read_only_root": bool(host.get("ReadonlyRootfs")),
        "cap_drop_all": host.get("CapDrop") == ["ALL"] and not host.get("CapAdd"),
        "no_new_privileges": "no-new-privileges:true" in (host.get("SecurityOpt") or []),
        "not_privileged": not host.get("Privileged"),
        "limits": bool(host.get("Memory")) and bool(host.get("NanoCpus")) and bool(host.get("PidsLimit")),
        "loopback_only": all(p.startswith("127.") for p in published),
    }


def test_monitoring_containers_hardened(profile: Profile, check: Check) -> None:
    """Non-root, read-only root, no capabilities, no new privileges, limits, loopback-only ports."""
    monitoring = [c for c in project_containers(profile) if c.labels.get(ROLE_LABEL) in MONITORING_ROLES]
    names = sorted(c.labels.get("com.docker.compose.service") for c in monitoring)
    blackbox = [BLACKBOX_SERVICE] if profile.tls.enabled else []  # the TLS probes (certificate expiry)
    expected_names = sorted(
        [exporter_service(n.service) for n in profile.data_nodes] + ["alertmanager", "prometheus", *blackbox]
    )
    hardened = dict.fromkeys(hardening(monitoring[0]) if monitoring else (), True)
    expected = {name: hardened for name in expected_names}
    found = {c.labels.get("com.docker.compose.service"): hardening(c) for c in monitoring}
    check.equal(expected, dict(sorted(found.items())) if names == expected_names else found)


def test_prometheus_data_on_a_named_volume(profile: Profile, check: Check) -> None:
    container = next(c for c in project_containers(profile) if c.labels.get(ROLE_LABEL) == "prometheus")
    mounts = {m["Destination"]: m.get("Type") for m in container.attrs["Mounts"]}
    check.equal("volume", mounts.get("/prometheus"))
