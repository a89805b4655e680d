"""Cache warming: load the most requested entries first, in the background, within bounds.

The order is what this process has seen requested most (its access counts),
then, for a cold start with no history, the origin's request popularity. The
run is bounded by an entry count and a time budget, works in pipelined
batches with SET NX (never overwriting a fresher write-through value), and
stops early when Redis is unavailable or it is cancelled.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from itertools import groupby

from redis_harness.client.breaker import State
from redis_harness.client.cache import ServiceCache


@dataclass
class WarmReport:
    planned: int = 0
    set: int = 0  # entries written (the rest were already cached or absent from the origin)
    batches: int = 0
    elapsed_s: float = 0.0
    stopped: str = "not started"  # done | budget | redis unavailable | cancelled
    order: list[tuple[str, str]] = field(default_factory=list)


class CacheWarmer:
    def __init__(
        self,
        cache: ServiceCache,
        *,
        entities: tuple[str, ...] = ("price", "liquidity", "volume", "historical"),
        limit: int = 200,
        batch: int = 50,
        budget_s: float = 10.0,
    ) -> None:
        self.cache = cache
        self.entities = entities
        self.limit = limit
        self.batch = batch
        self.budget_s = budget_s
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self.report = WarmReport()

    def plan(self) -> list[tuple[str, str]]:
        """(entity, id) pairs, most requested first, at most `limit`."""
        seen = [
            entry
            for entry, _ in sorted(self.cache.access_counts().items(), key=lambda kv: (-kv[1], kv[0]))
            if entry[0] in self.entities
        ]
        planned = seen[: self.limit]
        if len(planned) < self.limit:
            taken = set(planned)
            for symbol in self.cache.origin.hottest(self.limit):
                for entity in self.entities:
                    if (entity, symbol) not in taken and len(planned) < self.limit:
                        planned.append((entity, symbol))
                        taken.add((entity, symbol))
        return planned

    def run(self) -> WarmReport:
        started = time.monotonic()
        order = self.plan()
        report = self.report = WarmReport(planned=len(order), order=order, stopped="done")
        for start in range(0, len(order), self.batch):
            if self._cancel.is_set():
                report.stopped = "cancelled"
                break
            if time.monotonic() - started > self.budget_s:
                report.stopped = "budget"
                break
            if self.cache.client.breaker.state is State.OPEN:
                report.stopped = "redis unavailable"
                break
            # Consecutive entries of one entity share one pipeline.
            for entity, group in groupby(order[start : start + self.batch], key=lambda e: e[0]):
                report.set += self.cache.bulk_refresh(entity, [i for _, i in group], only_missing=True)
            report.batches += 1
        report.elapsed_s = time.monotonic() - started
        return report

    def start(self) -> WarmCall:
        """Run in a background thread; the caller goes on serving requests."""
        self._thread = threading.Thread(target=self.run, name=f"warm-{self.cache.service}", daemon=True)
        self._thread.start()
        return WarmCall(self)

    def cancel(self) -> None:
        self._cancel.set()


class WarmCall:
    def __init__(self, warmer: CacheWarmer) -> None:
        self.warmer = warmer

    def join(self, timeout_s: float) -> WarmReport | None:
        """The report once the run ended, or None if it is still running after timeout_s."""
        thread = self.warmer._thread
        if thread is not None:
            thread.join(timeout_s)
            if thread.is_alive():
                return None
        return self.warmer.report
