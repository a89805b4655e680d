"""report.html: the run for people, from report.json and the charts."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from redis_harness import paths
from redis_harness.profile.units import format_size


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
