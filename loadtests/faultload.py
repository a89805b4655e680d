"""What the recovery and failover scenarios share: a user that measures a fault, and its injection.

- SequenceWriter appends 1, 2, 3 … to its own list and remembers every number
  Redis acknowledged; at the end, lost = acknowledged - present.
- inject() runs one fault at 40 % of the run from the master (or local runner),
  through redis_harness.faults (a failover through faults.failover), and records
  it for the report's timeline.

The circuit breaker's state changes come from the services' own client library
(loadtests.workloads.PriceComparison), marked on the timeline there.
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
from loadtests.workloads import VERSION
from redis_harness.client.durable import durable_write
from redis_harness.client.keys import build_key
from redis_harness.deploy.connect import endpoint
from redis_harness.deploy.containers import service_container
from redis_harness.deploy.readiness import wait_until_settled
from redis_harness.errors import HarnessError
from redis_harness.faults import inject as faults
from redis_harness.faults.failover import failover
from redis_harness.faults.restart import read_timeline

FAULT_AT_SHARE = 0.4
AUDIT_DEADLINE_S = 40.0
log = logging.getLogger(__name__)


class SequenceWriter(RedisUser):
    """Appends 1, 2, 3 … to its own list; every acknowledged number must survive the fault."""

    acl_user = "processing"
    weight = 2
    durable = False  # DurableSequenceWriter: acknowledged only once a replica confirmed it (WAIT)

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.key = build_key("processing", VERSION, "seq", f"{self.state.run_id}-{id(self):x}")
        self.next = 1
        self.acked: list[tuple[int, float]] = []  # (number, when Redis acknowledged it)
        # The run of failed attempts in progress: (when the first began, how many, the longest in s).
        self.failing: tuple[float, int, float] | None = None

    @property
    def events_prefix(self) -> str:
        return "durable_" if self.durable else ""

    def _write(self) -> Any:
        if self.durable:
            return self.call("RPUSH+WAIT seq", durable_write, self.redis, lambda pipe: pipe.rpush(self.key, self.next))
        return self.call("RPUSH seq", self.redis.rpush, self.key, self.next)

    @task
    def append(self) -> None:
        began = time.time()
        if self._write() is not None:
            self.acked.append((self.next, time.time()))
            if self.failing is not None:  # the first acknowledged write after an outage, to the ms
                since, attempts, longest = self.failing
                self.state.recorder.record_recovery(since, time.time(), attempts, longest)
                self.failing = None
        else:
            took = time.time() - began
            since, attempts, longest = self.failing or (began, 0, 0.0)
            self.failing = (since, attempts + 1, max(longest, took))
        self.next += 1

    def on_stop(self) -> None:
        present = self._audit()
        events_ = self.state.recorder.events
        prefix = self.events_prefix
        events_.add(f"{prefix}acked_writes", len(self.acked))
        if present is None:
            events_.add(f"{prefix}acked_writes_unverified", len(self.acked))
        else:
            lost = [at for number, at in self.acked if number not in present]
            events_.add(f"{prefix}acked_writes_lost", len(lost))
            if lost:  # when the lost writes were acknowledged: the report sets them against the fault
                self.state.recorder.record_loss(self.durable, len(lost), min(lost), max(lost))
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


class DurableSequenceWriter(SequenceWriter):
    """SequenceWriter whose writes are acknowledged only once a replica confirmed them (the client
    library's durable_write: RPUSH then WAIT 1 on one connection), for what a service cannot lose;
    its latency beside RPUSH seq is the cost. Sentinel and replication deployments: on a Cluster
    WAIT must go to the key's own shard, which the cluster client's pipeline does not do."""

    weight = 1
    durable = True

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        if self.state.profile.topology.cluster is not None:  # a plain SequenceWriter there
            self.durable = False


def inject(environment: Any, kind: str, how: str = "pause") -> None:
    """The fault, at 40 % of the run. `failover` takes whichever node is the primary now away (`how`)."""
    run = state()
    hold_s = float(os.environ.get("REDIS_HARNESS_FAULT_HOLD", "5"))
    run_time = getattr(environment.parsed_options, "run_time", None) or 30
    gevent.sleep(run_time * FAULT_AT_SHARE)
    detail: dict[str, Any] = {}
    try:
        if kind == "failover":
            result = failover(run.profile, run.secrets, how, hold_s=hold_s)
            record, until = result.record, result.new_primary_at
            shown = ("old_primary", "new_primary", "new_primary_s", "sentinel_steps")
            detail = {k: v for k, v in result.to_dict().items() if k in shown}
            replication = run.profile.topology.replication
            detail["loss_bound_s"] = replication.acked_loss_bound_s if replication else None
        elif kind == "kill":
            record = faults.kill(run.profile)
            # At once: Docker's events, Redis's log lines and the published port, probed, on the way back;
            # the report splits the window by owner.
            timeline = read_timeline(service_container(run.profile), record.requested_at, endpoint(run.profile))
            until = timeline.started_at or record.in_place_at + faults.wait_running(run.profile, healthy=False)
            detail = {"restart": timeline.to_dict(), "kill_loss_window_s": run.profile.persistence.kill_loss_window_s}
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
    run.marks.append({"t": record.in_place_at, "label": f"{name} at {record.container}", "kind": "fault"})
    if record.reverted_at is not None and kind != "kill":
        run.marks.append({"t": record.reverted_at, "label": f"{name} undone", "kind": "fault"})
    run.faults.append({"kind": name, **detail, "at": record.in_place_at, "until": until, "record": record.to_dict()})
