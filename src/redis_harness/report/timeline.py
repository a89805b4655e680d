"""The run over time as data: panels of series with units, gate thresholds, fault windows, marks.

One description, drawn twice: as charts.png by matplotlib (report/charts.py) and as the
interactive charts of report.html by uPlot (templates/report/charts.js), so the two show
the same things and the caption can promise only what is drawn.

Panels, each only when it has something to show:
- latency p99 (solid) and p50 (dotted) of every command a gate judged (slow_updates: the
  updates) and the busiest reads, with the gate's threshold; log scale (µs to 100 ms);
- client calls/s and errors/s (Locust's per-second history of the run);
- server ops/s, hit ratio (with the miss-ratio gate's floor), memory against maxmemory (with
  the memory gate's line), evictions/s (with its gate's line).
Rate and memory axes start at zero. Time is seconds since the run started. Faults' error
windows are shaded; faults, breaker changes and scenario phases are marks (vertical lines).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from redis_harness.report.gates import is_update

MAX_LATENCY_LINES = 8
# matplotlib's tab10 without its red: red is for thresholds, faults and errors.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
RED = "#d62728"
MARK_KINDS = ("fault", "breaker", "phase")
MIB = 2**20


@dataclass(frozen=True)
class Series:
    label: str
    values: list[float | None]
    colour: str
    style: str = "solid"  # solid, dotted, dashed


@dataclass(frozen=True)
class Threshold:
    label: str  # names the gate: "slow_updates gate (p99)"
    value: float


@dataclass(frozen=True)
class Panel:
    title: str  # "client calls/s"
    axis: str  # the y axis's label, with its unit
    unit: str  # of every value in the panel
    x: list[float]  # seconds since the run started
    series: list[Series]
    thresholds: list[Threshold] = field(default_factory=list)
    log: bool = False  # else linear from zero
    top: float | None = None  # a fixed top (the hit ratio's 100 %)


@dataclass(frozen=True)
class Window:
    begin: float  # seconds since start
    end: float
    label: str


@dataclass(frozen=True)
class Mark:
    t: float  # seconds since start
    label: str
    kind: str  # one of MARK_KINDS


@dataclass(frozen=True)
class Timeline:
    title: str
    end: float  # seconds: every panel's time axis runs from 0 to here
    panels: list[Panel]
    windows: list[Window]
    marks: list[Mark]

    def panel_names(self) -> list[str]:
        return [p.title for p in self.panels]

    def caption(self) -> str:
        """What the charts show, naming only what is drawn."""
        parts = ["Time runs in seconds since the run started; rate and memory axes start at zero"]
        if any(p.log for p in self.panels):
            parts[-1] += ", latency is on a log scale"
        gates = list(dict.fromkeys(t.label.split(" gate")[0] for p in self.panels for t in p.thresholds))
        if gates:
            parts.append(f"dashed red horizontals are gate thresholds ({', '.join(gates)})")
        if self.windows:
            parts.append("red shading is a fault's client error window")
        drawn = {
            "fault": "dashed red verticals are faults",
            "breaker": "dotted orange verticals are circuit-breaker changes",
            "phase": "dotted grey verticals are the scenario's phases",
        }
        for kind in MARK_KINDS:
            labels = list(dict.fromkeys(m.label for m in self.marks if m.kind == kind))
            if labels:
                parts.append(f"{drawn[kind]} ({'; '.join(labels)})")
        if self.marks or self.windows:
            parts.append("each labelled in the strip above the charts")
        return "; ".join(parts) + "."

    def as_json(self) -> dict[str, Any]:
        """For the page's script; a figure that is not a number (NaN, inf) becomes a gap, as JSON has none."""
        return _finite({**asdict(self), "caption": self.caption()})


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def gate(report: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((g for g in report.get("gates", []) if g["name"] == name), None)


def judged_commands(report: dict[str, Any]) -> list[str]:
    """The commands whose latency a gate judged (slow_updates: every update), then the busiest
    of the rest, so reads show too; at most MAX_LATENCY_LINES."""
    commands = report["commands"]
    judged = sorted(n for n in commands if is_update(n)) if gate(report, "slow_updates") else []
    busiest = sorted((n for n in commands if n not in judged), key=lambda n: -commands[n]["count"])
    return (judged + busiest[: max(2, MAX_LATENCY_LINES - len(judged))])[: max(MAX_LATENCY_LINES, len(judged))]


def _since(t: float, start: float) -> float:
    return round(t - start, 3)


def _latency(report: dict[str, Any], start: float) -> Panel | None:
    points = report["latency_series"]
    names = [n for n in judged_commands(report) if any(n in p for p in points)]
    if not names:
        return None
    series = []
    for n, name in enumerate(names):
        colour = PALETTE[n % len(PALETTE)]
        for key, label, style in (("p99_us", "p99", "solid"), ("p50_us", "p50", "dotted")):
            values = [p[name][key] if name in p else None for p in points]
            series.append(Series(f"{name} {label}", values, colour, style))
    slow = gate(report, "slow_updates")
    thresholds = [Threshold("slow_updates gate (p99)", slow["threshold"] * 1e6)] if slow and slow["threshold"] else []
    x = [_since(p["t"], start) for p in points]
    return Panel("latency", "latency, µs (log scale)", "µs", x, series, thresholds, log=True)


def _client(report: dict[str, Any], start: float) -> list[Panel]:
    rows = report.get("client_series") or []
    x = [_since(r["t"], start) for r in rows]
    panels = []
    for key, title, colour in (("ops_per_s", "client calls/s", "#9467bd"), ("errors_per_s", "client errors/s", RED)):
        if any(r.get(key) for r in rows):
            unit = title.split()[-1]
            panels.append(Panel(title, title, unit, x, [Series(title, [r.get(key) for r in rows], colour)]))
    return panels


def _server(report: dict[str, Any], start: float) -> list[Panel]:
    rows = report["server"]["series"]
    up = [r for r in rows if r.get("up")]
    x = [_since(r["t"], start) for r in rows]

    def column(key: str, scale: float = 1.0) -> list[float | None]:
        """The figure where the server answered; a gap where it did not (down, or no rate yet)."""
        return [r[key] * scale if r.get("up") and r.get(key) is not None else None for r in rows]

    panels = []
    if any(r.get("ops_per_s") for r in up):
        panels.append(
            Panel("server ops/s", "server ops/s", "ops/s", x, [Series("server ops/s", column("ops_per_s"), PALETTE[0])])
        )
    if any(r.get("hit_ratio") is not None for r in up):
        miss = gate(report, "miss_ratio")
        floor = (
            [Threshold("miss_ratio gate (hit ratio floor)", (1 - miss["threshold"]) * 100)]
            if miss and miss["threshold"] is not None
            else []
        )
        hit = Series("server hit ratio", column("hit_ratio", 100.0), PALETTE[2])
        panels.append(Panel("hit ratio", "server hit ratio, %", "%", x, [hit], floor, top=100.0))
    if any(r.get("used_memory") for r in up):
        panels.append(_memory(report, rows, x, column))
    if any(r.get("evictions_per_s") for r in up):
        eviction = gate(report, "eviction_rate")
        line = (
            [Threshold("eviction_rate gate", eviction["threshold"])]
            if eviction and eviction["threshold"] is not None
            else []
        )
        series = [Series("evictions/s", column("evictions_per_s"), "#8c564b")]
        panels.append(Panel("evictions/s", "evictions/s", "evictions/s", x, series, line))
    return panels


def _memory(report: dict[str, Any], rows: list[dict[str, Any]], x: list[float], column: Any) -> Panel:
    series = [
        Series("used_memory", column("used_memory", 1 / MIB), PALETTE[0]),
        Series("maxmemory", column("maxmemory", 1 / MIB), PALETTE[0], "dashed"),
    ]
    if any(r.get("container_memory") for r in rows):
        # Read from Docker, so it has a value while Redis itself does not answer.
        series.append(
            Series(
                "container",
                [r["container_memory"] / MIB if r.get("container_memory") else None for r in rows],
                PALETTE[1],
            )
        )
        if all(r.get("container_memory_limit") for r in rows if r.get("container_memory")):
            limits = [r["container_memory_limit"] / MIB if r.get("container_memory_limit") else None for r in rows]
            series.append(Series("container limit", limits, PALETTE[1], "dotted"))
    memory_gate = gate(report, "memory") or gate(report, "maxmemory_respected")
    maxmemory = report["server"].get("maxmemory") or 0
    thresholds = []
    if memory_gate and memory_gate["threshold"] and maxmemory:
        label = f"{memory_gate['name']} gate ({memory_gate['threshold']:g} × maxmemory)"
        thresholds.append(Threshold(label, memory_gate["threshold"] * maxmemory / MIB))
    return Panel("memory", "memory, MiB", "MiB", x, series, thresholds)


def _windows(report: dict[str, Any], start: float) -> list[Window]:
    """Every fault's error window (the client-side outage it caused)."""
    shaded = []
    windows = report.get("client", {}).get("error_windows", [])
    for fault in report["faults"]:
        after = [w for w in windows if w["to"] >= fault["at"] - 1]
        if after:
            label = f"{fault['kind']}: error window {after[0]['seconds']:g} s"
            shaded.append(Window(_since(after[0]["from"], start), _since(after[0]["to"], start), label))
        elif fault.get("until"):
            label = f"{fault['kind']} (no client errors)"
            shaded.append(Window(_since(fault["at"], start), _since(fault["until"], start), label))
    return shaded


def mark_kind(mark: dict[str, Any]) -> str:
    """A mark's kind as the run recorded it; runs from before kinds were recorded: from the label."""
    if mark.get("kind") in MARK_KINDS:
        return str(mark["kind"])
    label = str(mark.get("label", ""))
    return "breaker" if label.startswith("breaker") else "fault" if label.endswith("undone") else "phase"


def marks(report: dict[str, Any], start: float) -> list[Mark]:
    """Faults, breaker changes and scenario phases, in time order."""
    found = [Mark(_since(f["at"], start), f["kind"], "fault") for f in report["faults"]]
    fault_times = [f["at"] for f in report["faults"]]
    for mark in report["marks"]:
        if any(abs(mark["t"] - t) < 0.05 for t in fault_times):
            continue  # the fault injector's own note of a fault already drawn
        found.append(Mark(_since(mark["t"], start), mark["label"], mark_kind(mark)))
    return sorted(found, key=lambda m: m.t)


def timeline(report: dict[str, Any]) -> Timeline:
    series = report["server"]["series"]
    start = report["started"] or (series[0]["t"] if series else 0)
    panels = [p for p in [_latency(report, start), *_client(report, start), *_server(report, start)] if p]
    found = marks(report, start)
    windows = _windows(report, start)
    end = max([report.get("duration_s") or 0, *(p.x[-1] for p in panels if p.x), *(m.t for m in found)])
    return Timeline(f"{report['scenario']} on {report['profile']}", round(end, 3), panels, windows, found)
