"""The Prometheus alerts that fired during a load run (monitoring.enabled), beside the run's own gates.

Prometheus keeps every alert's state as the ALERTS series; a range query over
the run's window lists each alert that was firing at some point, with when.
An alert whose condition starts near the end of the run fires only after its
`for`, so the window reaches that long (plus two scrape intervals) past the
run's end, and the run waits for it.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from typing import Any

from redis_harness import progress
from redis_harness.profile.model import Profile


def grace_s(profile: Profile) -> float:
    """How long after a run an alert it caused can still start firing."""
    return profile.monitoring.alert_for_s + 2 * profile.monitoring.scrape_interval_s


def firing_during(profile: Profile, started: float, ended: float) -> list[dict[str, Any]] | None:
    """Alerts firing in [started, ended + grace]: name, node (if any), first and last seen (s after the start).

    Waits until the window has passed. None when Prometheus cannot be asked (then the report says so)."""
    until = ended + grace_s(profile)
    while (left := until - time.time()) > 0:
        progress.note(f"waiting {left:.0f} s for alerts the run may still cause (alert_for + 2 scrapes)")
        time.sleep(min(1.0, left))
    step = max(1.0, profile.monitoring.scrape_interval_s)
    query = urllib.parse.urlencode(
        {"query": 'ALERTS{alertstate="firing"}', "start": f"{started:.3f}", "end": f"{until:.3f}", "step": f"{step:g}"}
    )
    url = f"http://{profile.network.host}:{profile.monitoring.prometheus_port}/api/v1/query_range?{query}"
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - loopback URL from the profile
            series = json.load(answer)["data"]["result"]
    except (OSError, ValueError, KeyError):
        return None
    fired = []
    for s in series:
        times = [float(t) for t, _ in s["values"]]
        fired.append(
            {
                "name": s["metric"]["alertname"],
                "node": s["metric"].get("node"),
                "first_s": round(min(times) - started, 1),
                "last_s": round(max(times) - started, 1),
            }
        )
    return sorted(fired, key=lambda a: (a["first_s"], a["name"]))
