"""cache-latency: the three services' mixed workload at steady state.

The cache is warmed from the origin before the users start, so the figures
are steady-state ones: per-command µs percentiles, ops/s, hit ratio per data type.
"""

from __future__ import annotations

from typing import Any

from locust import events
from locust.runners import WorkerRunner

from loadtests.harness import redis_client, state
from loadtests.workloads import DataAcquisition, DataProcessing, LockContention, PriceComparison, warm_cache

__all__ = ["DataAcquisition", "DataProcessing", "LockContention", "PriceComparison"]


@events.test_start.add_listener
def _warm(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    run = state()
    client = redis_client("price")
    run.extra["warmed_keys"] = warm_cache(client, dict(run.profile.ttl))
    client.close()
    run.mark("cache warmed")
