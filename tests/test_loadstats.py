"""Client-side load figures: µs histograms merged across processes, error windows."""

from __future__ import annotations

import pickle

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
