"""The monitor's arithmetic and alert conditions on readings built by hand (no containers)."""

from __future__ import annotations

from typing import Any

import pytest
import redis
import yaml

from redis_harness.errors import BadInput
from redis_harness.monitor.alerts import ALERT_NAMES, FiringSince, evaluate
from redis_harness.monitor.figures import (
    Reading,
    TtlSample,
    clients_per_user,
    deployment_figures,
    keyspace_counts,
    slow_entries,
    ttl_sample,
)
from redis_harness.profile.credentials import load_secrets
from redis_harness.profile.model import load_profile
from redis_harness.render.files import render_files
from redis_harness.render.monitoring import alert_rules

from .conftest import generated_env, variant_profile

ALERTS = load_profile("ci").alerts  # miss 0.20, memory 0.80, slow update 0.1 s, evictions 100/s, no TTL 0.5
MAXMEMORY = 1_000_000


def reading(t: float, service: str = "redis", **info: Any) -> Reading:
    base = {
        "role": "master",
        "maxmemory": MAXMEMORY,
        "used_memory": 0,
        "maxmemory_policy": "volatile-lru",
        "total_commands_processed": 0,
        "keyspace_hits": 0,
        "keyspace_misses": 0,
        "evicted_keys": 0,
        "expired_keys": 0,
        "rejected_connections": 0,
        "connected_clients": 1,
        "blocked_clients": 0,
    }
    return Reading(service=service, port=6570, t=t, up=True, info=base | info)


def figures_between(before: dict[str, Any], after: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Figures over a 1 s interval between two readings of one node."""
    now = reading(11.0, **after)
    for name, value in extra.items():
        setattr(now, name, value)
    return deployment_figures([now], [reading(10.0, **before)])


def state(figures: dict[str, Any], name: str) -> Any:
    return next(s for s in evaluate(figures, ALERTS) if s.name == name)


def test_every_alert_is_judged() -> None:
    assert [s.name for s in evaluate(figures_between({}, {}), ALERTS)] == list(ALERT_NAMES)
    assert not any(s.firing for s in evaluate(figures_between({}, {}), ALERTS))


@pytest.mark.parametrize(("misses", "firing"), [(20, False), (21, True), (0, False)])
def test_miss_ratio_fires_only_above_its_threshold(misses: int, firing: bool) -> None:
    figures = figures_between({}, {"keyspace_hits": 100 - misses, "keyspace_misses": misses})
    assert figures["miss_ratio"] == pytest.approx(misses / 100)
    assert state(figures, "miss_ratio").firing is firing


def test_miss_ratio_is_not_judged_without_lookups() -> None:
    figures = figures_between({"keyspace_hits": 5}, {"keyspace_hits": 5})
    assert figures["miss_ratio"] is None
    assert state(figures, "miss_ratio").firing is False


def test_miss_ratio_counts_only_the_last_interval() -> None:
    # 1,000 misses long ago, 100 hits in the interval: the interval's miss ratio is 0.
    figures = figures_between({"keyspace_misses": 1000}, {"keyspace_hits": 100, "keyspace_misses": 1000})
    assert figures["miss_ratio"] == 0
    assert not state(figures, "miss_ratio").firing


@pytest.mark.parametrize(("used", "firing"), [(800_000, False), (800_001, True)])
def test_memory_fires_only_above_its_share_of_maxmemory(used: int, firing: bool) -> None:
    figures = figures_between({}, {"used_memory": used})
    assert state(figures, "memory").firing is firing
    assert state(figures, "memory").value == pytest.approx(used / MAXMEMORY)


def test_memory_judges_the_fullest_node() -> None:
    nodes = [reading(11.0, "redis-0", used_memory=100), reading(11.0, "redis-1", used_memory=900_000, role="slave")]
    figures = deployment_figures(nodes, [reading(10.0, "redis-0"), reading(10.0, "redis-1")])
    assert figures["memory"]["node"] == "redis-1"
    assert state(figures, "memory").firing


@pytest.mark.parametrize(("evicted", "firing"), [(100, False), (101, True)])
def test_evictions_fire_above_the_rate(evicted: int, firing: bool) -> None:
    figures = figures_between({"evicted_keys": 50}, {"evicted_keys": 50 + evicted})
    assert figures["evictions_per_s"] == pytest.approx(evicted)
    assert state(figures, "evictions").firing is firing


def test_evictions_add_up_across_nodes() -> None:
    before = [reading(10.0, "redis-0"), reading(10.0, "redis-1")]
    now = [reading(11.0, "redis-0", evicted_keys=60), reading(11.0, "redis-1", evicted_keys=60)]
    assert state(deployment_figures(now, before), "evictions").firing


def slow(duration_us: int, command: str, start: float) -> dict[str, Any]:
    return {"duration": duration_us, "command": command.encode(), "start_time": start}


WRITES = frozenset({"set", "hset"})


@pytest.mark.parametrize(("duration_us", "firing"), [(100_000, False), (100_001, True)])
def test_slow_updates_fire_above_the_threshold(duration_us: int, firing: bool) -> None:
    entries = slow_entries([slow(duration_us, "SET k v", 10.5)], WRITES)
    figures = figures_between({}, {}, slowlog=entries)
    assert state(figures, "slow_updates").firing is firing


def test_slow_reads_and_old_updates_are_not_slow_updates() -> None:
    entries = slow_entries([slow(900_000, "GET k", 10.5), slow(900_000, "HSET h f v", 11.0 - 61)], WRITES)
    figures = figures_between({}, {}, slowlog=entries)
    assert figures["slowest"][0]["duration_s"] == 0.9  # still shown
    assert not state(figures, "slow_updates").firing
    transaction = slow_entries([slow(200_000, "EXEC", 10.9)], WRITES)
    assert state(figures_between({}, {}, slowlog=transaction), "slow_updates").firing


def ttl(keys: int, without: int) -> TtlSample:
    return TtlSample(keys=keys, keys_without_ttl=without, sampled=10, sampled_bytes=1000, sampled_bytes_without_ttl=0)


@pytest.mark.parametrize(("without", "firing"), [(50, False), (51, True)])
def test_keys_without_ttl_fire_above_their_share_under_volatile(without: int, firing: bool) -> None:
    figures = figures_between({}, {}, ttl=ttl(100, without))
    assert figures["keys_without_ttl_ratio"] == pytest.approx(without / 100)
    assert state(figures, "keys_without_ttl").firing is firing


def test_keys_without_ttl_are_no_trap_when_every_key_may_be_evicted() -> None:
    figures = figures_between({}, {"maxmemory_policy": "allkeys-lru"}, ttl=ttl(100, 100))
    assert state(figures, "keys_without_ttl").value is None
    assert not state(figures, "keys_without_ttl").firing


def test_down_fires_when_a_node_does_not_answer() -> None:
    up = [reading(11.0, "redis-0"), reading(11.0, "redis-1")]
    assert not state(deployment_figures(up, None), "down").firing
    down = [up[0], Reading(service="redis-1", port=6571, t=11.0, up=False, error="container exited")]
    figures = deployment_figures(down, None)
    assert figures["nodes_down"] == ["redis-1"]
    assert state(figures, "down").firing and state(figures, "down").value == 1


def test_first_reading_has_no_rates_and_fires_nothing_on_them() -> None:
    figures = deployment_figures([reading(10.0, evicted_keys=10**6, keyspace_misses=10**6)], None)
    assert figures["evictions_per_s"] is None and figures["miss_ratio"] is None
    assert not any(s.firing for s in evaluate(figures, ALERTS))


def test_the_monitors_own_commands_and_lookups_are_taken_out() -> None:
    """600 commands and 200 TTL hits of the monitor's own key sample, nothing else: an idle interval."""
    own = {"total_commands_processed": 600, "keyspace_hits": 200, "keyspace_misses": 0}
    after = {"total_commands_processed": 600, "keyspace_hits": 200}
    figures = figures_between({}, after, own=own)
    assert figures["ops_per_s"] == 0 and figures["hit_ratio"] is None and figures["miss_ratio"] is None
    # Broken variant: nothing subtracted, the monitor reads its own sample as traffic and hits.
    self_counted = figures_between({}, after, own=None)
    assert self_counted["ops_per_s"] == 600 and self_counted["hit_ratio"] == 1.0


def test_an_all_miss_client_keeps_its_miss_ratio_beside_the_monitors_sample() -> None:
    own = {"total_commands_processed": 600, "keyspace_hits": 200, "keyspace_misses": 0}
    after = {"total_commands_processed": 696, "keyspace_hits": 200, "keyspace_misses": 96}
    assert figures_between({}, after, own=own)["miss_ratio"] == 1.0
    assert figures_between({}, after, own=None)["miss_ratio"] == pytest.approx(0.324, abs=0.001)  # as the issue saw


def test_ttl_sample_counts_what_its_lookups_did_to_the_counters() -> None:
    """TTL looks a key up (a hit, or a miss when it is gone: -2); an error reply looked nothing up."""
    error = redis.ResponseError("WRONGTYPE")
    sample, counted = ttl_sample(10, 4, ttls=[-1, 3600, -2, error], sizes=[100, 50, None, 10])
    assert counted == {"keyspace_hits": 2, "keyspace_misses": 1}
    assert (sample.keys, sample.keys_without_ttl, sample.sampled, sample.sampled_bytes) == (10, 6, 2, 150)
    assert sample.sampled_bytes_without_ttl == 100


def test_clients_are_counted_per_acl_user_with_blocked_ones() -> None:
    listing = [
        {"user": "price", "flags": "N"},
        {"user": "price", "flags": "b"},
        {"user": "admin", "flags": "N"},
    ]
    assert clients_per_user(listing) == {
        "admin": {"connected": 1, "blocked": 0},
        "price": {"connected": 2, "blocked": 1},
    }


def test_keyspace_counts_add_every_database() -> None:
    info = {"db0": {"keys": 10, "expires": 4}, "db3": {"keys": 5, "expires": 5}, "dbsize_note": 1}
    assert keyspace_counts(info) == (15, 9)


def test_firing_since_counts_from_the_first_firing_refresh() -> None:
    since = FiringSince()
    firing = evaluate(figures_between({}, {"used_memory": 900_000}), ALERTS)
    ok = evaluate(figures_between({}, {}), ALERTS)
    assert since.update(firing, 100.0)["memory"] == 0
    assert since.update(firing, 103.0)["memory"] == 3
    assert since.update(ok, 104.0)["memory"] is None
    assert since.update(firing, 110.0)["memory"] == 0


# --------------------------------------------------------------------------- the rendered monitoring stack


def rendered(tmp_path: Any, **monitoring: Any) -> dict[str, str]:
    profile = variant_profile("ci", tmp_path, "monrender", monitoring=monitoring) if monitoring else load_profile("ci")
    return render_files(profile, load_secrets(profile, env=generated_env()))


def test_monitoring_is_off_unless_enabled(tmp_path: Any) -> None:
    files = rendered(tmp_path)
    assert set(files) == {"docker-compose.yml", "redis.conf", "users.acl"}
    assert "include:" not in files["docker-compose.yml"] and "user exporter" not in files["users.acl"]


def test_enabled_monitoring_renders_the_stack_hardened_and_loopback_only(tmp_path: Any) -> None:
    files = rendered(tmp_path, enabled=True, prometheus_port=6590, alertmanager_port=6591)
    # One self-contained compose file: the monitoring services are merged into it.
    assert "monitoring.yml" not in files
    stack = yaml.safe_load(files["docker-compose.yml"])
    assert "include" not in stack
    monitoring = {k: v for k, v in stack["services"].items() if k != "redis"}
    assert set(monitoring) == {"exporter-redis", "prometheus", "alertmanager"}
    for service in monitoring.values():
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"] and service["user"] == "990:990"
        assert service["mem_limit"] and service["pids_limit"] and service["cpus"]
        assert all(port.startswith("127.0.0.1:") for port in service.get("ports", []))
    assert "ports" not in stack["services"]["exporter-redis"]
    assert stack["services"]["exporter-redis"]["networks"] == ["internal"]
    assert stack["networks"]["internal"]["internal"] is True
    exporter = next(line for line in files["users.acl"].splitlines() if line.startswith("user exporter "))
    assert "~" not in exporter and "&" not in exporter and "+@all" not in exporter
    rules = yaml.safe_load(files["rules.yml"])["groups"][0]["rules"]
    assert [r["alert"] for r in rules] == [
        "RedisDown",
        "RedisMissRatioHigh",
        "RedisMemoryHigh",
        "RedisSlowUpdates",
        "RedisEvictionsFrequent",
        "RedisKeysWithoutTtl",
    ]


def test_keys_without_ttl_rule_only_under_a_volatile_policy(tmp_path: Any) -> None:
    allkeys = variant_profile(
        "ci", tmp_path, "monallkeys", memory={"policy": "allkeys-lru"}, monitoring={"enabled": True}
    )
    assert "RedisKeysWithoutTtl" not in [r.name for r in alert_rules(allkeys)]


def test_monitoring_ports_must_not_clash(tmp_path: Any) -> None:
    with pytest.raises(BadInput, match="monitoring.prometheus_port"):
        variant_profile("ci", tmp_path, "monclash", monitoring={"enabled": True, "prometheus_port": 6381})
    with pytest.raises(BadInput, match="monitoring.alertmanager_port"):
        variant_profile("ci", tmp_path, "monclash2", monitoring={"prometheus_port": 9100, "alertmanager_port": 9100})


# --------------------------------------------------------------------------- monitoring over TLS


def tls_rendered(tmp_path: Any, base: str = "ci", **tls: Any) -> tuple[Any, dict[str, str], Any]:
    """(profile, rendered files, secrets) of `base` with TLS on (client certificates required unless `tls`
    says otherwise) and monitoring on."""
    tls = {"enabled": True, "client_auth": "required", **tls}
    profile = variant_profile(base, tmp_path, "montls", security={"tls": tls}, monitoring={"enabled": True})
    secrets = load_secrets(profile, env=generated_env())
    return profile, render_files(profile, secrets), secrets


def leaks(text: str, secret_values: list[str]) -> list[str]:
    """The secret values (passwords, or any PEM private key) found in a rendered text."""
    found = [value for value in secret_values if value in text]
    return found + (["a private key"] if "PRIVATE KEY" in text else [])


@pytest.mark.parametrize("client_auth", ["required", "optional", "none"])
def test_tls_exporters_speak_tls_checking_the_nodes_name_with_no_secret_on_a_command_line(
    tmp_path: Any, client_auth: str
) -> None:
    profile, files, secrets = tls_rendered(tmp_path, client_auth=client_auth)
    stack = yaml.safe_load(files["docker-compose.yml"])
    exporter = stack["services"]["exporter-redis"]
    command = exporter["command"][-1]
    assert " -redis.addr=rediss://redis:6379 " in command  # the service name: the certificate's name
    assert " -tls-ca-cert-file=/run/secrets/tls-ca.crt " in command
    assert "skip-tls-verification" not in command
    client = " -tls-client-cert-file=/run/secrets/tls-client.crt -tls-client-key-file=/run/secrets/tls-client.key"
    assert (client in command) == (client_auth != "none")
    mounted = {m if isinstance(m, str) else m["source"] for m in exporter["secrets"]}
    pair = {"tls-client-exporter.crt", "tls-client-exporter.key"} if client_auth != "none" else set()
    assert mounted == {"exporter", "tls-ca.crt"} | pair
    values = [secrets.derived("exporter"), secrets.admin.password, secrets.healthcheck_password]
    assert leaks(files["docker-compose.yml"], values) == []
    # The same check on a broken variant: the password written into the command.
    broken = files["docker-compose.yml"].replace("$(cat /run/secrets/exporter)", secrets.derived("exporter"))
    assert leaks(broken, values) == [secrets.derived("exporter")]
    # TLS off: the exporters stay on plain redis:// and no blackbox is rendered.
    plain = rendered(tmp_path, enabled=True)
    assert "-redis.addr=redis://redis:6379 " in plain["docker-compose.yml"] and "blackbox.yml" not in plain


def test_tls_monitoring_probes_every_node_through_a_hardened_blackbox(tmp_path: Any) -> None:
    profile, files, _ = tls_rendered(tmp_path, base="ha")
    stack = yaml.safe_load(files["docker-compose.yml"])
    blackbox = stack["services"]["blackbox"]
    assert blackbox["read_only"] is True and blackbox["cap_drop"] == ["ALL"] and blackbox["user"] == "990:990"
    assert blackbox["networks"] == ["internal"] and "ports" not in blackbox
    assert blackbox["secrets"] == [
        "tls-ca.crt",
        {"source": "tls-client-exporter.crt", "target": "tls-client.crt"},
        {"source": "tls-client-exporter.key", "target": "tls-client.key"},
    ]
    module = yaml.safe_load(files["blackbox.yml"])["modules"]["redis_tls"]
    assert module["prober"] == "tcp" and module["tcp"]["tls"] is True
    # No server_name: blackbox checks the probe's target host (the node's service name); no skipped check.
    assert module["tcp"]["tls_config"] == {
        "ca_file": "/run/secrets/tls-ca.crt",
        "cert_file": "/run/secrets/tls-client.crt",
        "key_file": "/run/secrets/tls-client.key",
    }
    job = next(j for j in yaml.safe_load(files["prometheus.yml"])["scrape_configs"] if j["job_name"] == "tls")
    probed = {c["labels"]["node"]: c["targets"] for c in job["static_configs"]}
    data = {n.service: [f"{n.service}:6379"] for n in profile.data_nodes}
    assert probed == data | {n.service: [f"{n.service}:26379"] for n in profile.sentinel_nodes}
    assert len(probed) == 6 and job["params"] == {"module": ["redis_tls"]} and job["metrics_path"] == "/probe"
    assert job["relabel_configs"][-1] == {"target_label": "__address__", "replacement": "blackbox:9115"}
    _, none_files, _ = tls_rendered(tmp_path, base="ha", client_auth="none")
    assert "cert_file" not in yaml.safe_load(none_files["blackbox.yml"])["modules"]["redis_tls"]["tcp"]["tls_config"]


@pytest.mark.parametrize(("renew_before", "days"), [("30d", "30"), ("10d", "10"), ("36h", "1.5")])
def test_cert_expiry_rule_uses_renew_before(tmp_path: Any, renew_before: str, days: str) -> None:
    _, files, _ = tls_rendered(tmp_path, renew_before=renew_before)
    rules = {r["alert"]: r for r in yaml.safe_load(files["rules.yml"])["groups"][0]["rules"]}
    rule = rules["RedisCertExpiringSoon"]
    assert rule["expr"] == f'(probe_ssl_earliest_cert_expiry{{job="tls"}} - time()) / 86400 <= {days}'
    assert rule["annotations"]["threshold"] == days and rule["labels"]["monitor_name"] == "cert_expiry"
    assert rules["RedisTlsHandshakeFailing"]["expr"] == 'probe_success{job="tls"} == 0 or up{job="tls"} == 0'
    assert "RedisCertExpiringSoon" not in rules_of(rendered(tmp_path, enabled=True))


def rules_of(files: dict[str, str]) -> set[str]:
    return {r["alert"] for r in yaml.safe_load(files["rules.yml"])["groups"][0]["rules"]}


def test_a_changed_rule_changes_the_definition_of_what_reads_it_only(tmp_path: Any) -> None:
    """Prometheus reads rules.yml at start: a new threshold must change its service definition (so `up`
    makes it again), and leave the Redis nodes', the exporters' and Alertmanager's as they were."""

    def services(memory_ratio: float, name: str) -> dict:
        (tmp_path / name).mkdir()
        profile = variant_profile(
            "dev", tmp_path / name, "digest", monitoring={"enabled": True}, alerts={"memory_ratio": memory_ratio}
        )
        files = render_files(profile, load_secrets(profile, env=generated_env()))
        return yaml.safe_load(files["docker-compose.yml"])["services"]

    before, after = services(0.80, "a"), services(0.85, "b")
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"prometheus"}, changed
    label = "io.redis-harness.config-digest"
    assert before["prometheus"]["labels"][label] != after["prometheus"]["labels"][label]
    assert label in before["alertmanager"]["labels"] and label not in before["redis"]["labels"]
