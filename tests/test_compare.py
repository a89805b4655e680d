"""`redis-harness compare RUN_A RUN_B`: the settings two runs differ in first, then the changes;
regressions in the exit code, different scenarios refused unless --force; fits 100 columns."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from redis_harness.cli import main
from redis_harness.report.compare import MAX_WIDTH, change, compare, markdown, read_report, text

LONG_NAME = "cache.write_quotes " + "price-pair-" * 10  # longer than a terminal line on its own


def report(ops: float, p99: int, gates: dict[str, bool], hit: float = 0.9, **settings: Any) -> dict:
    return {
        "scenario": "smoke",
        "profile": "ci",
        "started": 1.0,
        "duration_s": 30.2,
        "settings": {"users": 10, "spawn_rate": 10, "rate": 0, "workers": 0, **settings},
        "passed": all(gates.values()),
        "throughput_ops_s": ops,
        "commands": {
            "cache.get price": {"count": 100, "errors": 0, "p50_us": p99 // 4, "p99_us": p99, "p999_us": p99 * 2}
        },
        "hit_ratio": {"client": {"all": hit}, "server": hit},
        "server": {"maxmemory": 93952409, "container_memory_limit": 134217728},
        "gates": [{"name": n, "passed": ok, "value": 0.1, "threshold": 0.2, "detail": ""} for n, ok in gates.items()],
    }


def snapshot(**options: Any) -> dict:
    """run.json as `load` writes it: the settings frozen at the start."""
    return {
        "scenario": "smoke",
        "gates": ["error_rate"],
        "topology": "standalone",
        "maxmemory": 93952409,
        "memory_limit": 134217728,
        "generator": {"host": "runner-1", "cpus": 2},
        "options": {"users": 10, "duration_s": 30.0, "rate": 0.0, "workers": 0, "fault": None, **options},
    }


def write(folder: Path, data: dict, run: dict | None = None) -> Path:
    folder.mkdir()
    (folder / "report.json").write_text(json.dumps(data))
    if run is not None:
        (folder / "run.json").write_text(json.dumps(run))
    return folder


def test_changes_are_relative_to_the_first_run() -> None:
    c = compare(report(1000, 400, {"error_rate": True}), report(1500, 200, {"error_rate": True}))
    assert c["throughput_ops_s"]["change"] == pytest.approx(0.5)
    (row,) = c["commands"]
    assert row["p99"] == {"a": 400, "b": 200, "change": pytest.approx(-0.5)}
    assert row["p99.9"] == {"a": 800, "b": 400, "change": pytest.approx(-0.5)}
    assert c["regressed"] == [] and c["settings"] == [] and change(0, 5) is None


def test_a_gate_that_starts_failing_is_a_regression_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write(tmp_path / "a", report(1000, 400, {"error_rate": True, "memory": False}))
    b = write(tmp_path / "b", report(900, 800, {"error_rate": False, "memory": True}))
    summary = tmp_path / "summary.md"
    assert main(["compare", str(a), str(b), "--summary", str(summary)]) == 1
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()]
    assert ["error_rate", "pass", "FAIL", "REGRESSED"] in rows and ["memory", "FAIL", "pass", "fixed"] in rows
    assert "throughput: 1,000 -> 900 calls/s (-10.0%)" in out
    assert out.rstrip().splitlines()[-1] == "verdict: REGRESSED: error_rate passed in A and fail in B"
    md = summary.read_text()
    assert "| error_rate | pass | FAIL | **regressed** |" in md
    assert "| `cache.get price` | 100 | 200 | +100.0% | 400 | 800 | +100.0% | 800 | 1,600 | +100.0% |" in md
    # A run against itself: nothing regressed, nothing differs.
    assert main(["compare", str(a), str(a)]) == 0
    out = capsys.readouterr().out
    assert "settings: the same in both runs" in out and out.rstrip().endswith("verdict: no gate regressed")


def test_every_differing_setting_is_listed_before_the_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Closed loop against --rate 2000 with more users, workers, another duration, a looser
    threshold and another machine: each named with both values, ahead of the figures, and the
    verdict says the comparison spans them. The same runs with alike settings list none."""
    a = write(tmp_path / "a", report(9000, 400, {"error_rate": True}), snapshot())
    b_report = report(2000, 300, {"error_rate": True}, rate=2000.0, users=50, workers=2)
    b_report["gates"][0]["threshold"] = 0.05
    b_snapshot = snapshot(rate=2000.0, users=50, workers=2, duration_s=60.0)
    b_snapshot["generator"] = {"host": "laptop", "cpus": 8}
    b = write(tmp_path / "b", b_report, b_snapshot)
    assert main(["compare", str(a), str(b)]) == 0  # differing settings warn; they do not fail
    out = capsys.readouterr().out
    lines = out.splitlines()
    expected = {
        "load": ("closed loop", "open loop at 2,000 ops/s"),
        "users": ("10", "50"),
        "processes": ("one", "2 workers"),
        "duration": ("30 s", "60 s"),
        "error_rate threshold": ("0.2", "0.05"),
        "generator host": ("runner-1", "laptop"),
        "generator CPUs": ("2", "8"),
    }
    throughput_at = next(n for n, line in enumerate(lines) if line.startswith("throughput:"))
    for name, (va, vb) in expected.items():
        row = next((line for line in lines[:throughput_at] if line.startswith(name + " ")), None)
        assert row is not None and row.split()[-len(vb.split()) :] == vb.split() and va in row, (name, out)
    assert not any(line.startswith(("scenario ", "profile ", "topology ")) for line in lines[:throughput_at])
    verdict = " ".join(out[out.index("verdict:") :].split())  # wrapped to fit: one line again
    assert verdict.startswith("verdict: no gate regressed; compared across different settings (load, users,")
    md = markdown(compare(read_report(a), read_report(b)))
    assert md.index("| load | closed loop | open loop at 2,000 ops/s |") < md.index("| throughput (calls/s)")
    assert "across different settings" in md
    # Alike runs (B as A was set): no settings block, and a verdict that claims nothing about settings.
    alike = write(tmp_path / "alike", report(2000, 300, {"error_rate": True}), snapshot())
    assert main(["compare", str(a), str(alike)]) == 0
    out = capsys.readouterr().out
    assert "settings: the same in both runs" in out and "across different settings" not in out


def test_different_scenarios_are_refused_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path / "a", report(9000, 400, {"error_rate": True}), snapshot())
    eviction = report(7000, 900, {"error_rate_except_oom": True}, users=8)
    eviction["scenario"] = "eviction"
    b = write(tmp_path / "b", eviction, {**snapshot(users=8), "scenario": "eviction"})
    summary = tmp_path / "summary.md"
    assert main(["compare", str(a), str(b), "--summary", str(summary)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and not summary.exists(), "refused: nothing printed or written"
    assert captured.err.strip().splitlines() == [
        "redis-harness: compare: A ran smoke and B eviction; add --force to compare different scenarios"
    ]
    assert main(["compare", str(a), str(b), "--force", "--summary", str(summary)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[3].split() == ["scenario", "smoke", "eviction"]  # the first setting listed
    assert "| scenario | smoke | eviction |" in summary.read_text()
    # Runs of one scenario on different profiles are compared (with the warning), not refused.
    other_profile = write(tmp_path / "c", {**report(8000, 400, {"error_rate": True}), "profile": "dev"}, snapshot())
    assert main(["compare", str(a), str(other_profile)]) == 0
    assert "profile" in capsys.readouterr().out.split("throughput:")[0]


def test_p99_9_is_shown_per_request_in_text_and_markdown() -> None:
    a, b = report(1000, 400, {"error_rate": True}), report(1000, 400, {"error_rate": True})
    b["commands"]["cache.get price"]["p999_us"] = 777_001  # a figure no other column holds
    c = compare(a, b)
    wide = text(c).splitlines()
    assert "─ p99.9 µs ─" in wide[wide.index(next(line for line in wide if "p50 µs" in line))]
    row = next(line for line in wide if line.startswith("cache.get price"))
    assert row.split()[-3:] == ["800", "777,001", "+97025.1%"]
    narrow = text(c, width=80)
    assert "p99.9" in narrow and "777,001" in narrow
    assert "| 800 | 777,001 | +97025.1% |" in markdown(c)
    # Without its p99.9 (a report of an older version), the column shows a dash, not a made-up figure.
    del b["commands"]["cache.get price"]["p999_us"]
    assert next(line for line in text(compare(a, b)).splitlines() if line.startswith("cache.get")).split()[-3:] == [
        "800",
        "-",
        "-",
    ]


def wide_case() -> dict:
    """Long request names, big figures, long settings and gate names: what overflows a naive layout."""
    a = report(123456, 1_234_567, {"error_rate": True, "a_gate_with_a_rather_long_name_too": True})
    for n in range(3):
        a["commands"][f"{LONG_NAME}{n}"] = copy.deepcopy(a["commands"]["cache.get price"])
    b = copy.deepcopy(a)
    b["settings"]["users"] = 12345
    b["profile"] = "a-profile-with-a-long-name-" * 4
    b["commands"][LONG_NAME + "only-in-b"] = b["commands"].pop(f"{LONG_NAME}0")
    return compare({**a, "snapshot": snapshot()}, {**b, "snapshot": snapshot(users=12345)})


@pytest.mark.parametrize("width", [MAX_WIDTH, 80, 250])
def test_the_text_fits_100_columns_and_80_on_an_80_column_terminal(width: int) -> None:
    c = wide_case()
    assert len(LONG_NAME) > MAX_WIDTH and len(c["a"]["profile"]) + len(c["b"]["profile"]) > MAX_WIDTH
    out = text(c, width=width)
    too_wide = [line for line in out.splitlines() if len(line) > min(width, MAX_WIDTH)]
    assert not too_wide, "\n".join(too_wide)
    # Nothing was cut to fit: every request name is there in full once its lines are joined.
    joined = "".join(line.split("  ")[0] for line in out.splitlines())
    for name in (row["name"] for row in c["commands"]):
        assert name.replace(" ", "") in joined.replace(" ", ""), name


def test_a_folder_without_a_report_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path / "good", report(1, 1, {}))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["compare", str(good), str(empty)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"redis-harness: compare: {empty} has no report.json; give a folder made by `redis-harness load`"
    ]
    (empty / "report.json").write_text("[]")
    assert main(["compare", str(good), str(empty)]) == 2
    summary_dir = tmp_path / "dir"
    summary_dir.mkdir()
    assert main(["compare", str(good), str(good), "--summary", str(summary_dir)]) == 2
    (good / "run.json").write_text("{not json")
    assert main(["compare", str(good), str(good)]) == 2
    assert "run.json is not valid JSON" in capsys.readouterr().err
