"""Client-side load figures: µs histograms merged across processes, error windows."""

from __future__ import annotations

import json
import pickle
import random

import pytest

from redis_harness.load import recorder as recorder_module
from redis_harness.load.recorder import Recorder, error_windows, tally_summary


def test_worker_reports_merge_into_the_same_percentiles_as_one_process() -> None:
    single, worker_a, worker_b = Recorder(), Recorder(), Recorder()
    for value in range(1, 2001):
        single.record("GET price", value, True)
        (worker_a if value % 2 else worker_b).record("GET price", value, True)
    master = Recorder()
    # Locust ships report_to_master payloads pickled (msgpack-compatible types only).
    for worker in (worker_a, worker_b):
        master.merge(pickle.loads(pickle.dumps(worker.export())))
    assert master.commands() == single.commands()
    summary = master.commands()["GET price"]
    assert summary["count"] == 2000
    assert 995 <= summary["p50_us"] <= 1005 and 1975 <= summary["p99_us"] <= 1985
    assert worker_a.commands() == {}, "export starts the worker afresh"


def test_errors_cache_reads_and_events_are_counted() -> None:
    recorder = Recorder()
    recorder.record("SET price", 100, True)
    recorder.record("SET price", 100, False)
    recorder.cache_read("price", True)
    recorder.cache_read("price", True)
    recorder.cache_read("price", False)
    recorder.cache_read("volume", False)
    recorder.events.add("oom_errors", 3)
    assert recorder.commands()["SET price"]["errors"] == 1
    ratios = recorder.hit_ratios()
    assert ratios["price"] == 2 / 3 and ratios["volume"] == 0 and ratios["all"] == 0.5
    assert recorder.export()["events"] == {"oom_errors": 3}


def test_open_loop_latency_is_kept_beside_service_time() -> None:
    recorder = Recorder()
    recorder.record("GET raw", 100, True, intended_us=5000)
    summary = recorder.commands()["GET raw"]
    assert summary["p50_us"] == 100
    assert abs(summary["intended"]["p50_us"] - 5000) <= 5  # HdrHistogram keeps 3 significant digits


def test_error_window_runs_from_last_success_to_first_success() -> None:
    outcomes = [(10.0, True), (10.1, True), (10.2, False), (10.5, False), (11.9, False), (12.0, True), (12.1, True)]
    assert error_windows(outcomes) == [{"from": 10.1, "to": 12.0, "seconds": 1.9}]


def test_sporadic_errors_are_not_an_outage() -> None:
    outcomes = [(10.0, True), (10.1, True), (10.1, False), (10.2, True)]
    assert error_windows(outcomes) == []


def test_calls_other_than_redis_stay_out_of_error_windows() -> None:
    recorder = Recorder()
    recorder.record("READ price via fallback", 10, True, redis_call=False)
    assert recorder.outcomes == set()


def test_calls_per_second_follow_the_calls_clock_not_the_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two workers report every few seconds; their calls still land in the seconds they were made,
    so the client calls/s chart is flat where the load was (Locust's master-side history saw a
    sawtooth: a worker's calls arrive in one lump per report)."""
    clock = iter([1000.2, 1000.7, 1001.1, 1002.0, 1003.5])
    monkeypatch.setattr(recorder_module.time, "time", lambda: next(clock))
    first, second = Recorder(), Recorder()
    first.record("GET raw", 100, True)
    first.record("GET raw", 100, False)
    second.record("GET raw", 100, True)
    second.record("cache.get price [redis]", 90, True)  # a library call's part is not a request
    second.record("SET raw", 80, True)
    master = Recorder()
    master.merge(pickle.loads(pickle.dumps(first.export())))
    master.merge(pickle.loads(pickle.dumps(second.export())))
    assert master.calls_series() == [
        {"t": 1001.0, "ops_per_s": 2.0, "errors_per_s": 1.0},
        {"t": 1002.0, "ops_per_s": 1.0, "errors_per_s": 0.0},
        {"t": 1003.0, "ops_per_s": 0.0, "errors_per_s": 0.0},  # a quiet second is a zero, not a gap
        {"t": 1004.0, "ops_per_s": 1.0, "errors_per_s": 0.0},
    ]


def _busy_second(recorder: Recorder, calls: int = 3_000) -> None:
    """A second of a smoke-like run: 14 requests, their parts, latency from the intended start."""
    rng = random.Random(7)
    for i in range(calls):
        name = f"request {i % 14}"
        recorder.record(name, rng.expovariate(1 / 600), True, rng.expovariate(1 / 1_200))
        recorder.record(f"{name} [library]", rng.expovariate(1 / 60), True, redis_call=False)
        recorder.record_late(rng.expovariate(1 / 500))


def test_the_per_second_path_builds_no_histogram(monkeypatch: pytest.MonkeyPatch) -> None:
    """What runs in the generator's event loop every second (a process's export, merged into the
    run's totals and the interval, and the interval's latency point) makes no HdrHistogram: building
    and reading ~40 of them took 35-120 ms of the loop, and every call due meanwhile started late."""
    process, total, interval = Recorder(), Recorder(), Recorder()
    _busy_second(process)

    def no_histogram() -> None:
        raise AssertionError("an HdrHistogram was built in the per-second path")

    monkeypatch.setattr(recorder_module, "new_histogram", no_histogram)
    data = pickle.loads(pickle.dumps(process.export()))  # as Locust ships it from a worker
    total.merge(data)
    interval.merge(data)
    point = interval.latency_point()
    assert point["request 0"]["count"] == 3_000 // 14 + 1 and point["request 0 [library]"]["count"] > 0
    monkeypatch.undo()
    assert total.commands()["request 0"]["count"] == point["request 0"]["count"]  # the run's figures, whole


def test_the_latency_point_reads_the_same_percentiles_as_the_histograms() -> None:
    recorder = Recorder()
    _busy_second(recorder)
    point = recorder.latency_point()
    for name, summary in recorder.commands().items():
        for key in ("count", "p50_us", "p99_us", "max_us"):
            # HdrHistogram keeps 3 significant digits; a tally keeps every µs.
            assert abs(point[name][key] - summary[key]) <= max(1, summary[key] / 1000), (name, key)


def test_tally_percentiles_follow_hdrhistograms_rule() -> None:
    tally = {value: 1 for value in range(1, 101)}
    assert tally_summary(tally) == {"count": 100, "p50_us": 50, "p99_us": 99, "max_us": 100}
    assert tally_summary({7: 3}) == {"count": 3, "p50_us": 7, "p99_us": 7, "max_us": 7}
    assert tally_summary({}) == {"count": 0, "p50_us": 0, "p99_us": 0, "max_us": 0}


def test_late_starts_add_up_across_processes_and_are_none_in_closed_loop() -> None:
    worker_a, worker_b, master = Recorder(), Recorder(), Recorder()
    for late in range(1, 101):
        (worker_a if late % 2 else worker_b).record_late(late * 100)
    for worker in (worker_a, worker_b):
        master.merge(pickle.loads(pickle.dumps(worker.export())))
    assert master.late_starts() == {"count": 100, "p50_us": 5_000, "p99_us": 9_900, "max_us": 10_000}
    closed = Recorder()
    closed.record("GET raw", 100, True)
    assert closed.late_starts() is None


def test_raw_json_keeps_the_histograms_and_old_run_folders_still_read() -> None:
    """raw.json holds encoded HdrHistograms (the run's totals built once, at the end) and the late tally;
    a run folder from before the tallies (no `tallies` key) reads the same."""
    total = Recorder()
    _busy_second(total, 700)
    expected = total.commands()
    late = total.late_starts()
    total.build_histograms()
    saved = json.loads(json.dumps(total.export()))
    assert saved["tallies"]["service"] == {} and set(saved["service"]) == set(expected)
    for data in (saved, {k: v for k, v in saved.items() if k != "tallies"}):
        read = Recorder()
        read.merge(data)
        assert read.commands() == expected
    read = Recorder()
    read.merge(saved)
    assert read.late_starts() == late
