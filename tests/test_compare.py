"""`redis-harness compare RUN_A RUN_B`: changes between two runs, regressions in the exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from redis_harness.cli import main
from redis_harness.report.compare import change, compare


def report(ops: float, p99: int, gates: dict[str, bool], hit: float = 0.9) -> dict:
    return {
        "scenario": "smoke",
        "profile": "ci",
        "started": 1.0,
        "passed": all(gates.values()),
        "throughput_ops_s": ops,
        "commands": {
            "cache.get price": {"count": 100, "errors": 0, "p50_us": p99 // 4, "p99_us": p99, "p999_us": p99 * 2}
        },
        "hit_ratio": {"client": {"all": hit}, "server": hit},
        "gates": [{"name": n, "passed": ok, "value": 0.1, "threshold": 0.2, "detail": ""} for n, ok in gates.items()],
    }


def write(folder: Path, data: dict) -> Path:
    folder.mkdir()
    (folder / "report.json").write_text(json.dumps(data))
    return folder


def test_changes_are_relative_to_the_first_run() -> None:
    c = compare(report(1000, 400, {"error_rate": True}), report(1500, 200, {"error_rate": True}))
    assert c["throughput_ops_s"]["change"] == pytest.approx(0.5)
    (row,) = c["commands"]
    assert row["p99"] == {"a": 400, "b": 200, "change": pytest.approx(-0.5)}
    assert c["regressed"] == [] and change(0, 5) is None


def test_a_gate_that_starts_failing_is_a_regression_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write(tmp_path / "a", report(1000, 400, {"error_rate": True, "memory": False}))
    b = write(tmp_path / "b", report(900, 800, {"error_rate": False, "memory": True}))
    summary = tmp_path / "summary.md"
    assert main(["compare", str(a), str(b), "--summary", str(summary)]) == 1
    out = capsys.readouterr().out
    assert "gate error_rate               pass -> FAIL  REGRESSED" in out and "memory" in out and "fixed" in out
    assert "throughput: 1,000 -> 900 ops/s (-10.0%)" in out
    md = summary.read_text()
    assert "| error_rate | pass | FAIL | **regressed** |" in md and "| `cache.get price` | 100 | 200 | +100.0% |" in md
    # A run against itself: nothing regressed.
    assert main(["compare", str(a), str(a)]) == 0


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
