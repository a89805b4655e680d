"""The run over time as one figure (PNG for the README, SVG inline in report.html)."""

from __future__ import annotations

import io
from typing import Any


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
