"""A run's report as lines for a terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from redis_harness.report.gate_lines import gate_lines


def library_cost_line(call: str, parts: dict[str, Any]) -> str:
    """A client library call's p50 and p99, split into Redis round trips, origin reads and the
    library's own time (each part's percentile is of that part alone, so they need not add up)."""

    def split(key: str) -> str:
        shown = [f"redis {parts['redis'][key]:,}"] if "redis" in parts else []
        shown += [f"origin {parts['origin'][key]:,}"] if "origin" in parts else []
        shown.append(f"library {parts['library'][key]:,}")
        return f"{parts['total'][key]:,} ({', '.join(shown)})"

    return f"  {call}: p50 µs {split('p50_us')}; p99 µs {split('p99_us')}"


def summary(report: dict[str, Any], run_dir: Path) -> str:
    lines = [
        f"{report['scenario']} on {report['profile']}: {report['duration_s']} s, "
        f"{report['throughput_ops_s']:,} ops/s, {'PASSED' if report['passed'] else 'FAILED'}",
        f"{'request':<24}{'count':>10}{'errors':>8}{'p50 µs':>9}{'p99 µs':>9}{'p99.9 µs':>10}{'max µs':>10}",
    ]
    for name, c in report["commands"].items():
        lines.append(
            f"{name:<24}{c['count']:>10,}{c['errors']:>8,}{c['p50_us']:>9,}{c['p99_us']:>9,}"
            f"{c['p999_us']:>10,}{c['max_us']:>10,}"
        )
    for call, parts in report.get("library_calls", {}).items():
        lines.append(library_cost_line(call, parts))
    hit = report["hit_ratio"]
    client = ", ".join(f"{k} {v:.1%}" for k, v in hit["client"].items() if v is not None)
    if client:
        lines.append(
            f"hit ratio: client {client}; server {hit['server']:.1%}"
            if hit["server"] is not None
            else f"hit ratio: client {client}"
        )
    for fault in report["faults"]:
        lines.append(
            f"fault {fault['kind']}: error window {fault['error_window_s']} s, p99 back after "
            f"{fault['p99_recovery_s']} s, hit ratio back after {fault['hit_ratio_recovery_s']} s, "
            f"acked writes lost {fault['acked_writes_lost']}"
            + (
                f"; new primary {fault['new_primary']} (was {fault['old_primary']}) after {fault['new_primary_s']} s"
                if fault.get("new_primary")
                else ""
            )
        )
    for gate in report["gates"]:
        lines.extend(gate_lines(gate))
    if "prometheus_alerts" in report:
        fired = report["prometheus_alerts"]
        lines.append(
            "prometheus alerts: could not ask Prometheus"
            if fired is None
            else "prometheus alerts: "
            + (
                ", ".join(
                    f"{a['name']}{' on ' + a['node'] if a['node'] else ''} ({a['first_s']}-{a['last_s']} s)"
                    for a in fired
                )
                or "none fired"
            )
        )
    lines.append(f"report: {run_dir / 'report.html'}")
    return "\n".join(lines)
