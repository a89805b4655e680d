"""report.html: the run for people, from report.json and the charts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from redis_harness import paths
from redis_harness.load.generator import BUSY_PERCENT, process_label
from redis_harness.profile.units import format_size
from redis_harness.report.gate_lines import verdicts
from redis_harness.report.kill_window import FAILOVER_PARTS
from redis_harness.report.kill_window import PARTS as KILL_WINDOW_PARTS
from redis_harness.report.saturation import (
    ADVICE,
    CONSEQUENCE,
    TIMING_CONSEQUENCE,
    late_start,
    percent,
    saturated_processes,
)
from redis_harness.report.timeline import timeline
from redis_harness.terminal import GLUE, UNIT_SPACE

REPORT_TEMPLATES = paths.TEMPLATES_DIR / "report"
# Vendored chart library (its LICENSE and SOURCE.md beside it), inlined into every report.html.
UPLOT_DIR = REPORT_TEMPLATES / "vendor" / "uplot-1.6.32"


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _prose(text: str) -> Markup:
    """A sentence of the terminal's for a browser: a figure kept with its unit (`100 %`), command-line
    options as code, never broken at their dashes (`--rate`)."""
    text = str(escape(UNIT_SPACE.sub(GLUE, text)))
    return Markup(re.sub(r"(--[a-z][a-z-]*)", r'<code class="nowrap">\1</code>', text))


def settings_line(settings: dict[str, Any]) -> str:
    """A run's settings as people say them: '10 users (10 spawned/s), open loop at 2,000 ops/s, 2 workers'."""
    parts = []
    users, spawn = settings.get("users"), settings.get("spawn_rate")
    if users:
        parts.append(f"{users:,} users" + (f" ({spawn:g} spawned/s)" if spawn else ""))
    rate = settings.get("rate")
    parts.append(f"open loop at {rate:,.0f} ops/s" if rate else "closed loop (next call when the last returns)")
    workers = settings.get("workers")
    parts.append(f"{workers} worker processes" if workers else "one process")
    known = {"users", "spawn_rate", "rate", "workers"}
    parts += [f"{k.replace('_', ' ')} {v}" for k, v in settings.items() if k not in known and v not in (None, "", 0)]
    return ", ".join(parts)


def _inline(path: Path) -> Markup:
    return Markup(path.read_text(encoding="utf-8"))


def to_html(report: dict[str, Any], *, has_locust_html: bool = True) -> str:
    env = Environment(loader=FileSystemLoader(REPORT_TEMPLATES), undefined=StrictUndefined, autoescape=True)
    env.filters.update(
        num=_num,
        pct=lambda v: "-" if v is None else f"{v:.1%}",
        size=lambda v: "-" if not v else format_size(v),
        us=lambda v: "-" if v is None else f"{v:,.0f} µs",
        prose=_prose,
        process=process_label,
        # The generator's figures rounded as the terminal rounds them: `60 %`, busy for `80 %` of the run.
        percent=percent,
        share=lambda v: percent(None if v is None else v * 100),
    )
    line = timeline(report)
    return env.get_template("report.html.j2").render(
        r=report,
        verdict="PASSED" if report["passed"] else "FAILED",
        settings=settings_line(report.get("settings") or {}),
        panels=line.panel_names(),
        caption=line.caption(),
        timeline=line.as_json(),
        uplot_js=_inline(UPLOT_DIR / "uPlot.iife.min.js"),
        uplot_css=_inline(UPLOT_DIR / "uPlot.min.css"),
        charts_js=_inline(REPORT_TEMPLATES / "charts.js"),
        # The gates and the generator in the terminal summary's words (report.gate_lines, report.saturation).
        gates=verdicts(report),
        saturation=saturated_processes(report),
        consequence=CONSEQUENCE,
        advice=ADVICE,
        busy_percent=f"{BUSY_PERCENT:.0f}",
        late_start=late_start(report),
        timing_consequence=TIMING_CONSEQUENCE,
        has_locust_html=has_locust_html,
        kill_window_parts=KILL_WINDOW_PARTS,
        failover_window_parts=FAILOVER_PARTS,
    )
