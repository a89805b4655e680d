"""What a cache did: hits, misses, fallbacks, writes, and latencies in microseconds.

Redis answers in tens to hundreds of microseconds, so latencies are kept as raw
samples (the most recent ones, bounded) rather than Locust's whole milliseconds.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

COUNTERS = (
    "hits",
    "misses",
    "origin_reads",
    "fallback_reads",  # Redis unreachable or breaker open: served from the origin
    "cache_writes",
    "cache_write_failures",
    "invalidations",
    "pending_replayed",
    "pending_dropped",
    "corrupt_values",
    "lock_contended",
)


class Latencies:
    def __init__(self, keep: int = 20_000) -> None:
        self._samples: deque[float] = deque(maxlen=keep)
        self.count = 0

    def add(self, seconds: float) -> None:
        self._samples.append(seconds)
        self.count += 1

    def summary(self) -> dict[str, float | int]:
        samples = sorted(self._samples)
        if not samples:
            return {"count": 0}

        def pct(p: float) -> float:
            return round(samples[min(len(samples) - 1, int(p * len(samples)))] * 1e6, 1)

        return {"count": self.count, "p50_us": pct(0.50), "p90_us": pct(0.90), "p99_us": pct(0.99), "max_us": pct(1)}


class CacheStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.latency = {"cache_get": Latencies(), "origin_read": Latencies(), "origin_write": Latencies()}

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counts[name] += n

    def timed(self, name: str, seconds: float) -> None:
        with self._lock:
            self.latency[name].add(seconds)

    @property
    def hit_ratio(self) -> float | None:
        looked = self.counts["hits"] + self.counts["misses"]
        return self.counts["hits"] / looked if looked else None

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                **self.counts,
                "hit_ratio": self.hit_ratio,
                "latency": {name: lat.summary() for name, lat in self.latency.items()},
            }
