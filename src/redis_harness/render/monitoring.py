"""Prometheus alert rules from the profile's alerts: the same conditions `redis-harness monitor` judges.

One list, read by the rules template (templates/monitoring/rules.yml.j2), by
verify (the rules Prometheus loaded must be exactly these) and by `monitor`
(its alert names map to these). The queries use redis_exporter 1.45's metrics and, with
security.tls on, blackbox_exporter 0.23's TLS probes of every node (certificate expiry).
"""

from __future__ import annotations

from dataclasses import dataclass

from redis_harness.profile.model import Profile

EXPORTER_PORT = 9121
PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093
BLACKBOX_PORT = 9115
BLACKBOX_SERVICE = "blackbox"  # probes every node's TLS port with security.tls on
TLS_JOB = "tls"  # the Prometheus job of those probes
TLS_MODULE = "redis_tls"  # blackbox.yml's module: a TLS handshake, the host name checked against the certificate
SENTINEL_PORT = 26379  # a Sentinel's port inside the deployment (sentinel.conf.j2)


@dataclass(frozen=True)
class AlertRule:
    name: str  # Prometheus alert name
    monitor_name: str  # the same condition's name in `monitor --json`
    expr: str
    threshold: float
    for_s: int
    summary: str
    comparison: str = ">"  # how the query compares with the threshold when it fires

    @property
    def threshold_text(self) -> str:
        return _number(self.threshold)


def _number(value: float) -> str:
    """A threshold as PromQL prints it: no trailing zeros, no exponent for everyday values."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text or "0"


def threshold_literal(rule: AlertRule) -> str:
    """The comparison with the threshold inside the rule's query, as Prometheus prints it back."""
    return f"{rule.comparison} {_number(rule.threshold)}"


def rate_window_s(profile: Profile) -> int:
    """rate() needs at least two samples in its window; four scrapes and never less than a minute."""
    return max(60, int(4 * profile.monitoring.scrape_interval_s))


def exporter_service(node_service: str) -> str:
    return f"exporter-{node_service}"


def tls_probe_targets(profile: Profile) -> list[tuple[str, str]]:
    """(node service, host:port) the blackbox_exporter shakes hands with: every data node and Sentinel, by
    the service name their certificates carry (empty with TLS off)."""
    if not profile.tls.enabled:
        return []
    data = [(n.service, f"{n.service}:{profile.network.container_port}") for n in profile.data_nodes]
    return data + [(n.service, f"{n.service}:{SENTINEL_PORT}") for n in profile.sentinel_nodes]


def _tls_rules(profile: Profile, for_s: int) -> list[AlertRule]:
    """With TLS on: a served certificate within renew_before of its end (when `up` would renew it, and
    `monitor`'s cert_expiry fires), and a node whose TLS handshake fails (monitor lists it as unreadable)."""
    if not profile.tls.enabled:
        return []
    days = profile.tls.renew_before_s / 86400
    return [
        AlertRule(
            "RedisCertExpiringSoon",
            "cert_expiry",
            f'(probe_ssl_earliest_cert_expiry{{job="{TLS_JOB}"}} - time()) / 86400 <= {_number(days)}',
            days,
            for_s,
            "A node serves a certificate within renew_before (days) of its end; `up` renews it",
            "<=",
        ),
        AlertRule(
            "RedisTlsHandshakeFailing",
            "cert_expiry",
            f'probe_success{{job="{TLS_JOB}"}} == 0 or up{{job="{TLS_JOB}"}} == 0',
            0,
            for_s,
            "A node's TLS handshake fails (or the blackbox_exporter does not answer)",
            "==",
        ),
    ]


def alert_rules(profile: Profile) -> list[AlertRule]:
    alerts = profile.alerts
    window = f"{rate_window_s(profile)}s"
    for_s = int(profile.monitoring.alert_for_s)
    hits = f"sum(rate(redis_keyspace_hits_total[{window}]))"
    misses = f"sum(rate(redis_keyspace_misses_total[{window}]))"
    rules = [
        AlertRule(
            "RedisDown",
            "down",
            'up{job="redis"} == 0 or redis_up == 0',
            0,
            for_s,
            "A data node (or its exporter) does not answer",
            "==",
        ),
        AlertRule(
            "RedisMissRatioHigh",
            "miss_ratio",
            f"{misses} / ({hits} + {misses}) > {_number(alerts.miss_ratio)}",
            alerts.miss_ratio,
            for_s,
            "More cache lookups miss than the profile allows",
        ),
        AlertRule(
            "RedisMemoryHigh",
            "memory",
            f"redis_memory_used_bytes / (redis_memory_max_bytes > 0) > {_number(alerts.memory_ratio)}",
            alerts.memory_ratio,
            for_s,
            "used_memory is close to maxmemory",
        ),
        # The slowlog keeps commands slower than alerts.slow_update (slowlog-log-slower-than is set
        # from it), so a new entry in the window is a slow command; the exporter cannot tell
        # updates from reads, so this is stricter than `monitor`, which counts updates only.
        AlertRule(
            "RedisSlowUpdates",
            "slow_updates",
            f"increase(redis_slowlog_last_id[{window}]) > 0 and "
            f"redis_last_slow_execution_duration_seconds > {_number(alerts.slow_update_s)}",
            alerts.slow_update_s,
            for_s,
            "Commands slower than the profile's slow_update",
        ),
        AlertRule(
            "RedisEvictionsFrequent",
            "evictions",
            f"sum(rate(redis_evicted_keys_total[{window}])) > {_number(alerts.evictions_per_s)}",
            alerts.evictions_per_s,
            for_s,
            "Keys are evicted faster than the profile allows",
        ),
    ]
    if profile.memory.policy.startswith("volatile-"):
        # Key counts from INFO keyspace; every node of a shard holds the same keys, so the share is
        # the same whether or not replicas are summed in.
        rules.append(
            AlertRule(
                "RedisKeysWithoutTtl",
                "keys_without_ttl",
                "(sum(redis_db_keys) - sum(redis_db_keys_expiring)) / (sum(redis_db_keys) > 0) > "
                f"{_number(alerts.keys_without_ttl_ratio)}",
                alerts.keys_without_ttl_ratio,
                for_s,
                f"Most keys have no TTL, which {profile.memory.policy} can never evict",
            )
        )
    return rules + _tls_rules(profile, for_s)
