"""A run's report as lines for a terminal, none wider than MAX_WIDTH columns.

What limited the figures comes right under the verdict: a saturated
generator is stated (which process, how busy, for how much of the run)
before any latency is shown, and a failed latency gate says the figure is
probably the generator's. Open-loop runs (--rate) show latency from each
call's intended start beside the service time, and under the verdict how
late the generator woke the calls, which that latency includes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from redis_harness.load.recorder import PARTS
from redis_harness.report.gate_lines import verdict_lines, verdicts
from redis_harness.report.kill_window import failover_window_lines, window_lines
from redis_harness.report.saturation import (
    ADVICE,
    CONSEQUENCE,
    TIMING_CONSEQUENCE,
    headroom,
    late_start,
    saturated_processes,
)
from redis_harness.terminal import MAX_WIDTH, Group, table, wrapped

CONTINUED = "  "  # a wrapped sentence goes on under this
SERVICE = ("p50_us", "p99_us", "p999_us", "max_us")


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _decimal(value: float) -> str:
    """`12.34`, `31`: at most two decimals (a float sum's 36.900000000000006 is 36.9)."""
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{_decimal(value)} s"


def _percent(ratio: float) -> str:
    return f"{ratio * 100:.1f} %"


def headline(report: dict[str, Any], width: int = MAX_WIDTH) -> list[str]:
    rate = (report.get("settings") or {}).get("rate")
    paced = f", open loop at {rate:,.0f} ops/s" if rate else ""
    text = (
        f"{report['scenario']} on {report['profile']}: {report['duration_s']} s, "
        f"{report['throughput_ops_s']:,.0f} ops/s{paced}, {'PASSED' if report['passed'] else 'FAILED'}"
    )
    lines = wrapped(text, CONTINUED, width)
    if report.get("target"):
        figures = "the admin's INFO" if report.get("server_figures") else "not available (no admin credentials)"
        note = f"target {report['target']} (not deployed by the harness); server figures: {figures}"
        left_out = (report.get("findings") or {}).get("workloads_left_out")
        if left_out:
            note += f"; workloads left out (no user for their service): {', '.join(left_out)}"
        lines += wrapped(note, CONTINUED, width)
    return lines


def generator_lines(report: dict[str, Any], width: int = MAX_WIDTH) -> list[str]:
    """A saturated generator, always; one that kept up, unless the generator_headroom gate says so below;
    and in open loop, how late it woke the calls (what it added to the latency from intended start)."""
    busy = saturated_processes(report)
    if busy:
        return wrapped(f"generator saturated: {busy}: {CONSEQUENCE}; {ADVICE}", CONTINUED, width)
    lines = []
    kept_up = headroom(report)
    if kept_up and not any(g["name"] == "generator_headroom" for g in report["gates"]):
        lines += wrapped(f"generator kept up: {kept_up}", CONTINUED, width)
    late = late_start(report)
    if late:
        lines += wrapped(f"generator timing: {late}; {TIMING_CONSEQUENCE}", CONTINUED, width)
    return lines


def request_table(commands: dict[str, dict[str, Any]], width: int = MAX_WIDTH) -> list[str]:
    """count, errors and service-time percentiles per request; with --rate, p50/p99 from the intended
    start beside them (the latency a caller on the schedule saw, queueing in the generator included)."""
    paced = any("intended" in c for c in commands.values())
    header = ["request", "count", "errors", "p50 µs", "p99 µs", "p99.9 µs", "max µs"]
    groups: list[Group] = []
    if paced:
        header += ["p50 µs", "p99 µs"]
        groups = [Group("service time", 3, 6), Group("from intended start", 7, 8)]
    rows = []
    for name, c in commands.items():
        row = [name, f"{c['count']:,}", f"{c['errors']:,}", *(_us(c[k]) for k in SERVICE)]
        if paced:
            intended = c.get("intended") or {}
            row += [_us(intended.get("p50_us")), _us(intended.get("p99_us"))]
        rows.append(row)
    return table(header, rows, groups=groups, width=width)


def library_table(library_calls: dict[str, dict[str, Any]], width: int = MAX_WIDTH) -> list[str]:
    """Each client library call's p50 and p99, whole and split into Redis round trips, origin reads and the
    library's own time (each part's percentile is of that part alone, so they need not add up)."""
    if not library_calls:
        return []
    header = ["library call", *(label for _ in ("p50", "p99") for label in ("whole", *PARTS))]
    groups = [Group("p50 µs", 1, 1 + len(PARTS)), Group("p99 µs", 2 + len(PARTS), 2 + 2 * len(PARTS))]
    rows = [
        [
            call,
            *(_us((parts.get(part) or {}).get(key)) for key in ("p50_us", "p99_us") for part in ("total", *PARTS)),
        ]
        for call, parts in library_calls.items()
    ]
    return table(header, rows, groups=groups, width=width)


def hit_ratio_lines(hit: dict[str, Any], width: int = MAX_WIDTH) -> list[str]:
    client = ", ".join(f"{k} {_percent(v)}" for k, v in hit["client"].items() if v is not None)
    if not client:
        return []
    server = f"; server {_percent(hit['server'])}" if hit["server"] is not None else ""
    return wrapped(f"hit ratio: client {client}{server}", CONTINUED, width)


def fault_lines(fault: dict[str, Any], width: int = MAX_WIDTH) -> list[str]:
    text = (
        f"fault {fault['kind']}: error window {_seconds(fault['error_window_s'])}, "
        f"p99 back after {_seconds(fault['p99_recovery_s'])}, "
        f"hit ratio back after {_seconds(fault['hit_ratio_recovery_s'])}, "
        f"acked writes lost {fault['acked_writes_lost']:,}"
    )
    if fault.get("acked_loss"):
        loss = fault["acked_loss"]
        text += f" (acknowledged {_decimal(loss['first_s'])} to {_seconds(loss['last_s'])} after the fault)"
    if "loss_bound_s" in fault:
        bound = fault["loss_bound_s"]
        text += f", bound {_seconds(bound)}" if bound is not None else ", unbounded (min_replicas_to_write 0)"
    if "durable_acked_writes" in fault:
        durable_lost = fault.get("durable_acked_writes_lost", 0)
        text += f", durable writes lost {durable_lost:,} of {fault['durable_acked_writes']:,}"
    if fault.get("new_primary"):
        text += (
            f"; new primary {fault['new_primary']} (was {fault['old_primary']}) "
            f"after {_seconds(fault['new_primary_s'])}"
        )

    lines = wrapped(text, CONTINUED, width)
    if fault.get("kill_window"):
        for line in window_lines(fault["kill_window"]):
            lines += wrapped(CONTINUED + line, CONTINUED * 6, width)
    if fault.get("failover_window"):
        for line in failover_window_lines(fault["failover_window"]):
            lines += wrapped(CONTINUED + line, CONTINUED * 6, width)
    return lines


def prometheus_lines(fired: list[dict[str, Any]] | None, width: int = MAX_WIDTH) -> list[str]:
    if fired is None:
        return ["prometheus alerts: could not ask Prometheus"]
    alerts = ", ".join(
        f"{a['name']}{' on ' + a['node'] if a['node'] else ''} ({_decimal(a['first_s'])}-{_seconds(a['last_s'])})"
        for a in fired
    )
    return wrapped(f"prometheus alerts: {alerts or 'none fired'}", CONTINUED, width)


def shown_path(path: Path) -> str:
    """Relative to the working directory when under it: shorter, and still a path to paste."""
    relative = os.path.relpath(path.resolve()) if path.is_absolute() else str(path)
    return str(path) if relative.startswith("..") else relative


def summary(report: dict[str, Any], run_dir: Path, width: int = MAX_WIDTH) -> str:
    lines = headline(report, width) + generator_lines(report, width)
    lines += request_table(report["commands"], width)
    lines += library_table(report.get("library_calls") or {}, width)
    lines += hit_ratio_lines(report["hit_ratio"], width)
    for fault in report["faults"]:
        lines += fault_lines(fault, width)
    for v in verdicts(report):
        lines += verdict_lines(v, width)
    if "prometheus_alerts" in report:
        lines += prometheus_lines(report["prometheus_alerts"], width)
    path = shown_path(run_dir / "report.html")
    lines += [f"report: {path}"] if len(path) + len("report: ") <= width else ["report:", f"{CONTINUED}{path}"]
    return "\n".join(lines)
