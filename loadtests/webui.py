"""A "Redis" tab in Locust's web UI: live server figures and µs percentiles.

Uses the UI's own extension points (extended_tabs / extended_tables in the
template args, extended_stats in /stats/requests), as in Locust's
extend_web_ui example.
"""

from __future__ import annotations

import json
from typing import Any

from flask import request

from redis_harness.load.sampler import with_rates
from redis_harness.profile.units import format_size

TAB_KEY = "redis"


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
    for name, summary in run.total.commands().items():
        rows.append(
            {
                "metric": f"{name}  p50 / p99 / max",
                "value": f"{summary['p50_us']:,} / {summary['p99_us']:,} / {summary['max_us']:,} µs"
                f"  ({summary['count']:,} calls, {summary['errors']:,} errors)",
            }
        )
    return rows


def install(environment: Any, run: Any) -> None:
    web_ui = environment.web_ui
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

    @web_ui.app.route("/redis/live")
    def redis_live() -> Any:
        return {"rows": live_rows(run)}
