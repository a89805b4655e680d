"""recovery: steady load, then a fault, marked on the timeline.

The fault (REDIS_HARNESS_FAULT: kill by default; restart, pause or disconnect)
comes at 40 % of the run from the master (or the local runner), through
redis_harness.faults. pause and disconnect are held for REDIS_HARNESS_FAULT_HOLD
seconds (default 5). Measured:
- the error window: last success before the fault to the first success after it;
- p99 and hit-ratio recovery times (in the report, from the series);
- acknowledged writes lost: SequenceWriter users append increasing numbers and
  remember each one Redis acknowledged; at the end, lost = acknowledged - present;
- the price service's client library (PriceComparison: ServiceCache with its
  circuit breaker and origin fallback) riding it out: fallback reads, and the
  breaker opening and closing, marked on the timeline.
"""

from __future__ import annotations

import os
from typing import Any

import gevent
from locust import events
from locust.runners import WorkerRunner

from loadtests.faultload import SequenceWriter, inject
from loadtests.harness import state
from loadtests.workloads import PriceComparison

__all__ = ["PriceComparison", "SequenceWriter"]


@events.test_start.add_listener
def _schedule_fault(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    kind = os.environ.get("REDIS_HARNESS_FAULT", "kill")
    state().extra.setdefault("greenlets", []).append(gevent.spawn(inject, environment, kind))
