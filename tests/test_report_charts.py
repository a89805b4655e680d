"""The run's timeline (report/timeline.py) and charts.png, from a real eviction run's saved data.

tests/data/eviction-run holds what `redis-harness load ci --scenario eviction --duration 25s`
wrote (run.json, raw.json, post.json and Locust's CSVs, recorded on a 2-core host); the tests
rebuild its report as `redis-harness report DIR` does. report.html in a browser:
tests/test_report_browser.py."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from redis_harness import paths
from redis_harness.report.analysis import build
from redis_harness.report.charts import figure
from redis_harness.report.html import UPLOT_DIR
from redis_harness.report.timeline import Timeline, timeline

from .browser import CHROMIUM, NO_CHROMIUM, Cdp, chromium_page, wait_for

EVICTION_RUN = Path(__file__).parent / "data" / "eviction-run"
PHASES = [
    "phase 1: persistent keys (no TTL)",
    "phase 2: volatile keys (with TTL)",
    "phase 3: persistent keys until -OOM",
    "phase 4: reads only",
]
RATE_PANELS = {"client calls/s", "client errors/s", "server ops/s", "evictions/s"}


def eviction_run(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A copy of the saved eviction run, its report rebuilt (report.json, report.html, charts.png)."""
    run = tmp_path / "eviction-run"
    shutil.copytree(EVICTION_RUN, run)
    return run, build(run)


def test_the_vendored_chart_library_is_the_published_one_with_its_licence() -> None:
    """uPlot as `npm pack uplot@1.6.32` gave it: SOURCE.md's checksums hold, the MIT licence is beside it."""
    source = (UPLOT_DIR / "SOURCE.md").read_text()
    sums = dict((name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", source, re.M))
    assert set(sums) == {"uPlot.iife.min.js", "uPlot.min.css", "LICENSE"}
    for name, digest in sums.items():
        assert hashlib.sha256((UPLOT_DIR / name).read_bytes()).hexdigest() == digest, name
    assert "MIT License" in (UPLOT_DIR / "LICENSE").read_text()
    assert "1.6.32" in (UPLOT_DIR / "uPlot.iife.min.js").read_text()[:100]


def test_the_eviction_runs_phases_are_marked_and_the_caption_names_only_what_is_drawn(tmp_path: Path) -> None:
    run, report = eviction_run(tmp_path)
    raw = json.loads((run / "raw.json").read_text())
    line = timeline(report)
    marks = [(m.label, m.kind) for m in line.marks]
    assert marks == [(label, "phase") for label in PHASES]
    assert [m.t for m in line.marks] == [round(m["t"] - raw["started"], 3) for m in raw["marks"]]
    assert all(0 <= m.t <= line.end for m in line.marks) and line.end >= report["duration_s"]
    assert set(line.panel_names()) >= {"latency", "client calls/s", "hit ratio", "memory", "evictions/s"}
    caption = line.caption()
    assert "the scenario's phases (" + "; ".join(PHASES) + ")" in caption
    assert "maxmemory_respected" in caption and "fault" not in caption and "shading" not in caption
    # The caption this report had before: it promised what an eviction run does not draw.
    old = "shaded spans are faults' error windows; dashed and dotted verticals are faults, circuit-breaker changes"
    assert not caption_promises_only_what_is_drawn(old, line)
    assert caption_promises_only_what_is_drawn(caption, line)
    bare = Timeline(line.title, line.end, line.panels, [], [])
    assert not any(word in bare.caption() for word in ("phase", "fault", "breaker", "shading", "labelled"))


def caption_promises_only_what_is_drawn(caption: str, line: Timeline) -> bool:
    kinds = {m.kind for m in line.marks}
    promised = {
        "fault": "fault" in caption,
        "breaker": "breaker" in caption,
        "phase": "phase" in caption,
        "window": "shad" in caption,
    }
    drawn = {kind: kind in kinds for kind in ("fault", "breaker", "phase")} | {"window": bool(line.windows)}
    return all(drawn[k] for k, said in promised.items() if said)


def test_charts_png_starts_rate_axes_at_zero_and_draws_the_phases(tmp_path: Path) -> None:
    run, report = eviction_run(tmp_path)
    assert (run / "charts.png").read_bytes().startswith(b"\x89PNG")
    line = timeline(report)
    fig = figure(line)
    axes = fig.axes[1:]  # under the strip that labels the marks
    by_panel = dict(zip(line.panel_names(), axes, strict=True))
    for name, ax in by_panel.items():
        if name != "latency":
            assert ax.get_ylim()[0] == 0, name
        verticals = {round(l.get_xdata()[0], 3) for l in ax.get_lines() if len(set(l.get_xdata())) == 1}  # noqa: E741
        assert {m.t for m in line.marks} <= verticals, name
        assert any(t in ax.get_ylabel() for t in ("µs", "calls/s", "errors/s", "ops/s", "%", "MiB", "evictions/s"))
    assert set(by_panel) >= RATE_PANELS
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert labels == PHASES
    # The check has teeth: matplotlib's own y range for the same calls/s starts well above zero.
    import matplotlib.pyplot as plt

    plain, ax = plt.subplots()
    panel = line.panels[line.panel_names().index("client calls/s")]
    ax.plot(panel.x, [v if v is not None else float("nan") for v in panel.series[0].values])
    assert ax.get_ylim()[0] > 0
    plt.close(plain)
    plt.close(fig)


def test_report_html_is_one_file_that_works_offline(tmp_path: Path) -> None:
    run, _ = eviction_run(tmp_path)
    html = (run / "report.html").read_text()
    # Nothing fetched: no script or style from elsewhere, the library and the data inline.
    assert not re.search(r"<script[^>]+src=|<link\b|@import|https?://(?!github\.com/leeoniya)", html)
    assert (UPLOT_DIR / "uPlot.iife.min.js").read_text() in html
    assert (paths.TEMPLATES_DIR / "report" / "charts.js").read_text() in html
    data = json.loads(re.search(r'<script type="application/json" id="timeline-data">(.*?)</script>', html, re.S)[1])
    assert [m["label"] for m in data["marks"]] == PHASES and len(data["panels"]) >= 6


# ----------------------------------------------------------------------------- report.html in Chromium

CHART_FACTS_JS = """(() => (window.reportCharts || []).map(u => ({
  panel: u.root.parentElement.dataset.panel,
  log: u.scales.y.distr === 3, yMin: u.scales.y.min, yMax: u.scales.y.max,
  xMin: u.scales.x.min, xMax: u.scales.x.max,
  axes: u.axes.map(a => a.label),
})))()"""

LEGENDS_JS = """(() => window.reportCharts.map(u => ({
  panel: u.root.parentElement.dataset.panel,
  rows: [...u.root.querySelectorAll('.u-legend tr.u-series')]
    .map(tr => [tr.querySelector('.u-label').textContent, tr.querySelector('.u-value').textContent]),
})))()"""

# Where a data point of a panel's first series is on the screen (the chart scrolled into view).
POINT_JS = """((panel, index) => {
  const u = window.reportCharts.find(c => c.root.parentElement.dataset.panel === panel);
  u.root.scrollIntoView({block: 'center'});
  const box = u.over.getBoundingClientRect();
  const t = u.data[0][index], value = u.data[1][index];
  return {x: box.left + u.valToPos(t, 'x'), y: box.top + u.valToPos(value, 'y'), t, value};
})"""

# Per chart: the share of the plot's height at time t where a mark's colour is drawn (a dotted line: ~40 %).
MARK_PIXELS_JS = """((t, rgb) => window.reportCharts.map(u => {
  const x = Math.round(u.valToPos(t, 'x', true)), {top, height} = u.bbox;
  const px = u.ctx.getImageData(x - 2, top, 5, height).data;
  const rows = new Set();
  for (let i = 0; i < px.length; i += 4) {
    if (px[i + 3] > 150 && [0, 1, 2].every(c => Math.abs(px[i + c] - rgb[c]) < 40)) rows.add(Math.floor(i / 20));
  }
  return rows.size / height;
}))"""

STRIP_JS = """(() => {
  const u = window.reportCharts[0], box = u.over.getBoundingClientRect();
  return [...document.querySelectorAll('#timeline-strip .mark-label')].map(e => ({
    text: e.textContent, kind: e.dataset.kind, t: Number(e.dataset.t),
    offset: e.getBoundingClientRect().left - (box.left + u.valToPos(Number(e.dataset.t), 'x')),
  }));
})()"""

UNITS = {"latency": "µs", "client calls/s": "calls/s", "client errors/s": "errors/s", "server ops/s": "ops/s",
         "hit ratio": "%", "memory": "MiB", "evictions/s": "evictions/s"}  # fmt: skip
PHASE_GREY = (85, 85, 85)  # charts.js MARK.phase, #555555
# Deliberately broken report.html variants: (what charts.js has, what the broken one has instead).
NO_UNITS = ('+ " " + unit;', ";")
NOT_FROM_ZERO = ("{range: zeroBased(panel)}", "{}")
NO_MARKS = ("draw: [drawMarks], ", "")


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cdp]:
    """One headless Chromium for the module's tests (skipped without one, except in CI)."""
    if CHROMIUM is None and not os.environ.get("CI"):
        pytest.skip(NO_CHROMIUM)
    with chromium_page(tmp_path_factory.mktemp("chromium"), window_size="1280,1000") as cdp:
        yield cdp


@pytest.fixture(scope="module")
def eviction_html(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    run, report = eviction_run(tmp_path_factory.mktemp("report"))
    return run / "report.html", report


def variant(html: Path, broken: tuple[str, str]) -> Path:
    """report.html with one deliberate fault in its chart script."""
    text = html.read_text()
    assert broken[0] in text, f"charts.js no longer has {broken[0]!r}: update the broken variant"
    path = html.with_name(f"broken-{abs(hash(broken))}.html")
    path.write_text(text.replace(broken[0], broken[1], 1))
    return path


def open_report(page: Cdp, html: Path) -> list[dict[str, Any]]:
    page.call("Page.navigate", url=html.as_uri())
    return wait_for("the charts to be drawn", lambda: page.evaluate(CHART_FACTS_JS), 20, 0.2)


def hover(page: Cdp, panel: str, index: int) -> tuple[dict[str, Any], dict[str, list[list[str]]]]:
    """Move the mouse onto a panel's data point, as a person does; the point and every chart's legend."""
    point = page.evaluate(f"{POINT_JS}({json.dumps(panel)}, {index})")
    page.call("Input.dispatchMouseEvent", type="mouseMoved", x=point["x"], y=point["y"])

    def legends() -> dict[str, list[list[str]]] | None:
        shown = {c["panel"]: c["rows"] for c in page.evaluate(LEGENDS_JS)}
        return shown if shown[panel][0][1] != "–" else None

    return point, wait_for("the legend to follow the mouse", legends, 10, 0.1)


def hover_problems(point: dict[str, Any], legends: dict[str, list[list[str]]], panel: str, unit: str) -> list[str]:
    """What is wrong with the readout after hovering `panel`'s point: empty is right."""
    problems = []
    time_label, time_value = legends[panel][0]
    if (time_label, time_value) != ("time", f"{point['t']:.1f} s"):
        problems.append(f"{panel}: time shows {time_value!r}, the point is at {point['t']:.1f} s")
    if legends[panel][1][1] != f"{point['value']:,.0f} {unit}":
        problems.append(f"{panel}: shows {legends[panel][1][1]!r} for {point['value']:,.0f} {unit}")
    for name, rows in legends.items():  # the other charts follow the same time, every figure with its unit
        values = [v for _, v in rows[1:] if v != "–"]
        if rows[0][1] == "–" or not values or not all(v.endswith(" " + UNITS[name]) for v in values):
            problems.append(f"{name}: {rows}")
    return problems


def test_hovering_a_chart_shows_the_time_and_every_value_with_its_unit(
    page: Cdp, eviction_html: tuple[Path, dict[str, Any]]
) -> None:
    html, report = eviction_html
    open_report(page, html)
    index = len(report["client_series"]) // 2 + 1  # a point mid-run (index 0 is the axis's 0 s)
    point, legends = hover(page, "client calls/s", index)
    assert set(legends) == set(UNITS) and point["value"] > 0
    assert hover_problems(point, legends, "client calls/s", "calls/s") == []
    assert point["t"] == pytest.approx(report["client_series"][index - 1]["t"] - report["started"], abs=1e-3)
    # Broken: figures without units. The same check catches it.
    open_report(page, variant(html, NO_UNITS))
    point, legends = hover(page, "client calls/s", index)
    assert hover_problems(point, legends, "client calls/s", "calls/s")


def test_rate_and_memory_axes_start_at_zero_and_every_axis_has_its_unit(
    page: Cdp, eviction_html: tuple[Path, dict[str, Any]]
) -> None:
    html, report = eviction_html
    charts = open_report(page, html)
    assert {c["panel"] for c in charts} == set(UNITS)
    for chart in charts:
        assert chart["axes"][0] == "seconds since the run started", chart
        assert UNITS[chart["panel"]] in chart["axes"][1], chart
        assert chart["xMin"] == 0 and chart["xMax"] >= report["duration_s"], chart
        assert chart["log"] if chart["panel"] == "latency" else chart["yMin"] == 0, chart
    assert {c["panel"] for c in charts if c["yMin"] == 0} >= RATE_PANELS
    # Broken: uPlot's own y range, which hugs the data.
    broken = open_report(page, variant(html, NOT_FROM_ZERO))
    assert {c["panel"] for c in broken if not c["log"] and c["yMin"] != 0} & RATE_PANELS


def test_eviction_phases_are_drawn_on_every_chart_and_labelled(
    page: Cdp, eviction_html: tuple[Path, dict[str, Any]]
) -> None:
    html, report = eviction_html
    open_report(page, html)
    labels = page.evaluate(STRIP_JS)
    assert [(label["text"], label["kind"]) for label in labels] == [(p, "phase") for p in PHASES]
    assert all(abs(label["offset"]) < 2 for label in labels), "each label starts at its line"
    caption = page.evaluate("document.getElementById('timeline-caption').textContent")
    assert "the scenario's phases" in caption and all(p in caption for p in PHASES)

    def drawn(phases: list[dict[str, Any]]) -> list[list[float]]:
        return [page.evaluate(f"{MARK_PIXELS_JS}({label['t']}, {list(PHASE_GREY)})") for label in phases]

    shares = drawn(labels)
    assert all(share > 0.2 for per_chart in shares for share in per_chart), shares
    # Broken: the charts without their marks (the labels alone would still be there).
    open_report(page, variant(html, NO_MARKS))
    assert len(page.evaluate(STRIP_JS)) == len(PHASES)
    assert all(share < 0.05 for per_chart in drawn(labels) for share in per_chart)


def test_a_figure_that_is_not_a_number_is_a_gap_not_broken_json(tmp_path: Path) -> None:
    """JSON has no NaN: one in the data would stop the page's script from parsing any of it."""
    _, report = eviction_run(tmp_path)
    report["server"]["series"][3]["hit_ratio"] = float("nan")
    report["server"]["series"][4]["ops_per_s"] = float("inf")
    data = json.dumps(timeline(report).as_json(), allow_nan=False)  # raises on NaN or inf
    panels = {p["title"]: p for p in json.loads(data)["panels"]}
    assert panels["hit ratio"]["series"][0]["values"][3] is None
    assert panels["server ops/s"]["series"][0]["values"][4] is None
