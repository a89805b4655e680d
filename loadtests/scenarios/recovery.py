"""recovery: steady load, then a fault, marked on the timeline.

The fault (REDIS_HARNESS_FAULT: kill by default; restart, pause or disconnect)
comes at 40 % of the run from the master (or the local runner), through
redis_harness.faults. pause and disconnect are held for REDIS_HARNESS_FAULT_HOLD
seconds (default 5). Measured:

- the error window: last success before the fault to the first success after it;
- p99 and hit-ratio recovery times (in the report, from the series);
- acknowledged writes lost: SequenceWriter users append increasing numbers and
  remember each one Redis acknowledged; at the end, lost = acknowledged - present;
- the circuit breaker's state changes of a client-patterned workload
  (BreakerReader, redis_harness.client.ResilientRedis with the origin as fallback).
"""

from __future__ import annotations

import os
import time
from typing import Any

import gevent
from locust import events, task
from locust.runners import WorkerRunner

from loadtests.harness import RedisUser, state
from loadtests.workloads import VERSION, PriceComparison, origin, pick_pair
from redis_harness import faults
from redis_harness.breaker import BreakerOpen, Transition
from redis_harness.client import RedisSettings, ResilientRedis
from redis_harness.codec import Codec
from redis_harness.keys import build_key

__all__ = ["BreakerReader", "PriceComparison", "SequenceWriter"]

FAULT_AT_SHARE = 0.4
AUDIT_DEADLINE_S = 20.0


class SequenceWriter(RedisUser):
    """Appends 1, 2, 3 … to its own list; every acknowledged number must survive the fault."""

    acl_user = "processing"
    weight = 2

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.key = build_key("processing", VERSION, "seq", f"{self.state.run_id}-{id(self):x}")
        self.next = 1
        self.acked: list[int] = []

    @task
    def append(self) -> None:
        if self.call("RPUSH seq", self.redis.rpush, self.key, self.next) is not None:
            self.acked.append(self.next)
        self.next += 1

    def on_stop(self) -> None:
        present = self._audit()
        events_ = self.state.recorder.events
        events_.add("acked_writes", len(self.acked))
        if present is None:
            events_.add("acked_writes_unverified", len(self.acked))
        else:
            events_.add("acked_writes_lost", len(set(self.acked) - present))
            self.redis.unlink(self.key)
        super().on_stop()

    def _audit(self) -> set[int] | None:
        """Read the list back, waiting for Redis if the fault outlasted the run (bounded)."""
        deadline = time.monotonic() + AUDIT_DEADLINE_S
        while time.monotonic() < deadline:
            values = self.call("LRANGE seq-audit", self.redis.lrange, self.key, 0, -1)
            if values is not None:
                return {int(v) for v in values}
            gevent.sleep(0.5)
        return None


class BreakerReader(RedisUser):
    """Reads prices the way a service using redis_harness.client would: breaker, origin fallback."""

    acl_user = "price"
    weight = 1

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        run = self.state
        settings = RedisSettings.from_profile(
            run.profile, "price", run.secrets.service("price").password, socket_timeout_s=0.5, retries=0
        )
        self.client = ResilientRedis(settings, fail_max=3, reset_timeout_s=1.0, listeners=(self._transition,))
        self.codec = Codec()

    def _transition(self, change: Transition) -> None:
        self.state.recorder.events.add(f"breaker_{change.new.value}")
        self.state.mark(f"breaker {change.old.value}->{change.new.value}")

    @task
    def read(self) -> None:
        symbol = pick_pair()
        key = build_key("price", VERSION, "price", symbol)
        start = time.perf_counter()
        try:
            value = self.client.call(lambda r: r.get(key))
            source = "cache" if value is not None else "origin"
            if value is None:
                origin().read("price", symbol)
        except BreakerOpen:
            origin().read("price", symbol)
            source = "fallback"
        except Exception:  # noqa: BLE001 - an outage before the breaker opens: serve from the origin
            origin().read("price", symbol)
            source = "fallback"
        elapsed_us = (time.perf_counter() - start) * 1e6
        self.state.recorder.record(f"READ price via {source}", elapsed_us, True, redis_call=False)

    def on_stop(self) -> None:
        self.client.close()
        super().on_stop()


def _inject(environment: Any) -> None:
    run = state()
    kind = os.environ.get("REDIS_HARNESS_FAULT", "kill")
    hold_s = float(os.environ.get("REDIS_HARNESS_FAULT_HOLD", "5"))
    run_time = getattr(environment.parsed_options, "run_time", None) or 30
    gevent.sleep(run_time * FAULT_AT_SHARE)
    if kind == "kill":
        record = faults.kill(run.profile)
        back_s = faults.wait_running(run.profile, healthy=False, timeout_s=60)
        until = record.in_place_at + back_s
    elif kind == "restart":
        record = faults.restart(run.profile)
        until = time.time()
    else:
        with faults.injected(run.profile, kind) as record:
            gevent.sleep(hold_s)
        until = record.reverted_at or time.time()
    run.faults.append({"kind": kind, "at": record.in_place_at, "until": until, "record": record.to_dict()})


@events.test_start.add_listener
def _schedule_fault(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    state().extra.setdefault("greenlets", []).append(gevent.spawn(_inject, environment))
