"""The profile's alert conditions judged on a deployment's figures: which fire, at what value, since when.

The same conditions become Prometheus rules (monitor/rules.py), so `monitor`
and Alertmanager warn about the same things at the same thresholds. With
security.tls, `cert_expiry` fires once the soonest certificate a node serves
expires within renew_before: the moment `up` would renew it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis_harness.profile.model import Alerts

ALERT_NAMES = ("miss_ratio", "memory", "slow_updates", "evictions", "keys_without_ttl", "down")
CERT_ALERT = "cert_expiry"  # judged only with security.tls on


@dataclass(frozen=True)
class AlertState:
    name: str
    firing: bool
    value: float | None  # None: nothing to judge yet (no lookups in the interval, policy not volatile-*)
    threshold: float
    meaning: str
    comparison: str = ">"  # how value and threshold compare when it fires
    # False: the monitor's user may not run what the condition reads (a target without its admin).
    available: bool = True

    def as_json(self) -> dict[str, Any]:
        shown = {"name": self.name, "firing": self.firing, "value": self.value, "threshold": self.threshold}
        return shown if self.available else {**shown, "available": False}


# What each condition reads; a condition whose command the monitor's user may not run is not available.
NEEDS = {
    "miss_ratio": "info",
    "memory": "info",
    "evictions": "info",
    "keys_without_ttl": "info",
    "slow_updates": "slowlog",
}


def _above(name: str, value: float | None, threshold: float, meaning: str) -> AlertState:
    return AlertState(name, value is not None and value > threshold, value, threshold, meaning)


def cert_expiry_state(figures: dict[str, Any], renew_before_s: float) -> AlertState:
    """Fires when the soonest served certificate has renew_before or less left (None: none could be read)."""
    expiry = figures.get("cert_expiry") or {}
    days, threshold = expiry.get("days"), renew_before_s / 86400
    meaning = "days until the soonest certificate a node serves expires; `up` renews it"
    return AlertState(CERT_ALERT, days is not None and days <= threshold, days, threshold, meaning, "<=")


def evaluate(figures: dict[str, Any], alerts: Alerts, renew_before_s: float | None = None) -> list[AlertState]:
    """Each alert condition of the profile against the figures of one interval.

    A condition fires when its value is strictly above its threshold, as the
    load-run gates judge them; `down` fires when any data node does not answer;
    with `renew_before_s` (TLS on) `cert_expiry` fires at or below it."""
    volatile = str(figures.get("policy") or "").startswith("volatile-")
    denied = set(figures.get("not_available") or ())
    states = [
        _above("miss_ratio", figures.get("miss_ratio"), alerts.miss_ratio, "share of lookups that missed"),
        _above("memory", figures["memory"].get("ratio"), alerts.memory_ratio, "used_memory / maxmemory, fullest node"),
        _above(
            "slow_updates",
            figures.get("slowest_recent_update_s"),
            alerts.slow_update_s,
            "slowest update (SLOWLOG) in the last minute, seconds",
        ),
        _above("evictions", figures.get("evictions_per_s"), alerts.evictions_per_s, "keys evicted per second"),
        _above(
            "keys_without_ttl",
            figures.get("keys_without_ttl_ratio") if volatile else None,
            alerts.keys_without_ttl_ratio,
            "share of keys without a TTL, which a volatile-* policy can never evict",
        ),
        _above("down", float(len(figures.get("nodes_down") or [])), 0, "data nodes that do not answer"),
    ]
    if renew_before_s is not None:
        states.append(cert_expiry_state(figures, renew_before_s))
    return [
        AlertState(s.name, False, None, s.threshold, s.meaning, available=False) if NEEDS.get(s.name) in denied else s
        for s in states
    ]


class FiringSince:
    """Remembers when each alert started firing, across the live view's refreshes."""

    def __init__(self) -> None:
        self._since: dict[str, float] = {}

    def update(self, states: list[AlertState], now: float) -> dict[str, float | None]:
        """Seconds each alert has been firing (None when it is ok)."""
        durations: dict[str, float | None] = {}
        for state in states:
            if state.firing:
                started = self._since.setdefault(state.name, now)
                durations[state.name] = now - started
            else:
                self._since.pop(state.name, None)
                durations[state.name] = None
        return durations
