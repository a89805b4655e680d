"""failover: under load, take whichever data node is the primary now away.

`--fault pause` (default), `kill` (SIGKILL, kept down until a new primary is
named), `disconnect` (off every network) or `partition` (off the internal
network only: the old primary keeps its clients, which go on writing to it;
after healing, the acknowledged writes it took and then discarded are counted
as lost).

For a Sentinel or Cluster deployment (profiles/ha.yaml, cluster.yaml). Reported,
beside the recovery figures: the time until Sentinel (a quorum of them) or the
Cluster (the owner of slot 0) names a new primary, the client-side
unavailability (the error window: last success before, first success after) and
acknowledged writes lost (SequenceWriter), with when they were acknowledged
beside the bound the profile implies (min_replicas_to_write and its lag), and
the same for durable writes (DurableSequenceWriter: RPUSH then WAIT 1, which a
failover must not lose). Redis's own guidance: about down-after-milliseconds
plus a few seconds with Sentinel, one to two seconds after node-timeout with
Cluster; acknowledged writes can be lost on failover, and min-replicas-to-write
bounds how many.
"""

from __future__ import annotations

import os
from typing import Any

import gevent
from locust import events
from locust.runners import WorkerRunner

from loadtests.faultload import DurableSequenceWriter, SequenceWriter, inject
from loadtests.harness import state
from loadtests.workloads import PriceComparison

__all__ = ["DurableSequenceWriter", "PriceComparison", "SequenceWriter"]


@events.test_start.add_listener
def _schedule_failover(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    how = os.environ.get("REDIS_HARNESS_FAULT") or "pause"
    state().extra.setdefault("greenlets", []).append(gevent.spawn(inject, environment, "failover", how))
