"""A "Redis" tab in Locust's web UI: live charts, each gate's live state, server figures and µs percentiles.

Uses the UI's own extension points (extended_tabs / extended_tables in the
template args, extended_stats in /stats/requests), as in Locust's
extend_web_ui example. Locust's tabs hold tables only, so the charts and gate
states come from a small script of ours (/redis/tab.js, added to the UI's page)
that draws them above the tab's table from /redis/live, which serves numbers.
The start form's Host is the deployment's endpoint (the users connect there
whatever the field says).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from flask import Response, request

from redis_harness.deploy.connect import endpoint
from redis_harness.errors import HarnessError
from redis_harness.load.run import RUN_FILE
from redis_harness.load.sampler import with_rates
from redis_harness.profile.model import Alerts
from redis_harness.profile.units import format_size
from redis_harness.report.analysis import split_parts
from redis_harness.report.gates import GATES

TAB_KEY = "redis"
SERIES_POINTS = 300  # five minutes of once-a-second samples in the live charts
# Gates judged on figures that exist only once the run is over (survivors, the fault's
# outcome, the container's OOM flag): shown as "judged at the end" while it runs.
END_OF_RUN_GATES = frozenset(
    {"persistent_keys_survive", "acked_writes_kept", "recovery_window", "new_primary_elected", "evictions_seen",
     "oom_refusals_seen", "no_oom_kill"}
)  # fmt: skip
TAB_SCRIPT = Path(__file__).with_name("webui_tab.js")


def live_rows(run: Any) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    series = with_rates(run.sampler.series[-2:]) if run.sampler and run.sampler.series else []
    if series:
        last = series[-1]
        if not last.get("up"):
            rows.append({"metric": "server", "value": "NOT REACHABLE"})
        else:
            hit = last.get("hit_ratio")
            rows += [
                {"metric": "ops/s (server)", "value": f"{last.get('ops_per_s', 0):,.0f}"},
                {"metric": "hit ratio (server, last second)", "value": "-" if hit is None else f"{hit:.1%}"},
                {
                    "metric": "memory used / maxmemory",
                    "value": f"{format_size(last['used_memory'])} / {format_size(last['maxmemory'])} "
                    f"({last['used_memory'] / max(1, last['maxmemory']):.0%})",
                },
                {"metric": "evictions/s", "value": f"{last.get('evictions_per_s', 0):,.0f}"},
                {"metric": "evicted keys (total)", "value": f"{last.get('evicted_keys', 0):,}"},
                {"metric": "connected clients", "value": str(last.get("connected_clients"))},
            ]
            if last.get("container_memory") and last.get("container_memory_limit"):
                rows.append(
                    {
                        "metric": "container memory / limit",
                        "value": f"{format_size(last['container_memory'])} / "
                        f"{format_size(last['container_memory_limit'])}",
                    }
                )
    client_hit = run.total.hit_ratios().get("all")
    if client_hit is not None:
        rows.append({"metric": "hit ratio (client, whole run)", "value": f"{client_hit:.1%}"})
    requests, _ = split_parts(run.total.commands())  # a library call's parts are in report.html's cost table
    for name, summary in requests.items():
        rows.append(
            {
                "metric": f"{name}  p50 / p99 / max",
                "value": f"{summary['p50_us']:,} / {summary['p99_us']:,} / {summary['max_us']:,} µs"
                f"  ({summary['count']:,} calls, {summary['errors']:,} errors)",
            }
        )
    return rows


def _server_points(run: Any) -> list[dict[str, Any]]:
    return with_rates(run.sampler.series[-SERIES_POINTS - 1 :]) if run.sampler and run.sampler.series else []


def _p99_points(run: Any) -> list[dict[str, Any]]:
    """The worst p99 of any request in each latency point (µs), for the live p99 chart."""
    points = []
    for point in run.latency_series[-SERIES_POINTS:]:
        p99s = [v["p99_us"] for k, v in point.items() if k != "t" and not k.endswith("]")]
        if p99s:
            points.append({"t": point["t"], "p99_us": max(p99s)})
    return points


def _snapshot(run: Any) -> dict[str, Any]:
    """The gates and thresholds this run is judged by (run.json, written before Locust started)."""
    try:
        return json.loads((run.run_dir / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def live_report(run: Any) -> dict[str, Any]:
    """The figures the gates read, as far as the run has got."""
    commands, _ = split_parts(run.total.commands())
    up = [r for r in _server_points(run) if r.get("up")]
    first, last = (up[0], up[-1]) if up else ({}, {})
    hits = (last.get("keyspace_hits") or 0) - (first.get("keyspace_hits") or 0)
    misses = (last.get("keyspace_misses") or 0) - (first.get("keyspace_misses") or 0)
    events = dict(run.total.events.values)
    return {
        "commands": commands,
        "hit_ratio": {"client": run.total.hit_ratios(), "server": hits / (hits + misses) if hits + misses else None},
        "server": {
            "used_memory_max": max((r.get("used_memory") or 0 for r in up), default=0),
            "maxmemory": last.get("maxmemory") or 0,
            "evictions_per_s_max": max((r.get("evictions_per_s", 0) for r in up), default=0),
            "evicted_keys": max(0, (last.get("evicted_keys") or 0) - (first.get("evicted_keys") or 0)),
            "oom_errors": events.get("oom_errors", 0),
            "oom_killed": False,
        },
        "client": {"events": events},
        "faults": [],
        "findings": {},
    }


def live_gates(run: Any) -> list[dict[str, Any]]:
    """Each of the scenario's gates on the figures so far: passing, failing, or judged at the end."""
    snapshot = _snapshot(run)
    names, thresholds = snapshot.get("gates") or [], snapshot.get("thresholds")
    if not names or not thresholds:
        return []
    alerts = Alerts(**thresholds)
    report = live_report(run)
    states = []
    for name in names:
        if name in END_OF_RUN_GATES or name not in GATES:
            states.append({"name": name, "state": "at the end", "value": None, "threshold": None, "detail": ""})
            continue
        try:
            gate = GATES[name](report, alerts)
        except (KeyError, ZeroDivisionError, TypeError):
            states.append({"name": name, "state": "no data yet", "value": None, "threshold": None, "detail": ""})
            continue
        state = "passing" if gate.passed else "failing"
        states.append({"name": name, "state": state, "value": gate.value, "threshold": gate.threshold,
                       "detail": gate.detail})  # fmt: skip
    return states


def live(run: Any) -> dict[str, Any]:
    """/redis/live: numbers only (seconds, ratios, bytes, µs), for charts and scripts."""
    points = _server_points(run)
    last = points[-1] if points else {}
    commands, _ = split_parts(run.total.commands())
    return {
        "t": time.time(),
        "server": {
            "up": bool(last.get("up")),
            "ops_per_s": last.get("ops_per_s"),
            "hit_ratio": last.get("hit_ratio"),
            "used_memory": last.get("used_memory"),
            "maxmemory": last.get("maxmemory"),
            "evictions_per_s": last.get("evictions_per_s"),
            "evicted_keys": last.get("evicted_keys"),
            "connected_clients": last.get("connected_clients"),
            "container_memory": last.get("container_memory"),
            "container_memory_limit": last.get("container_memory_limit"),
        },
        "client": {"hit_ratio": run.total.hit_ratios().get("all"), "commands": commands},
        "series": {
            "server": [
                {
                    k: r.get(k)
                    for k in ("t", "up", "ops_per_s", "hit_ratio", "used_memory", "maxmemory", "evictions_per_s")
                }
                for r in points[1:]
            ],
            "p99": _p99_points(run),
        },
        "gates": live_gates(run),
        "marks": [m for m in run.marks if isinstance(m, dict)][-50:],
    }


def deployment_host(run: Any) -> str | None:
    """The endpoint the users connect to, as the start form's Host."""
    try:
        host, port = endpoint(run.profile)
    except HarnessError:
        return None
    return f"redis://{host}:{port}"


def install(environment: Any, run: Any) -> None:
    web_ui = environment.web_ui
    environment.host = environment.host or deployment_host(run)
    web_ui.template_args["extended_tabs"] = [{"title": "Redis", "key": TAB_KEY}]
    web_ui.template_args["extended_tables"] = [
        {"key": TAB_KEY, "structure": [{"key": "metric", "title": "Metric"}, {"key": "value", "title": "Value"}]}
    ]

    @web_ui.app.after_request
    def add_redis_stats(response: Any) -> Any:
        if request.path != "/stats/requests" or not response.is_json:
            return response
        payload = response.get_json()
        payload["extended_stats"] = [{"key": TAB_KEY, "data": live_rows(run)}]
        response.set_data(json.dumps(payload))
        return response

    @web_ui.app.after_request
    def add_tab_script(response: Any) -> Any:
        if request.path != "/" or response.mimetype != "text/html":
            return response
        page = response.get_data(as_text=True)
        response.set_data(page.replace("</body>", '<script src="/redis/tab.js" defer></script></body>', 1))
        return response

    @web_ui.app.route("/redis/live")
    def redis_live() -> Any:
        return live(run)

    @web_ui.app.route("/redis/tab.js")
    def redis_tab_script() -> Any:
        return Response(TAB_SCRIPT.read_text(encoding="utf-8"), mimetype="text/javascript")
