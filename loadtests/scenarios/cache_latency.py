"""cache-latency: the three services' mixed workload at steady state.

The price service's cache is warmed before the users start, by the client
library's CacheWarmer (most popular pairs first, SET NX), so the figures are
steady-state ones: per-call µs percentiles (library calls split into Redis
round trips and library time), ops/s, hit ratio per data type.
"""

from __future__ import annotations

from typing import Any

from locust import events
from locust.runners import WorkerRunner

from loadtests.harness import state
from loadtests.workloads import DataAcquisition, DataProcessing, LockContention, PriceComparison, warm

__all__ = ["DataAcquisition", "DataProcessing", "LockContention", "PriceComparison"]


@events.test_start.add_listener
def _warm(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    run = state()
    report = warm(run)
    run.extra["warmed_keys"] = report.set
    run.extra["warming"] = {
        "planned": report.planned,
        "set": report.set,
        "batches": report.batches,
        "elapsed_s": round(report.elapsed_s, 3),
        "stopped": report.stopped,
    }
    run.mark(f"cache warmed ({report.set} of {report.planned} set, {report.stopped})")
