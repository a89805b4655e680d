"""What the recovery and failover scenarios share: users that measure a fault, and its injection.

- SequenceWriter appends 1, 2, 3 … to its own list and remembers every number
  Redis acknowledged; at the end, lost = acknowledged - present.
- BreakerReader reads prices the way a service using redis_harness.client
  would (circuit breaker, origin fallback) and marks the breaker's state changes.
- inject() runs one fault at 40 % of the run from the master (or local runner)
  and records it for the report's timeline.

No event listeners here: each scenario file registers its own.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import gevent
from locust import task

from loadtests.harness import RedisUser, state
from loadtests.workloads import VERSION, origin, pick_pair
from redis_harness.client.breaker import BreakerOpen, Transition
from redis_harness.client.codec import Codec
from redis_harness.client.connection import ResilientRedis
from redis_harness.client.keys import build_key
from redis_harness.deploy.connect import settings_for
from redis_harness.deploy.readiness import current_primary, wait_for_new_primary, wait_until_settled
from redis_harness.errors import HarnessError
from redis_harness.faults import inject as faults

FAULT_AT_SHARE = 0.4
AUDIT_DEADLINE_S = 40.0


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
        """Read the list back, waiting for Redis if the fault outlasted the run (bounded).

        With replicas, only once the deployment has settled: a partitioned old primary
        keeps its writes (and answers for them) until Sentinel or Cluster demotes it, which
        can take ten seconds or more after the partition heals; counting before that would
        miss exactly the writes a failover throws away."""
        if self.state.profile.topology.has_replicas:
            try:
                wait_until_settled(self.state.profile, self.state.secrets, timeout_s=AUDIT_DEADLINE_S)
            except HarnessError:
                return None
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
        settings = settings_for(
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


NEW_PRIMARY_TIMEOUT_S = 60.0
log = logging.getLogger(__name__)


def _failover(run: Any, how: str) -> tuple[Any, float, dict[str, Any]]:
    """Take the current primary away until the deployment has promoted another node, then
    give it back (it rejoins as a replica). A plain kill would not do: the restart policy
    brings the node back in a fraction of a second, before anyone could notice it was gone."""
    old = current_primary(run.profile, run.secrets) or run.profile.data_nodes[0].service
    if how == "kill":
        record = faults.kill(run.profile, node=old)
        faults.stop(run.profile, node=old, grace_s=0)  # keep it down (a manual stop is not restarted)
        undo = faults.start
    elif how == "disconnect":
        # Off both networks: the data nodes and Sentinels meet on `edge` as well as `internal`.
        record = faults.disconnect(run.profile, "edge", node=old)
        faults.disconnect(run.profile, "internal", node=old)

        def undo(profile: Any, node: str) -> None:
            faults.reconnect(profile, "internal", node=node)
            faults.reconnect(profile, "edge", node=node)
    elif how == "partition":
        # Off `internal` only: the Sentinels and replicas lose it, its clients (through its own
        # published port) do not. What it accepts meanwhile is discarded when it rejoins.
        record = faults.disconnect(run.profile, "internal", node=old)

        def undo(profile: Any, node: str) -> None:
            gevent.sleep(float(os.environ.get("REDIS_HARNESS_FAULT_HOLD", "5")))  # the partition outlasts the failover
            faults.reconnect(profile, "internal", node=node)
    else:
        record = faults.pause(run.profile, node=old)
        undo = faults.unpause
    try:
        new, waited_s = wait_for_new_primary(run.profile, run.secrets, old, NEW_PRIMARY_TIMEOUT_S)
    finally:
        undo(run.profile, node=old)
        record.mark_reverted()
    detail = {"old_primary": old, "new_primary": new, "new_primary_s": round(record.in_place_after_s + waited_s, 3)}
    return record, record.in_place_at + waited_s, detail


def inject(environment: Any, kind: str, how: str = "pause") -> None:
    """The fault, at 40 % of the run. `failover` takes whichever node is the primary now away (`how`)."""
    run = state()
    hold_s = float(os.environ.get("REDIS_HARNESS_FAULT_HOLD", "5"))
    run_time = getattr(environment.parsed_options, "run_time", None) or 30
    gevent.sleep(run_time * FAULT_AT_SHARE)
    detail: dict[str, Any] = {}
    try:
        if kind == "failover":
            record, until, detail = _failover(run, how)
        elif kind == "kill":
            record = faults.kill(run.profile)
            until = record.in_place_at + faults.wait_running(run.profile, healthy=False, timeout_s=60)
        elif kind == "restart":
            record = faults.restart(run.profile)
            until = time.time()
        else:
            with faults.injected(run.profile, kind) as record:
                gevent.sleep(hold_s)
            until = record.reverted_at or time.time()
    except Exception as exc:  # noqa: BLE001 - a fault that could not be injected must show in the report
        log.exception("fault %s failed", kind)
        run.extra["fault_error"] = f"{kind}: {exc}"
        return
    name = kind if kind != "failover" else f"failover ({how})"
    run.mark(f"{name} at {record.container}")
    run.faults.append({"kind": name, **detail, "at": record.in_place_at, "until": until, "record": record.to_dict()})
