"""charts.png: the run's timeline (report/timeline.py) as one static figure, for CI artifacts
and the README. report.html draws the same timeline interactively (templates/report/charts.js)."""

from __future__ import annotations

import io
import math
from typing import Any

from redis_harness.report.timeline import RED, Panel, Timeline

LABEL_CHARS = 40
MARK_STYLE = {"fault": (RED, "--"), "breaker": ("#ff7f0e", ":"), "phase": ("#555555", ":")}
LINE_STYLE = {"solid": "-", "dotted": ":", "dashed": "--"}


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def _draw(ax: Any, panel: Panel) -> None:
    for s in panel.series:
        values = [math.nan if v is None else v for v in s.values]
        # The latency panel's p50s share their p99's colour: the legend names the p99s only.
        label = "_" + s.label if panel.log and s.style == "dotted" else s.label
        ax.plot(panel.x, values, color=s.colour, linestyle=LINE_STYLE[s.style], label=label)
    for t in panel.thresholds:
        ax.axhline(t.value, color=RED, linewidth=1.5, linestyle="--", label=t.label)
    if panel.log:
        ax.set_yscale("log")
    else:  # from zero; the top as autoscaled to every series and threshold, or fixed (100 %)
        ax.set_ylim(bottom=0, top=panel.top)
    axis = panel.axis + ("\np99 solid, p50 dotted" if panel.log else "")
    ax.set_ylabel(axis.replace(", ", "\n", 1), fontsize=8)
    if len(panel.series) > 1 or panel.thresholds:
        ax.legend(fontsize=6, ncol=3, loc="upper left")


def figure(timeline: Timeline) -> Any:
    """One matplotlib figure, a panel per row under a strip that labels the marks and error windows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels, marks, windows = timeline.panels, timeline.marks, timeline.windows
    strip = 1 if marks or windows else 0
    rows = strip + max(1, len(panels))
    heights = [0.5 + 0.22 * min(len(marks) + len(windows), 6)] * strip + [2.2] * max(1, len(panels))
    fig, grid = plt.subplots(
        rows, 1, figsize=(10, sum(heights) + 0.9), sharex=True, gridspec_kw={"height_ratios": heights}, squeeze=False
    )
    axes = list(grid[:, 0])
    plots = axes[strip:]
    if not panels:
        plots[0].text(0.5, 0.5, "no figures were recorded", ha="center", va="center", transform=plots[0].transAxes)
    for panel, ax in zip(panels, plots, strict=False):
        _draw(ax, panel)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.set_xlim(0, timeline.end or 1)
        for w in windows:
            ax.axvspan(w.begin, w.end, color=RED, alpha=0.12)
        for m in marks:
            colour, style = MARK_STYLE[m.kind]
            ax.axvline(m.t, color=colour, linestyle=style, alpha=0.8)
    if strip:
        top = axes[0]
        top.set_yticks([])
        top.set_ylim(0, 1)
        labels = sorted(
            [(w.begin, w.label, RED) for w in windows] + [(m.t, m.label, MARK_STYLE[m.kind][0]) for m in marks]
        )
        lanes = max(1, min(len(labels), 6))
        for n, (t, label, colour) in enumerate(labels):
            top.annotate(
                _short(label),
                (t, 1 - (n % lanes + 0.6) / lanes),
                xycoords=("data", "axes fraction"),
                color=colour,
                fontsize=7,
                va="center",
                bbox={"facecolor": "white", "alpha": 0.8, "linewidth": 0, "pad": 1},
            )
        top.set_ylabel("marks", rotation=0, ha="right", va="center")
    axes[-1].set_xlabel("seconds since the run started")
    fig.suptitle(timeline.title)
    fig.tight_layout(rect=(0, 0, 1, 0.98))  # room for the title above the strip
    return fig


def png(timeline: Timeline) -> bytes:
    import matplotlib.pyplot as plt

    fig = figure(timeline)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=80)
    plt.close(fig)
    return out.getvalue()
