"""A load session's pure parts: honest progress, each test's folder, the read-only Host, Locust's command line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from redis_harness import progress
from redis_harness.load.run import LoadOptions, _note_progress, locust_command
from redis_harness.load.scenarios import get_scenario
from redis_harness.load.session import (
    ENDED,
    RUNNING,
    STOPPING,
    host_refusal,
    nth_run_folder,
    progress_text,
    recent_rate,
)


def honest(text: str) -> bool:
    """Never past the plan while running: no `46/30 s`, and `a s of b s` only with a <= b."""
    if re.search(r"\d+\s*/\s*\d+ s", text):
        return False
    return all(int(a) <= int(b) for a, b in re.findall(r"(\d+) s of (\d+) s", text))


def old_progress(elapsed: float, planned: float) -> str:
    """What the progress line said before: the elapsed time over the command line's duration."""
    return f"{elapsed:.0f}/{planned:.0f} s"


@pytest.mark.parametrize("planned", [5.0, 30.0])
@pytest.mark.parametrize("state", [RUNNING, STOPPING])
def test_progress_never_goes_past_the_planned_run_time(planned: float, state: str) -> None:
    for tenths in range(0, 1000, 7):  # 0 to 100 s, past the plan too (users finishing after the run time)
        text = progress_text({"elapsed_s": tenths / 10, "planned_s": planned, "state": state})
        assert honest(text), text
    assert progress_text({"elapsed_s": 12, "planned_s": 30, "state": RUNNING}) == "12 s of 30 s"
    assert progress_text({"elapsed_s": 46, "planned_s": 30, "state": state}).startswith("stopping: 30 s planned")


def test_the_check_catches_the_old_progress_wording() -> None:
    assert not honest(old_progress(46, 30))  # the web UI's "46/30 s" after a Stop 16 s late
    assert not honest("46 s of 30 s")


def test_an_ended_test_says_how_long_it_ran_against_its_plan() -> None:
    assert progress_text({"elapsed_s": 46.2, "planned_s": 30, "state": ENDED}) == "ended after 46 s (planned 30 s)"
    assert progress_text({"elapsed_s": 7, "planned_s": None, "state": ENDED}) == "ended after 7 s (no run time set)"
    assert progress_text({"elapsed_s": 46, "planned_s": None, "state": RUNNING}) == "46 s (no run time: until Stop)"


def test_each_test_of_a_session_gets_a_folder_of_its_own(tmp_path: Path) -> None:
    first = tmp_path / "20250101-120000-dev-raw"
    assert nth_run_folder(first, 1) == first
    assert nth_run_folder(first, 2) == tmp_path / "20250101-120000-dev-raw-2"
    # A folder that already holds a run (an earlier session's) is skipped, never overwritten.
    taken = tmp_path / "20250101-120000-dev-raw-3"
    taken.mkdir()
    (taken / "report.json").write_text("{}")
    assert nth_run_folder(first, 3) == tmp_path / "20250101-120000-dev-raw-4"
    (tmp_path / "20250101-120000-dev-raw-5").mkdir()  # empty: free
    assert nth_run_folder(first, 5) == tmp_path / "20250101-120000-dev-raw-5"


def test_host_other_than_the_endpoint_is_refused_naming_both() -> None:
    endpoint = "redis://127.0.0.1:6381"
    assert host_refusal(endpoint, endpoint) is None
    assert host_refusal(f" {endpoint} ", endpoint) is None
    assert host_refusal(None, endpoint) is None  # a form without the field (the running test's Edit)
    said = host_refusal("redis://10.0.0.5:6379", endpoint)
    assert said is not None and "read-only" in said and endpoint in said and "10.0.0.5" in said
    assert host_refusal("", endpoint) is not None  # a cleared field is not the endpoint either


def _command(tmp_path: Path, **options: object) -> list[str]:
    return locust_command(
        get_scenario("raw"), LoadOptions(**options), 10, 10, 30, 0, tmp_path / "run", tmp_path / "scratch"
    )


def test_the_web_ui_stays_up_after_each_test_with_the_class_picker(tmp_path: Path) -> None:
    cmd = _command(tmp_path, web=True, web_port=8171)
    assert "--headless" not in cmd and "--autoquit" not in cmd  # the UI outlives the test
    assert "--class-picker" in cmd
    assert cmd[cmd.index("--run-time") + 1] == "30s"  # fills the start form's Run time
    assert cmd[cmd.index("--csv") + 1] == str(tmp_path / "scratch" / "locust")  # the session's; tests get copies
    assert "--html" not in cmd  # each test's locust.html is written when it ends
    assert "--autostart" in _command(tmp_path, web=True, autostart=True)


def test_a_headless_run_writes_locust_files_into_its_folder(tmp_path: Path) -> None:
    cmd = _command(tmp_path)
    assert "--headless" in cmd and "--class-picker" not in cmd
    assert cmd[cmd.index("--html") + 1] == str(tmp_path / "run" / "locust.html")
    assert cmd[cmd.index("--csv") + 1] == str(tmp_path / "run" / "locust")


@pytest.mark.parametrize(
    "figures",
    [
        {"test": 12, "state": RUNNING, "elapsed_s": 1234, "planned_s": 3600, "ops_s": 123456, "errors": 1234567,
         "p99_us": 1234567},
        {"test": 12, "state": RUNNING, "elapsed_s": 3700, "planned_s": 3600},
        {"test": 12, "state": STOPPING, "elapsed_s": 3700, "planned_s": None},
        {"test": 12, "state": ENDED, "elapsed_s": 3700, "planned_s": 3600},
        {"test": 12, "state": ENDED, "elapsed_s": 3700, "planned_s": None},
        {},
    ],
)  # fmt: skip
def test_the_progress_line_fits_100_columns(figures: dict, tmp_path: Path) -> None:
    progress_file = tmp_path / "progress.json"
    if figures:
        progress_file.write_text(json.dumps(figures))
    notes: list[str] = []
    with progress.listening(notes.append):
        _note_progress(progress_file, "http://127.0.0.1:8089")
    assert len(notes) == 1 and honest(notes[0])
    line = f"load: {notes[0]} (1234.5 s)"  # as cli/progress.py shows it
    assert len(line) <= 100, line


def worker_arrivals(until: float, per_worker_s: float = 10_000) -> list[tuple[float, int]]:
    """Two workers at 10,000 ops/s each, reporting every 3 s, 1.5 s apart: the master's count grows
    in steps of 30,000 (the first of the second worker: its first 4.5 s)."""
    arrivals, count, t = [(0.0, 0)], 0, 3.0
    while t <= until:
        count += int(per_worker_s * (4.5 if t == 4.5 else 3.0))
        arrivals.append((t, count))
        t += 1.5
    return arrivals


def window_rate(arrivals: list[tuple[float, int]], now: float, window_s: float = 4.0) -> float:
    """The broken variant: the count's growth over the last few seconds, as the progress line had it."""
    at_start = max((c for t, c in arrivals if t <= now - window_s), default=0)
    return (arrivals[-1][1] - at_start) / window_s


def test_the_progress_rate_of_a_distributed_run_is_the_workers_rate_between_reports() -> None:
    """Steady steps: 20,000 ops/s at every moment between reports, and still after the last report of
    a short run until a report is overdue; a stall (no report for longer than the interval) is 0.
    A fixed window over the same steps says 15,000 or 22,500 by turns, and falls after the last one."""
    for now in (12.0, 12.5, 13.4, 15.5):
        arrivals = worker_arrivals(now)[-5:]
        assert recent_rate(arrivals, now, quiet_after_s=4.5) == 20_000
    assert {window_rate(worker_arrivals(now), now) for now in (12.0, 13.4)} == {15_000, 22_500}
    assert recent_rate(worker_arrivals(12.0)[-5:], 16.6, quiet_after_s=4.5) == 0.0  # 4.6 s without a report


def test_the_progress_rate_of_a_local_run_follows_each_tick() -> None:
    ticks = [(float(t), 8_000 * t) for t in range(6)]
    assert recent_rate(ticks, 5.0, quiet_after_s=1.5) == 8_000
    assert recent_rate(ticks, 6.0, quiet_after_s=1.5) == 8_000  # a tick without growth: not yet a stall
    assert recent_rate(ticks, 6.6, quiet_after_s=1.5) == 0.0
    assert recent_rate(ticks[:1], 0.5, quiet_after_s=1.5) == 0.0  # one point is no rate
