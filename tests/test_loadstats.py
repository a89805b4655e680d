"""Client-side load figures: µs histograms merged across processes, error windows."""

from __future__ import annotations

import pickle

import pytest

from redis_harness.load import recorder as recorder_module
from redis_harness.load.recorder import Recorder, error_windows


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
