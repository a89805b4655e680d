"""The terminal summary says what limited the figures and fits the terminal.

A saturated generator is named (process, CPU, share of the run) under the
verdict, and a failed latency gate says its figure is probably the
generator's; an open-loop run shows latency from the intended start beside
the service time. Every line fits 100 columns, however long the request
names and however big the numbers, and the columns stay aligned. Each
statement is also shown absent when its condition is false.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from redis_harness.report.gate_lines import GATE_FORMATS, LOOK_AT_PREFIX, NOTE_PREFIX, verdicts
from redis_harness.report.gates import GATES, evaluate
from redis_harness.report.saturation import LATENCY_NOTE
from redis_harness.report.text import request_table, summary

from .test_gates import ALERTS, BREAKERS, healthy_report

# Every request name the service scenarios record (the longest first), as in a real smoke run.
NAMES = [
    "PIPELINE ratelimit-sliding", "PIPELINE ratelimit-fixed", "cache.write_quotes price", "cache.get historical",
    "cache.on_price price", "cache.get liquidity", "PIPELINE calc-bulk", "cache.get volume", "cache.get price",
    "HGETALL calc", "LOCK acquire", "LOCK release", "EXPIRE calc", "HSET calc", "SET price", "GET price",
]  # fmt: skip
WORKERS = ["worker vm_1c22946a13374a809e3c3cb6de2e9057", "worker vm_a9c8d0ae4bf741ec9e9430b3f7938cee"]


# A smoke run's figures on this host (cache.get price, saturated generator); a scale of 1,000 gives
# hours-long soak counts and stalls of over a minute.
SMOKE = {"count": 7_469, "errors": 0, "p50_us": 1_673, "p90_us": 2_001, "p99_us": 7_195, "p999_us": 69_119,
         "max_us": 80_447}  # fmt: skip
INTENDED = {"p50_us": 2_253, "p99_us": 120_063}
# How late the generator woke paced calls (smoke --rate 1500 on this host, a quiet moment).
LATE = {"count": 13_468, "p50_us": 437, "p99_us": 2_656, "max_us": 41_049}


def figures(scale: int, base: dict[str, int] = SMOKE) -> dict[str, Any]:
    return {key: value * scale for key, value in base.items()}


def make_report(*, saturated: bool, paced: bool, scale: int = 1, gates: tuple[str, ...] = ()) -> dict[str, Any]:
    """A report.json as analysis.build writes it (the fields the summary reads)."""
    commands = {}
    for name in NAMES:
        commands[name] = figures(scale)
        if paced:
            commands[name]["intended"] = {**figures(scale), **figures(scale, INTENDED)}
    share = 0.933 if saturated else 0.0
    processes = [{"role": "master", "cpu_p50": 1.0, "cpu_max": 2.1, "cpu_over_90_share": 0.0, "samples": 30}] + [
        {
            "role": role,
            "cpu_p50": 56.9 + i,
            "cpu_max": 79.0,
            "cpu_over_90_share": max(0.0, share - i / 10),
            "samples": 30,
        }
        for i, role in enumerate(WORKERS)
    ]
    base = healthy_report()
    report = {
        **base,
        "scenario": "cache-latency",
        "profile": "verdict-long-profile-name",
        "duration_s": 600.0,
        "throughput_ops_s": 123_456.7 * scale,
        "settings": {"users": 500, "spawn_rate": 50, "rate": 120_000.0 if paced else 0.0, "workers": 2},
        "commands": commands,
        "library_calls": {
            call: {part: figures(scale) for part in ("total", "redis", "origin", "library")}
            for call in NAMES
            if call.startswith("cache.")
        },
        "hit_ratio": {
            "client": {
                "calc": 1.0,
                "historical": 0.905,
                "liquidity": 0.975,
                "price": 0.964,
                "volume": 0.948,
                "all": 0.967,
            },  # fmt: skip
            "server": 0.971,
        },
        "faults": [
            {
                **base["faults"][0],
                "kind": "partition",
                "error_window_s": 12.34,
                "p99_recovery_s": None,
                "hit_ratio_recovery_s": 23.45,
                "acked_writes_lost": 1_234,
            },  # fmt: skip
        ],
        "generator": {
            "processes": processes,
            "saturated": saturated,
            "late_start": figures(scale, LATE) if paced else None,
        },
        "prometheus_alerts": [
            {"name": name, "node": f"redis-{i}", "first_s": 12.3 * i, "last_s": 45.6 * i}
            for i, name in enumerate(["RedisMemoryHigh", "RedisEvictions", "RedisMissRatioHigh", "RedisDown"])
        ],
    }
    gate_objects = evaluate(report, ALERTS, gates)
    report["gates"] = [g.as_dict() for g in gate_objects]
    report["passed"] = all(g.passed for g in gate_objects)
    return report


def broken(report: dict[str, Any], *names: str) -> dict[str, Any]:
    """The report with the named gates' figures broken, re-judged."""
    report = copy.deepcopy(report)
    for name in names:
        BREAKERS[name](report)
    gate_objects = evaluate(report, ALERTS, tuple(g["name"] for g in report["gates"]))
    report["gates"] = [g.as_dict() for g in gate_objects]
    report["passed"] = all(g.passed for g in gate_objects)
    return report


def lines_of(report: dict[str, Any], run_dir: Path, width: int = 100) -> list[str]:
    return summary(report, run_dir, width).splitlines()


def columns_end(line: str) -> list[int]:
    """Where each cell of a table line ends (cells are apart by two spaces or more)."""
    return [m.end() for m in re.finditer(r"\S+(?: \S+)*", line)]


def table_lines(lines: list[str], first: str) -> list[str]:
    """The header line starting with `first` and the rows under it, up to the next non-table line."""
    start = next(i for i, line in enumerate(lines) if line.startswith(first))
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith(("hit ratio", "gate ", "fault ", "library call")) or re.match(r"^ +p50 µs", line):
            break
        rows.append(line)
    return [lines[start], *rows]


# ----------------------------------------------------------------------------- saturation


def test_a_saturated_generator_is_named_under_the_verdict(tmp_path: Path) -> None:
    lines = lines_of(make_report(saturated=True, paced=False), tmp_path)
    text = " ".join(" ".join(lines[1:5]).split())  # the statement, wrapped over lines 2-5
    assert lines[1].startswith("generator saturated: ")
    # Which process, how busy for how much of the run, its CPU; then every other saturated one.
    assert "worker vm_1c22946a busy above 90 % for 93 % of the run (CPU p50 57 %, max 79 %)" in text
    assert "worker vm_a9c8d0ae busy above 90 % for 83 % of the run (CPU p50 58 %, max 79 %)" in text
    assert "the latency figures are the generator's as much as Redis's; use fewer users per process" in text
    assert "master" not in text  # a process that kept up is not blamed
    assert lines.index(next(line for line in lines if line.startswith("request"))) > 1  # before the latencies


def test_a_generator_that_kept_up_claims_no_saturation(tmp_path: Path) -> None:
    text = summary(make_report(saturated=False, paced=False), tmp_path)
    assert "saturated" not in text and "generator's" not in text
    lines = text.splitlines()
    assert lines[1].startswith("generator kept up: ")
    # the busiest process by its CPU, since none was above 90 %
    kept_up = " ".join(" ".join(lines[1:3]).split())
    assert "worker vm_a9c8d0ae (the busiest) busy above 90 % for 0 % of the run (CPU p50 58 %, max 79 %)" in kept_up


def test_the_generator_line_is_left_out_when_its_gate_says_it_or_nothing_was_sampled(tmp_path: Path) -> None:
    judged = make_report(saturated=False, paced=False, gates=("generator_headroom",))
    text = summary(judged, tmp_path)
    assert "generator kept up" not in text and "gate generator_headroom       pass" in text
    unsampled = make_report(saturated=False, paced=False)
    unsampled["generator"] = {"processes": [], "saturated": False}
    assert "generator" not in summary(unsampled, tmp_path).rsplit("\nreport: ", 1)[0]


def test_a_failed_latency_gate_on_a_saturated_generator_says_whose_figure_it_probably_is(tmp_path: Path) -> None:
    report = broken(make_report(saturated=True, paced=False, gates=("slow_updates", "memory")), "slow_updates")
    lines = lines_of(report, tmp_path)
    gate = next(i for i, line in enumerate(lines) if line.startswith("gate slow_updates"))
    assert "FAIL" in lines[gate] and lines[gate + 1].startswith(LOOK_AT_PREFIX)
    note = " ".join(line.strip() for line in lines[gate + 2 : gate + 4])
    assert lines[gate + 2].startswith(NOTE_PREFIX) and note == "note: " + LATENCY_NOTE
    assert "fewer users per process, more --workers, or a --rate" in note


@pytest.mark.parametrize(
    "saturated, breaks",
    [(False, ("slow_updates",)), (True, ()), (True, ("memory",))],
    ids=["generator kept up", "latency gate passed", "failed gate judges no latency"],
)
def test_no_generator_note_unless_a_latency_gate_failed_on_a_saturated_generator(
    tmp_path: Path, saturated: bool, breaks: tuple[str, ...]
) -> None:
    report = broken(make_report(saturated=saturated, paced=False, gates=("slow_updates", "memory")), *breaks)
    assert any(not g["passed"] for g in report["gates"]) == bool(breaks)
    text = summary(report, tmp_path)
    assert NOTE_PREFIX not in text and "probably" not in text


def test_only_slow_updates_judges_latency() -> None:
    """The note follows GateFormat.latency; a new gate judging latency must say so there."""
    assert {name for name, fmt in GATE_FORMATS.items() if fmt.latency} == {"slow_updates"}
    report = broken(make_report(saturated=True, paced=False, gates=tuple(GATES)), *BREAKERS)
    noted = {v.name for v in verdicts(report) if v.note}
    assert noted == {"slow_updates"}


# ----------------------------------------------------------------------------- --rate


def test_an_open_loop_run_shows_latency_from_the_intended_start_beside_service_time(tmp_path: Path) -> None:
    lines = lines_of(make_report(saturated=False, paced=True), tmp_path)
    assert "open loop at 120,000 ops/s" in lines[0]
    head = next(i for i, line in enumerate(lines) if line.startswith("request"))
    groups, header, row = lines[head - 1], lines[head], lines[head + 1]
    assert "service time" in groups and groups.endswith("from intended start")
    assert header.split()[-4:] == ["p50", "µs", "p99", "µs"]
    assert row.startswith("PIPELINE ratelimit-sliding") and row.split()[-2:] == ["2,253", "120,063"]
    assert row.split()[-6:-2] == ["1,673", "7,195", "69,119", "80,447"]  # service time: p50 p99 p99.9 max


def test_a_closed_loop_run_shows_service_time_only(tmp_path: Path) -> None:
    text = summary(make_report(saturated=False, paced=False), tmp_path)
    assert "intended" not in text and "service time" not in text and "open loop" not in text
    assert "generator timing" not in text


@pytest.mark.parametrize("scale", [1, 1000], ids=["smoke figures", "a thousand times bigger"])
def test_an_open_loop_run_says_how_late_the_generator_woke_its_calls(tmp_path: Path, scale: int) -> None:
    """What the generator itself adds to the latency from the intended start, under the verdict."""
    lines = lines_of(make_report(saturated=False, paced=True, scale=scale), tmp_path)
    timing = next(i for i, line in enumerate(lines) if line.startswith("generator timing: "))
    said = " ".join(" ".join(lines[timing : timing + 2]).split())
    woke = {1: "p50 437 µs, p99 2.7 ms, max 41 ms", 1000: "p50 437 ms, p99 2,656 ms, max 41 s"}[scale]
    assert said.startswith(f"generator timing: paced calls woke {woke} after their intended start; ")
    assert "the latency from intended start includes this" in said
    assert lines[timing - 1].startswith("generator kept up: ") or lines[timing - 2].startswith("generator kept up: ")
    assert timing < next(i for i, line in enumerate(lines) if line.startswith("request"))
    assert all(len(line) <= 80 for line in summary(make_report(saturated=False, paced=True), tmp_path, 80).splitlines())
    # A saturated generator's calls queue without waiting for their slot: its statement says it all.
    assert "generator timing" not in summary(make_report(saturated=True, paced=True, scale=scale), tmp_path)


# ----------------------------------------------------------------------------- width


@pytest.mark.parametrize("scale", [1, 1000], ids=["smoke figures", "a thousand times bigger"])
@pytest.mark.parametrize("paced", [False, True], ids=["closed loop", "open loop"])
def test_every_line_fits_100_columns_and_the_tables_stay_aligned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scale: int, paced: bool
) -> None:
    report = broken(make_report(saturated=True, paced=paced, scale=scale, gates=tuple(GATES)), *BREAKERS)
    monkeypatch.chdir(tmp_path)  # as `redis-harness load` runs: from the checkout, its reports/ below
    run_dir = tmp_path / "reports" / "20261204-035529-verdict-long-profile-name-cache-latency"
    lines = lines_of(report, run_dir)
    assert lines[-1] == f"report: {run_dir.relative_to(tmp_path)}/report.html"
    too_wide = [line for line in lines if len(line) > 100]
    assert not too_wide, "\n".join(too_wide)
    for first in ("request", "library call"):
        rows = table_lines(lines, first)
        header_ends = columns_end(rows[0])[1:]
        for row in rows[1:]:
            if row.startswith(" "):  # the figures of a name too long for its column, which got its own line
                assert columns_end(row) == header_ends, row
            elif columns_end(row)[1:]:
                assert columns_end(row)[-len(header_ends) :] == header_ends, row
        # every name is shown whole, on its row or on a line of its own
        names = NAMES if first == "request" else [n for n in NAMES if n.startswith("cache.")]
        assert all(any(row.startswith(name) for row in rows) for name in names)


def test_the_summary_of_a_smoke_run_fits_80_columns_when_the_terminal_has_80(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = broken(make_report(saturated=True, paced=True, gates=tuple(GATES)), *BREAKERS)
    monkeypatch.chdir(tmp_path)
    lines = lines_of(report, tmp_path / "reports" / "20261204-035529-dev-cache-latency", width=80)
    assert max(len(line) for line in lines) <= 80
    assert "PIPELINE ratelimit-sliding" in lines  # a long name went on a line of its own


def test_a_table_laid_out_for_a_wider_terminal_would_not_fit() -> None:
    """The width checks above have teeth: the same table laid out for 200 columns is wider than 100."""
    commands = make_report(saturated=False, paced=True, scale=1000)["commands"]
    assert max(len(line) for line in request_table(commands, width=100)) <= 100
    assert max(len(line) for line in request_table(commands, width=200)) > 100
