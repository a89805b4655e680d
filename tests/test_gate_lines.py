"""Gate lines as people read them: rounded values with their unit, and where to look when a gate fails."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from redis_harness.report.gate_lines import GATE_FORMATS, LOOK_AT_PREFIX, Hint, comparison, gate_lines, verdict
from redis_harness.report.gates import GATES, evaluate
from redis_harness.report.text import summary

from .test_gates import ALERTS, BREAKERS, healthy_report

# Per gate: (the healthy report's comparison, the broken report's comparison), with ALERTS of profiles/ci.yaml.
EXPECTED = {
    "error_rate": ("0 % <= 1 %", "9.1 % > 1 %"),
    "error_rate_except_oom": ("0 % <= 1 %", "8.6 % > 1 %"),
    "oom_refusals_seen": ("writes refused with -OOM 5 >= 1", "writes refused with -OOM 0 < 1"),
    "slow_updates": ("0.8 ms <= 100 ms", "250 ms > 100 ms"),
    "miss_ratio": ("5 % <= 20 %", "50 % > 20 %"),
    "memory": ("11 % <= 80 %", "95 % > 80 %"),
    "eviction_rate": ("0/s <= 100/s", "5,000/s > 100/s"),
    "no_oom_kill": ("not OOM-killed", "OOM-killed by the kernel"),
    "maxmemory_respected": ("11 % <= 110 %", "200 % > 110 %"),
    "persistent_keys_survive": ("keys without TTL lost 0 <= 0", "keys without TTL lost 1 > 0"),
    "evictions_seen": ("keys evicted 10 >= 1", "keys evicted 0 < 1"),
    "recovery_window": ("1.2 s <= 30 s", "31 s > 30 s"),
    "acked_writes_kept": ("acknowledged writes lost 0 <= 0", "acknowledged writes lost 1 > 0"),
    "acked_loss_bounded": ("0 s <= 3 s", "3.2 s > 3 s"),
    "new_primary_elected": ("4.2 s <= 30 s", "not measured"),
    "generator_headroom": ("5 % <= 10 %", "50 % > 10 %"),
}


def test_every_gate_has_a_format_and_an_expected_line() -> None:
    assert set(GATE_FORMATS) == set(GATES) == set(EXPECTED)


def words(text: str) -> str:
    return " ".join(text.split())


def verdict_and_hint(lines: list[str]) -> tuple[str, list[str]]:
    """The verdict line with its continuation lines joined, and the lines from `look at:` on."""
    hint = next((i for i, line in enumerate(lines) if line.startswith(LOOK_AT_PREFIX)), len(lines))
    return words(" ".join(lines[:hint])), lines[hint:]


@pytest.mark.parametrize("name", sorted(GATES))
def test_gate_line_rounds_with_its_unit_and_says_where_to_look_when_it_fails(name: str) -> None:
    healthy_text, broken_text = EXPECTED[name]
    (gate,) = evaluate(healthy_report(), ALERTS, (name,))
    lines = gate_lines(gate.as_dict())
    assert comparison(name, gate.as_dict()) == healthy_text
    assert lines[0].startswith(f"gate {name:<24} pass  {healthy_text}")
    assert verdict_and_hint(lines) == (words(f"gate {name} pass {healthy_text} ({gate.detail})"), [])
    assert all(len(line) <= 100 for line in lines)

    broken = copy.deepcopy(healthy_report())
    BREAKERS[name](broken)
    (gate,) = evaluate(broken, ALERTS, (name,))
    lines = gate_lines(gate.as_dict())
    assert lines[0].startswith(f"gate {name:<24} FAIL  {broken_text}")
    verdict_text, hint = verdict_and_hint(lines)
    assert verdict_text == words(f"gate {name} FAIL {broken_text} ({gate.detail})")
    assert hint == [LOOK_AT_PREFIX + GATE_FORMATS[name].look_at("terminal")]  # one line, at most 100 columns
    assert all(len(line) <= 100 for line in lines)
    assert "report.html" in hint[0]  # where in the report to look
    # report.html (and the web UI) get the same hint worded for where they are.
    shown = verdict(gate.as_dict())
    assert shown.look_at == GATE_FORMATS[name].look_at("terminal")
    assert shown.look_at_html == GATE_FORMATS[name].look_at("html")
    assert "report.html" not in shown.look_at_html and " above" not in shown.look_at_html
    assert verdict(evaluate(healthy_report(), ALERTS, (name,))[0].as_dict()).look_at_html is None


REPORT_TEMPLATE = Path(__file__).parents[1] / "templates" / "report" / "report.html.j2"


def _headings() -> set[str]:
    """report.html's section headings, without a unit in brackets (`Commands (µs)` is Commands)."""
    return {re.sub(r" \(.*\)$", "", h) for h in re.findall(r"<h2>(.*?)</h2>", REPORT_TEMPLATE.read_text())}


def test_every_hint_names_a_section_report_html_has() -> None:
    sections = {name: fmt.hint.section for name, fmt in GATE_FORMATS.items() if fmt.hint}
    assert set(sections) == set(GATES)
    assert set(sections.values()) <= _headings()


def test_a_hint_is_worded_for_the_terminal_and_for_report_html_from_one_source() -> None:
    hint = Hint("Commands", "the p99 µs of the updates", above=True, then=", latency under Over time")
    assert hint.text("terminal") == "the p99 µs of the updates above (Commands in report.html), latency under Over time"
    assert hint.text("html") == "the p99 µs of the updates in Commands, latency under Over time"
    section = Hint("Faults", then="; Sentinel's down_after sets the pace")
    assert section.text("terminal") == "Faults in report.html; Sentinel's down_after sets the pace"
    assert section.text("html") == "the Faults table; Sentinel's down_after sets the pace"
    # A section report.html lacks is caught: the heading check fails on a hint that names one.
    assert "Latency" not in _headings()


def test_rounding_never_makes_a_failing_value_look_like_its_threshold() -> None:
    gate = {"name": "slow_updates", "passed": False, "value": 0.1004, "threshold": 0.1, "detail": ""}
    assert comparison("slow_updates", gate) == "100.4 ms > 100 ms"
    gate = {"name": "memory", "passed": False, "value": 0.80001, "threshold": 0.8, "detail": ""}
    assert comparison("memory", gate) == "80.001 % > 80 %"


def test_small_values_keep_two_significant_digits() -> None:
    gate = {"name": "error_rate", "passed": True, "value": 0.004, "threshold": 0.01, "detail": ""}
    assert comparison("error_rate", gate) == "0.4 % <= 1 %"
    gate = {"name": "slow_updates", "passed": True, "value": 0.0000266, "threshold": 0.1, "detail": ""}
    assert comparison("slow_updates", gate) == "0.027 ms <= 100 ms"


def test_summary_prints_the_gate_lines_and_report_json_keeps_the_raw_numbers(tmp_path: Path) -> None:
    broken = copy.deepcopy(healthy_report())
    BREAKERS["slow_updates"](broken)
    gates = evaluate(broken, ALERTS, ("slow_updates", "memory"))
    report = {
        **broken,
        "scenario": "smoke",
        "profile": "ci",
        "duration_s": 10.0,
        "throughput_ops_s": 110.0,
        "faults": [],
        "gates": [g.as_dict() for g in gates],
        "passed": False,
    }
    for c in report["commands"].values():
        c.update(p50_us=1, p999_us=1, max_us=1)
    text = summary(report, tmp_path)
    assert "gate slow_updates             FAIL  250 ms > 100 ms  (slowest update p99: SET price)" in text
    assert f"{LOOK_AT_PREFIX}the p99 µs of the updates above" in text
    assert "gate memory                   pass  11 % <= 80 %" in text
    assert report["gates"][0]["value"] == 0.25 and report["gates"][0]["threshold"] == ALERTS.slow_update_s
