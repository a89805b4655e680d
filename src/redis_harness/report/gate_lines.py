"""A gate verdict as people read it: rounded values with their unit, and where to look when it fails.

report.json keeps the raw numbers (ratios, seconds); the terminal summary,
report.html and the web UI show them in these words. Every gate in
report.gates.GATES has an entry (a unit test holds new gates to it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from redis_harness.report.saturation import LATENCY_NOTE, is_saturated
from redis_harness.terminal import MAX_WIDTH, wrapped

INDENT = "     "  # under `gate `: a gate's continuation, hint and note lines
LOOK_AT_PREFIX = f"{INDENT}look at: "
NOTE_PREFIX = f"{INDENT}note: "
LOOK_AT_WIDTH = MAX_WIDTH - len(LOOK_AT_PREFIX)  # the hint fits a 100-column terminal on one line


Place = Literal["terminal", "html"]


@dataclass(frozen=True)
class Hint:
    """Where to look when a gate fails, worded for each place from one source.

    `figure` is found in report.html's section `section` (one of its headings); `above` says the terminal
    summary shows it too, above the gate lines. The terminal says `the errors column above (Commands in
    report.html)`, report.html itself `the errors column in Commands`; `then` follows in both.
    """

    section: str
    figure: str = ""  # "" : the whole section
    above: bool = False
    then: str = ""

    def text(self, place: Place) -> str:
        if place == "html":
            where = f"{self.figure} in {self.section}" if self.figure else f"the {self.section} table"
        elif self.figure:
            where = f"{self.figure} {'above ' if self.above else ''}({self.section} in report.html)"
        else:
            where = f"{self.section} in report.html"
        return where + self.then


@dataclass(frozen=True)
class GateFormat:
    unit: str  # percent | ms | s | per_s | count | flag
    at_least: bool = False  # the value must reach the threshold (evictions_seen), instead of stay under it
    noun: str = ""  # what a count counts ("keys lost")
    # The figure to read and where it is; the terminal's wording fits LOOK_AT_WIDTH (one line).
    hint: Hint | None = None
    # The gate judges latency measured by the generator: a saturated generator makes the figure its own.
    latency: bool = False

    def look_at(self, place: Place = "terminal") -> str:
        return self.hint.text(place) if self.hint else ""


GATE_FORMATS: dict[str, GateFormat] = {
    "error_rate": GateFormat(
        "percent", hint=Hint("Commands", "the errors column", above=True, then=", the charts under Over time")
    ),
    "error_rate_except_oom": GateFormat(
        "percent", hint=Hint("Commands", "the errors column", above=True, then=", less -OOM refusals (Server)")
    ),
    "oom_refusals_seen": GateFormat(
        "count",
        at_least=True,
        noun="writes refused with -OOM",
        hint=Hint("Server", "peak used_memory vs maxmemory", then=": maxmemory was never reached"),
    ),
    "slow_updates": GateFormat(
        "ms",
        latency=True,
        hint=Hint("Commands", "the p99 µs of the updates", above=True, then=", latency under Over time"),
    ),
    "miss_ratio": GateFormat(
        "percent", hint=Hint("Hit ratio", "the client hit ratios", above=True, then="; the profile's ttl: section")
    ),
    "memory": GateFormat(
        "percent", hint=Hint("Server", "peak used_memory vs maxmemory", then=", memory under Over time")
    ),
    "eviction_rate": GateFormat("per_s", hint=Hint("Server", "peak evictions/s", then=", evictions under Over time")),
    "no_oom_kill": GateFormat(
        "flag", hint=Hint("Server", "container memory / limit", then="; lower memory.maxmemory_ratio")
    ),
    "maxmemory_respected": GateFormat(
        "percent", hint=Hint("Server", "peak used_memory vs maxmemory", then=", memory under Over time")
    ),
    "persistent_keys_survive": GateFormat(
        "count",
        noun="keys without TTL lost",
        hint=Hint("Eviction", then="; memory.policy must evict only keys with a TTL (volatile-*)"),
    ),
    "evictions_seen": GateFormat(
        "count",
        at_least=True,
        noun="keys evicted",
        hint=Hint("Server", "evicted keys", then=", memory under Over time: maxmemory never reached"),
    ),
    "recovery_window": GateFormat(
        "s", hint=Hint("Faults", "the error window", above=True, then=", the charts' fault mark")
    ),
    "acked_writes_kept": GateFormat(
        "count",
        noun="acknowledged writes lost",
        hint=Hint("Faults", "acked writes lost", then="; the topology's min_replicas_to_write"),
    ),
    "acked_loss_bounded": GateFormat(
        "s",
        hint=Hint("Faults", "acked writes lost", then="; min_replicas_max_lag sets the bound"),
    ),
    "new_primary_elected": GateFormat(
        "s", hint=Hint("Faults", then="; Sentinel's down_after or Cluster's node_timeout set the pace")
    ),
    "generator_headroom": GateFormat(
        "percent", hint=Hint("Load generator", then="; fewer users per process, more --workers, or --rate")
    ),
}

_SCALE = {"percent": 100.0, "ms": 1000.0, "s": 1.0, "per_s": 1.0, "count": 1.0}
_SUFFIX = {"percent": " %", "ms": " ms", "s": " s", "per_s": "/s", "count": ""}


def _number(x: float, decimals: int) -> str:
    text = f"{x:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _decimals(x: float) -> int:
    """Rounded for reading: 130, 83, 2.7, 0.4, 0.027."""
    x = abs(x)
    if x >= 10 or x == 0:
        return 0
    if x >= 1:
        return 1
    decimals = 1
    while decimals < 6 and round(x, decimals) == 0:
        decimals += 1
    return decimals + 1 if decimals > 1 else decimals


def _pair(value: float, threshold: float) -> tuple[str, str]:
    """Both numbers rounded alike; more digits when rounding would make a failing value look equal."""
    decimals = max(_decimals(value), _decimals(threshold))
    a, b = _number(value, decimals), _number(threshold, decimals)
    while a == b and value != threshold and decimals < 6:
        decimals += 1
        a, b = _number(value, decimals), _number(threshold, decimals)
    return a, b


def comparison(name: str, gate: dict[str, Any]) -> str:
    """`130 ms > 100 ms`: the value against the threshold, with its unit and how it compares."""
    fmt = GATE_FORMATS[name]
    value, threshold = gate["value"], gate["threshold"]
    if fmt.unit == "flag":
        return "not OOM-killed" if not value else "OOM-killed by the kernel"
    if value is None:
        return "not measured"
    scale, suffix = _SCALE[fmt.unit], _SUFFIX[fmt.unit]
    if threshold is None:
        return _number(value * scale, _decimals(value * scale)) + suffix
    shown_value, shown_threshold = _pair(value * scale, threshold * scale)
    reached = value >= threshold if fmt.at_least else value <= threshold
    relation = (">=" if reached else "<") if fmt.at_least else ("<=" if reached else ">")
    noun = f"{fmt.noun} " if fmt.noun else ""
    return f"{noun}{shown_value}{suffix} {relation} {shown_threshold}{suffix}"


@dataclass(frozen=True)
class GateVerdict:
    """A gate's verdict as every view shows it (terminal, report.html, web UI)."""

    name: str
    passed: bool
    comparison: str  # `130 ms > 100 ms`
    detail: str  # what was measured, from report.json
    look_at: str | None = None  # a failed gate: the figure to read, and where, worded for the terminal
    note: str | None = None  # a failed latency gate on a saturated generator: the figure is probably its own
    look_at_html: str | None = None  # the same hint worded for report.html (and the web UI): no "above"
    judged: bool = True  # False: the run lacked the figures (a target without admin): neither pass nor FAIL

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def verdict(gate: dict[str, Any], *, saturated: bool = False) -> GateVerdict:
    """One gate of report.json's `gates` in words; `saturated` is the run's generator verdict."""
    name, passed = gate["name"], bool(gate["passed"])
    fmt = GATE_FORMATS[name]
    if not gate.get("judged", True):
        return GateVerdict(name=name, passed=False, comparison="not judged", detail=gate["detail"], judged=False)
    return GateVerdict(
        name=name,
        passed=passed,
        comparison=comparison(name, gate),
        detail=gate["detail"],
        look_at=None if passed else fmt.look_at("terminal"),
        note=LATENCY_NOTE if not passed and fmt.latency and saturated else None,
        look_at_html=None if passed else fmt.look_at("html"),
    )


def verdicts(report: dict[str, Any]) -> list[GateVerdict]:
    """Every gate of a report, in words."""
    saturated = is_saturated(report)
    return [verdict(gate, saturated=saturated) for gate in report["gates"]]


def verdict_lines(v: GateVerdict, width: int = MAX_WIDTH) -> list[str]:
    """The verdict line (continued under it when long), and for a failed gate where to look and the note."""
    shown = "pass" if v.passed else "FAIL" if v.judged else "n/a "
    lines = wrapped(f"gate {v.name:<24} {shown}  {v.comparison}  ({v.detail})", INDENT, width)
    if v.look_at:
        lines += wrapped(v.look_at, " " * len(LOOK_AT_PREFIX), width, LOOK_AT_PREFIX)
    if v.note:
        lines += wrapped(v.note, " " * len(NOTE_PREFIX), width, NOTE_PREFIX)
    return lines


def gate_lines(gate: dict[str, Any], *, saturated: bool = False, width: int = MAX_WIDTH) -> list[str]:
    """The verdict line, and when it failed a second line saying what to look at (and a note when its
    latency figure is probably the saturated generator's)."""
    return verdict_lines(verdict(gate, saturated=saturated), width)
