"""report.html: the run for people, from report.json and the charts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from redis_harness import paths
from redis_harness.profile.units import format_size
from redis_harness.report.timeline import timeline

REPORT_TEMPLATES = paths.TEMPLATES_DIR / "report"
# Vendored chart library (its LICENSE and SOURCE.md beside it), inlined into every report.html.
UPLOT_DIR = REPORT_TEMPLATES / "vendor" / "uplot-1.6.32"


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


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
        has_locust_html=has_locust_html,
    )
