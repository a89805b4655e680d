"""The verify table fits min(terminal width, 100) columns; the full text stays in --json and JUnit (all or none)."""

from __future__ import annotations

from pathlib import Path

import pytest

from redis_harness.terminal import MAX_WIDTH, view_width
from redis_harness.verify import runner
from redis_harness.verify.table import CheckResult, format_table

LONG = "on, hash 1b123f82, keys ~price:* ~price:v1:*, channels &price:*, commands -@all +get +set +hset " * 6


def results() -> list[CheckResult]:
    return [
        CheckResult("runs_as_non_root", "pass", "uid != 0", "999"),
        CheckResult(
            "maxmemory_within_ratio_of_container_limit",
            "pass",
            "0 < maxmemory <= 0.7 x 268435456 = 187904819",
            "187904819 (0.70 x cgroup v1 limit)",
        ),
        CheckResult("acl_user_matches_profile[price]", "fail", LONG, LONG.replace("+hset", "+hdel")),
        CheckResult("no_unexpected_restart", "pass", "0", "0"),
        CheckResult("aof_receives_writes", "error", "", "", "ConnectionError: " + "refused " * 40),
    ]


@pytest.mark.parametrize("columns", ["100", "80", "60", "250"])
def test_the_table_fits_the_terminal_up_to_100_columns(monkeypatch: pytest.MonkeyPatch, columns: str) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    width = min(int(columns), MAX_WIDTH)
    assert view_width() == width
    lines = format_table(results()).splitlines()
    assert max(len(line) for line in lines) <= width
    assert lines[0].split() == ["CHECK", "EXPECTED", "FOUND", "RESULT"]


def test_without_a_width_the_old_table_would_not_fit() -> None:
    """What the wrapping is for: the same rows on one line each are far wider than 100 columns."""
    widest = max(len(r.name) + len(r.expected) + len(r.found) for r in results())
    assert widest > 2 * MAX_WIDTH


def test_a_passing_row_is_shortened_and_a_failing_one_keeps_more(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    passing = CheckResult("acl_user_matches_profile[price]", "pass", LONG, LONG)
    failing = CheckResult("acl_user_matches_profile[price]", "fail", LONG, LONG)
    assert len(format_table([passing]).splitlines()) == 1 + 2
    assert "…" in format_table([passing])
    assert len(format_table([failing]).splitlines()) > 3


def test_every_row_keeps_its_name_and_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    table = format_table(results())
    for result in results():
        row = next(line for line in table.splitlines() if line.startswith(result.name[:20]))
        assert row.rstrip().endswith(result.status.upper()), row
    assert "ConnectionError" in table  # a check that stopped early shows why


def test_short_rows_stay_one_line_each(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    short = [CheckResult("runs_as_non_root", "pass", "uid != 0", "999"), CheckResult("x", "fail", "1", "2")]
    assert format_table(short).splitlines()[1:] == [
        "runs_as_non_root  uid != 0  999    PASS",
        "x                 1         2      FAIL",
    ]


def test_as_dict_keeps_the_full_text() -> None:
    result = results()[2]
    data = result.as_dict()
    assert data["expected"] == LONG and data["found"] == result.found and "properties" not in data


def test_junit_files_are_published_all_or_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Multi-node runs write one JUnit file per node: a second one failing takes the first back."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    for node in ("redis-0", "redis-1"):
        (scratch / f"v-{node}.xml").write_text(f"<testsuites name='{node}'/>")
    out = tmp_path / "out"
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    staged = [(scratch / "v-redis-0.xml", out / "v-redis-0.xml"), (scratch / "v-redis-1.xml", blocker / "v.xml")]
    assert runner._publish_junit(staged) is None
    assert sorted(p.name for p in out.iterdir()) == []  # the first file was taken back, no .partial left
    line = capsys.readouterr().err.strip()
    assert line.startswith(f"redis-harness: --junit: cannot write {blocker / 'v.xml'} ({blocker}: ")
    good = [(scratch / "v-redis-0.xml", out / "v-redis-0.xml"), (scratch / "v-redis-1.xml", out / "v-redis-1.xml")]
    assert runner._publish_junit(good) == [out / "v-redis-0.xml", out / "v-redis-1.xml"]
    assert (out / "v-redis-1.xml").read_text() == "<testsuites name='redis-1'/>"
    assert sorted(p.name for p in out.iterdir()) == ["v-redis-0.xml", "v-redis-1.xml"]
