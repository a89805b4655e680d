"""The run over time as one figure (PNG for the README, SVG inline in report.html).

Panels, each drawn only when it has something to show:
- latency p99 (and p50) of every command a gate judged (slow_updates: the updates)
  and the busiest reads, with the gate's threshold as a horizontal line;
- client ops/s and errors/s (Locust's per-second history of the run);
- server ops/s, hit ratio (with the miss-ratio gate's floor), memory against
  maxmemory (with the memory gate's line), evictions/s (with its gate's line).
Every fault's error window is shaded and labelled; fault, breaker and scenario
marks are drawn as labelled vertical lines on every panel.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from redis_harness.report.gates import is_update

MAX_LATENCY_LINES = 8
LABEL_CHARS = 40


def _gate(report: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((g for g in report.get("gates", []) if g["name"] == name), None)


def judged_commands(report: dict[str, Any]) -> list[str]:
    """The commands whose latency a gate judged (slow_updates: every update), then the busiest
    of the rest, so reads show too; at most MAX_LATENCY_LINES."""
    commands = report["commands"]
    judged = sorted(n for n in commands if is_update(n)) if _gate(report, "slow_updates") else []
    busiest = sorted((n for n in commands if n not in judged), key=lambda n: -commands[n]["count"])
    return (judged + busiest[: max(2, MAX_LATENCY_LINES - len(judged))])[: max(MAX_LATENCY_LINES, len(judged))]


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def _panels(report: dict[str, Any], start: float) -> list[tuple[str, Callable[[Any], None]]]:
    """(name, draw) for every panel with something to show, top to bottom."""
    panels: list[tuple[str, Callable[[Any], None]]] = []
    series = report["server"]["series"]
    up = [r for r in series if r.get("up")]
    xs = [r["t"] - start for r in up]
    slow = _gate(report, "slow_updates")

    names = [n for n in judged_commands(report) if any(n in p for p in report["latency_series"])]
    if names:

        def latency(ax: Any) -> None:
            for name in names:
                points = [
                    (p["t"] - start, p[name]["p99_us"], p[name]["p50_us"])
                    for p in report["latency_series"]
                    if name in p
                ]
                if not points:
                    continue
                px, p99, p50 = zip(*points, strict=True)
                line = ax.plot(px, p99, label=f"{name} p99")[0]
                ax.plot(px, p50, linestyle=":", color=line.get_color())
            if slow and slow["threshold"]:
                ax.axhline(slow["threshold"] * 1e6, color="red", linewidth=1.5, label="slow_updates gate (p99)")
            ax.set_yscale("log")
            ax.set_ylabel("latency µs\n(p99 solid, p50 dotted)")
            ax.legend(fontsize=6, ncol=3, loc="upper left")

        panels.append(("latency", latency))

    client = report.get("client_series") or []
    if any(r.get("ops_per_s") for r in client):

        def client_ops(ax: Any) -> None:
            ax.plot([r["t"] - start for r in client], [r["ops_per_s"] for r in client], color="tab:purple")
            ax.set_ylabel("client calls/s")

        panels.append(("client calls/s", client_ops))
    if any(r.get("errors_per_s") for r in client):

        def client_errors(ax: Any) -> None:
            ax.plot([r["t"] - start for r in client], [r["errors_per_s"] for r in client], color="tab:red")
            ax.set_ylabel("client errors/s")

        panels.append(("client errors/s", client_errors))

    if any(r.get("ops_per_s") for r in up):

        def server_ops(ax: Any) -> None:
            ax.plot(xs, [r.get("ops_per_s", 0) for r in up], color="tab:blue")
            ax.set_ylabel("server ops/s")

        panels.append(("server ops/s", server_ops))
    if any(r.get("hit_ratio") is not None for r in up):
        miss = _gate(report, "miss_ratio")

        def hit_ratio(ax: Any) -> None:
            ax.plot(xs, [r["hit_ratio"] if r.get("hit_ratio") is not None else float("nan") for r in up])
            if miss and miss["threshold"] is not None:
                ax.axhline(1 - miss["threshold"], color="red", linewidth=1.5, label="miss_ratio gate (floor)")
                ax.legend(fontsize=6, loc="lower left")
            ax.set_ylim(0, 1.05)
            ax.set_ylabel("server hit ratio")

        panels.append(("hit ratio", hit_ratio))
    if any(r.get("used_memory") for r in up):
        memory_gate = _gate(report, "memory") or _gate(report, "maxmemory_respected")

        def memory(ax: Any) -> None:
            ax.plot(xs, [r.get("used_memory", 0) / 2**20 for r in up], label="used_memory")
            ax.plot(xs, [r.get("maxmemory", 0) / 2**20 for r in up], linestyle="--", label="maxmemory")
            maxmemory = report["server"].get("maxmemory") or 0
            if memory_gate and memory_gate["threshold"] and maxmemory:
                ax.axhline(
                    memory_gate["threshold"] * maxmemory / 2**20,
                    color="red",
                    linewidth=1.5,
                    label=f"{memory_gate['name']} gate ({memory_gate['threshold']:g} × maxmemory)",
                )
            cont = [r for r in series if r.get("container_memory")]
            if cont:
                cx = [r["t"] - start for r in cont]
                ax.plot(cx, [r["container_memory"] / 2**20 for r in cont], label="container")
                limits = [r.get("container_memory_limit") for r in cont]
                if all(limits):
                    ax.plot(cx, [v / 2**20 for v in limits], linestyle=":", label="container limit")
            ax.set_ylabel("MiB")
            ax.legend(fontsize=6, ncol=3, loc="upper left")

        panels.append(("memory", memory))
    if any(r.get("evictions_per_s") for r in up):
        eviction = _gate(report, "eviction_rate")

        def evictions(ax: Any) -> None:
            ax.plot(xs, [r.get("evictions_per_s", 0) for r in up], color="tab:red")
            if eviction and eviction["threshold"] is not None:
                ax.axhline(eviction["threshold"], color="red", linewidth=1.5, label="eviction_rate gate")
                ax.legend(fontsize=6, loc="upper left")
            ax.set_ylabel("evictions/s")

        panels.append(("evictions/s", evictions))
    return panels


def _windows(report: dict[str, Any]) -> list[tuple[float, float, str]]:
    """(from, to, label) of every fault's error window (the client-side outage it caused)."""
    shaded = []
    windows = report.get("client", {}).get("error_windows", [])
    for fault in report["faults"]:
        after = [w for w in windows if w["to"] >= fault["at"] - 1]
        if after:
            shaded.append(
                (after[0]["from"], after[0]["to"], f"{fault['kind']}: error window {after[0]['seconds']:g} s")
            )
        elif fault.get("until"):
            shaded.append((fault["at"], fault["until"], f"{fault['kind']} (no client errors)"))
    return shaded


def timeline_marks(report: dict[str, Any]) -> list[tuple[float, str, str]]:
    """(t, label, kind) of everything marked on the timeline: faults, breaker changes, phases."""
    marks = [(f["at"], f["kind"], "fault") for f in report["faults"]]
    fault_times = [f["at"] for f in report["faults"]]
    for mark in report["marks"]:
        if any(abs(mark["t"] - t) < 0.05 for t in fault_times):
            continue  # the scenario's own note of a fault already drawn
        kind = "breaker" if mark["label"].startswith("breaker") else "phase"
        marks.append((mark["t"], mark["label"], kind))
    return sorted(marks)


COLOURS = {"fault": "red", "breaker": "darkorange", "phase": "dimgray"}


def charts(report: dict[str, Any]) -> tuple[bytes, str]:
    """One figure of the run over time; see the module doc for what it shows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Text stays text in the SVG: a reader can search report.html for a label or a gate.
    plt.rcParams["svg.fonttype"] = "none"
    series = report["server"]["series"]
    start = report["started"] or (series[0]["t"] if series else 0)
    panels = _panels(report, start)
    windows = _windows(report)
    marks = timeline_marks(report)
    # A strip on top carries the labels of marks and error windows, so no legend hides them.
    strip = 1 if marks or windows else 0
    rows = strip + max(1, len(panels))
    heights = [0.5 + 0.22 * min(len(marks) + len(windows), 6)] * strip + [2.2] * max(1, len(panels))
    fig, axes = plt.subplots(
        rows, 1, figsize=(10, sum(heights) + 0.9), sharex=True, gridspec_kw={"height_ratios": heights}, squeeze=False
    )
    axes = list(axes[:, 0])
    plots = axes[strip:]
    if not panels:
        plots[0].text(0.5, 0.5, "no figures were recorded", ha="center", va="center", transform=plots[0].transAxes)
    for (_, draw), ax in zip(panels, plots, strict=False):
        draw(ax)
    for ax in axes:
        ax.grid(alpha=0.3)
        for begin, end, _ in windows:
            ax.axvspan(begin - start, end - start, color="red", alpha=0.12)
        for t, _, kind in marks:
            ax.axvline(t - start, color=COLOURS[kind], linestyle="--" if kind == "fault" else ":", alpha=0.8)
    if strip:
        top = axes[0]
        top.set_yticks([])
        top.set_ylim(0, 1)
        labels = [(begin, f"{label}", "window") for begin, _, label in windows] + [(t, lab, k) for t, lab, k in marks]
        lanes = max(1, min(len(labels), 6))
        for n, (t, label, kind) in enumerate(sorted(labels)):
            top.annotate(
                _short(label),
                (t - start, 1 - (n % lanes + 0.6) / lanes),
                xycoords=("data", "axes fraction"),
                color="red" if kind == "window" else COLOURS[kind],
                fontsize=7,
                va="center",
                bbox={"facecolor": "white", "alpha": 0.8, "linewidth": 0, "pad": 1},
            )
        top.set_ylabel("marks", rotation=0, ha="right", va="center")
    axes[-1].set_xlabel("seconds since start")
    fig.suptitle(f"{report['scenario']} on {report['profile']}")
    fig.tight_layout()
    png, svg = io.BytesIO(), io.StringIO()
    fig.savefig(png, format="png", dpi=80)
    fig.savefig(svg, format="svg")
    plt.close(fig)
    return png.getvalue(), svg.getvalue()


def panel_names(report: dict[str, Any]) -> list[str]:
    """The panels a report gets (for tests and the HTML's list of what is drawn)."""
    start = report["started"] or 0
    return [name for name, _ in _panels(report, start)]
