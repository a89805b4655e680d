"""A load run's report: report.json for machines, report.html for people, JUnit XML of the gates for CI.

Built only from the run folder's raw.json, so `redis-harness report DIR`
re-renders it at any time.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from . import paths
from .gates import Gate, evaluate
from .loadstats import Recorder, error_windows
from .profile import Profile, load_profile
from .sampler import with_rates
from .scenarios import SCENARIOS
from .units import format_size

P99_RECOVERY_TOLERANCE = 1.20  # "back within 20 % of its pre-fault value"


def _server_summary(series: list[dict[str, Any]], post: dict[str, Any]) -> dict[str, Any]:
    up = [row for row in series if row.get("up")]
    first, last = (up[0], up[-1]) if up else ({}, {})
    rated = with_rates(series)
    delta_hits = (last.get("keyspace_hits") or 0) - (first.get("keyspace_hits") or 0)
    delta_misses = (last.get("keyspace_misses") or 0) - (first.get("keyspace_misses") or 0)
    return {
        "series": rated,
        "evicted_keys": max(0, (last.get("evicted_keys") or 0) - (first.get("evicted_keys") or 0)),
        "expired_keys": max(0, (last.get("expired_keys") or 0) - (first.get("expired_keys") or 0)),
        "used_memory_max": max((r.get("used_memory") or 0 for r in up), default=0),
        "maxmemory": last.get("maxmemory") or 0,
        "container_memory_max": max((r.get("container_memory") or 0 for r in series), default=0),
        "container_memory_limit": next(
            (r["container_memory_limit"] for r in series if r.get("container_memory_limit")), None
        ),
        "evictions_per_s_max": max((r.get("evictions_per_s", 0) for r in rated), default=0),
        "hit_ratio": delta_hits / (delta_hits + delta_misses) if delta_hits + delta_misses > 0 else None,
        "oom_killed": bool(post.get("oom_killed")),
        "restart_count": post.get("restart_count", 0),
        "restarts_during_run": post.get("restarts_during_run", 0),
    }


def _p99_recovery_s(latency_series: list[dict[str, Any]], fault_at: float, name: str | None) -> float | None:
    """Seconds from the fault until the p99 is back within 20 % of its pre-fault value."""
    if not name:
        return None
    before = [p[name]["p99_us"] for p in latency_series if p["t"] < fault_at and name in p]
    if not before:
        return None
    baseline = sorted(before)[len(before) // 2]
    for point in latency_series:
        if point["t"] > fault_at and name in point and point[name]["p99_us"] <= baseline * P99_RECOVERY_TOLERANCE:
            return round(point["t"] - fault_at, 2)
    return None


def _hit_ratio_recovery_s(series: list[dict[str, Any]], fault_at: float) -> float | None:
    before = [r["hit_ratio"] for r in series if r["t"] < fault_at and r.get("hit_ratio") is not None]
    if not before:
        return None
    baseline = sorted(before)[len(before) // 2]
    for row in series:
        if row["t"] > fault_at and row.get("hit_ratio") is not None and row["hit_ratio"] >= baseline * 0.95:
            return round(row["t"] - fault_at, 2)
    return None


def _faults(raw: dict[str, Any], recorder: Recorder, server_series: list[dict[str, Any]]) -> list[dict[str, Any]]:
    windows = error_windows(sorted(recorder.outcomes))
    busiest = max(recorder.service, key=lambda n: recorder.service[n].get_total_count(), default=None)
    result = []
    for fault in raw.get("faults", []):
        at = fault["at"]
        after = [w for w in windows if w["to"] >= at - 1]
        result.append(
            {
                **fault,
                "error_window_s": after[0]["seconds"] if after else 0.0,
                "p99_recovery_s": _p99_recovery_s(raw.get("latency_series", []), fault.get("until", at), busiest),
                "hit_ratio_recovery_s": _hit_ratio_recovery_s(server_series, fault.get("until", at)),
                "acked_writes_lost": recorder.events.values.get("acked_writes_lost", 0),
            }
        )
    return result


def build(run_dir: Path, profile: Profile | None = None) -> dict[str, Any]:
    raw = json.loads((run_dir / "raw.json").read_text())
    profile = profile or load_profile(raw["profile"])
    recorder = Recorder()
    recorder.merge(raw["recorder"])
    commands = recorder.commands()
    duration = max(1e-3, (raw["ended"] or 0) - (raw["started"] or raw["ended"] or 0))
    total_calls = sum(c["count"] for c in commands.values())
    server = _server_summary(raw.get("server_series", []), raw.get("post", {}))
    events = dict(recorder.events.values)
    report: dict[str, Any] = {
        "scenario": raw["scenario"],
        "profile": raw["profile_name"],
        "started": raw["started"],
        "duration_s": round(duration, 2),
        "settings": raw["settings"],
        "throughput_ops_s": round(total_calls / duration, 1),
        "commands": commands,
        "hit_ratio": {"client": recorder.hit_ratios(), "server": server["hit_ratio"]},
        "server": {**server, "oom_errors": events.get("oom_errors", 0)},
        "client": {"events": events, "error_windows": error_windows(sorted(recorder.outcomes))},
        "faults": _faults(raw, recorder, server["series"]),
        "marks": raw.get("marks", []),
        "latency_series": raw.get("latency_series", []),
        "findings": raw.get("findings", {}),
    }
    if "persistent_written" in events:
        report["eviction"] = {
            key: events.get(key, 0)
            for key in ("persistent_written", "persistent_present", "volatile_written", "volatile_present")
        }
        report["eviction"]["oom_errors"] = events.get("oom_errors", 0)
    scenario = SCENARIOS.get(raw["scenario"])
    gates = evaluate(report, profile, scenario.gates if scenario else ("error_rate",))
    report["gates"] = [g.as_dict() for g in gates]
    report["passed"] = all(g.passed for g in gates)
    write(run_dir, report, gates)
    return report


# ----------------------------------------------------------------------------- outputs


def write(run_dir: Path, report: dict[str, Any], gates: list[Gate]) -> None:
    (run_dir / "report.json").write_text(json.dumps(report, indent=2, default=str))
    (run_dir / "gates.xml").write_text(junit(report, gates))
    png, svg = charts(report)
    (run_dir / "charts.png").write_bytes(png)
    (run_dir / "report.html").write_text(to_html(report, svg))


def junit(report: dict[str, Any], gates: list[Gate]) -> str:
    suite = ET.Element(
        "testsuite",
        name=f"load-gates.{report['profile']}.{report['scenario']}",
        tests=str(len(gates)),
        failures=str(sum(not g.passed for g in gates)),
        time=str(report["duration_s"]),
    )
    for gate in gates:
        case = ET.SubElement(suite, "testcase", classname=f"gates.{report['scenario']}", name=gate.name)
        if not gate.passed:
            failure = ET.SubElement(case, "failure", message=f"{gate.name}: {gate.value} vs threshold {gate.threshold}")
            failure.text = gate.detail
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)


def charts(report: dict[str, Any]) -> tuple[bytes, str]:
    """One figure of the run over time: latency, ops/s, hit ratio, memory, evictions; faults marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = report["server"]["series"]
    start = report["started"] or (series[0]["t"] if series else 0)
    fig, axes = plt.subplots(5, 1, figsize=(10, 13), sharex=True)
    lat, ops, hit, mem, evict = axes

    busiest = sorted(report["commands"], key=lambda n: -report["commands"][n]["count"])[:4]
    for name in sorted(busiest):
        points = [(p["t"] - start, p[name]["p99_us"], p[name]["p50_us"]) for p in report["latency_series"] if name in p]
        if points:
            xs, p99, p50 = zip(*points, strict=True)
            line = lat.plot(xs, p99, label=f"{name} p99")[0]
            lat.plot(xs, p50, linestyle=":", color=line.get_color(), label=f"{name} p50")
    lat.set_yscale("log")
    lat.set_ylabel("latency (µs)")
    if lat.lines:
        lat.legend(fontsize=7, ncol=2)

    up = [r for r in series if r.get("up")]
    xs = [r["t"] - start for r in up]
    ops.plot(xs, [r.get("ops_per_s", 0) for r in up], color="tab:blue")
    ops.set_ylabel("server ops/s")
    hit.plot(
        xs, [r.get("hit_ratio") if r.get("hit_ratio") is not None else float("nan") for r in up], color="tab:green"
    )
    hit.set_ylim(0, 1.05)
    hit.set_ylabel("server hit ratio")
    mem.plot(xs, [r.get("used_memory", 0) / 2**20 for r in up], label="used_memory")
    mem.plot(xs, [r.get("maxmemory", 0) / 2**20 for r in up], linestyle="--", label="maxmemory")
    cont = [r for r in series if r.get("container_memory")]
    if cont:
        mem.plot([r["t"] - start for r in cont], [r["container_memory"] / 2**20 for r in cont], label="container")
        mem.plot(
            [r["t"] - start for r in cont],
            [r["container_memory_limit"] / 2**20 for r in cont],
            linestyle=":",
            label="container limit",
        )
    mem.set_ylabel("MiB")
    mem.legend(fontsize=7)
    evict.plot(xs, [r.get("evictions_per_s", 0) for r in up], color="tab:red")
    evict.set_ylabel("evictions/s")
    evict.set_xlabel("seconds since start")

    for ax in axes:
        ax.grid(alpha=0.3)
        for fault in report["faults"]:
            ax.axvline(fault["at"] - start, color="red", linestyle="--", alpha=0.7)
            if fault.get("until"):
                ax.axvspan(fault["at"] - start, fault["until"] - start, color="red", alpha=0.08)
        for mark in report["marks"]:
            ax.axvline(mark["t"] - start, color="gray", linestyle=":", alpha=0.7)
    if report["faults"]:
        lat.annotate(
            report["faults"][0]["kind"],
            (report["faults"][0]["at"] - start, 1),
            color="red",
            xycoords=("data", "axes fraction"),
            va="top",
        )
    fig.suptitle(f"{report['scenario']} on {report['profile']}")
    fig.tight_layout()
    png, svg = io.BytesIO(), io.StringIO()
    fig.savefig(png, format="png", dpi=80)
    fig.savefig(svg, format="svg")
    plt.close(fig)
    return png.getvalue(), svg.getvalue()


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def to_html(report: dict[str, Any], svg: str) -> str:
    env = Environment(
        loader=FileSystemLoader(paths.TEMPLATES_DIR / "report"), undefined=StrictUndefined, autoescape=True
    )
    env.filters.update(
        num=_num,
        pct=lambda v: "-" if v is None else f"{v:.1%}",
        size=lambda v: "-" if not v else format_size(v),
    )
    return env.get_template("report.html.j2").render(
        r=report, verdict="PASSED" if report["passed"] else "FAILED", chart=Markup(svg[svg.find("<svg") :])
    )
