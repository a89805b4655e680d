"""eviction: write past maxmemory with and without TTL, keep reading.

Each user writes its share of a plan sized from the profile's maxmemory:
  1. persistent keys (no TTL) worth 50 % of maxmemory,
  2. volatile keys (TTL = ttl.historical) worth 100 % more: Redis must now evict,
     and volatile-lru may only take keys with a TTL,
  3. more persistent keys until writes are refused with -OOM (no volatile key left).
Every iteration also reads back one of its keys, so hit-ratio decay shows.
At the end each user counts what survived: every persistent key must be there.
The report's timeline marks each phase (and the reads-only end) when the first user begins it.
"""

from __future__ import annotations

import random
from typing import Any

from locust import task

from loadtests.harness import RedisUser
from redis_harness.client.keys import build_key

VALUE_BYTES = 4096
PER_KEY_OVERHEAD = 100  # dict entry, robj, sds headers: roughly, per key
PERSISTENT_SHARE = 0.5
VOLATILE_SHARE = 1.0
PRESSURE_SHARE = 0.6  # phase 3 writes at most this much more, then only reads
EXISTS_BATCH = 500
PHASE_MARKS = {
    "persistent": "phase 1: persistent keys (no TTL)",
    "volatile": "phase 2: volatile keys (with TTL)",
    "pressure": "phase 3: persistent keys until -OOM",
    None: "phase 4: reads only",
}


class EvictionWriter(RedisUser):
    acl_user = "processing"

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        users = max(1, getattr(environment.parsed_options, "num_users", 1) or 1)
        per_key = VALUE_BYTES + PER_KEY_OVERHEAD
        budget = self.state.profile.memory.maxmemory_bytes / users / per_key
        self.plan = [
            ("persistent", int(budget * PERSISTENT_SHARE)),
            ("volatile", int(budget * VOLATILE_SHARE)),
            ("pressure", int(budget * PRESSURE_SHARE)),
        ]
        self.ttl_s = int(self.state.profile.ttl["historical"])
        self.tag = f"{self.state.run_id}-{id(self):x}"
        self.attempted: dict[str, int] = {"persistent": 0, "volatile": 0, "pressure": 0}
        self.acked: dict[str, list[int]] = {"persistent": [], "volatile": [], "pressure": []}
        self.value = random.randbytes(VALUE_BYTES)

    def _key(self, kind: str, n: int) -> str:
        return build_key("processing", 1, "evict", f"{self.tag}-{kind}-{n}")

    def _phase(self) -> str | None:
        for kind, count in self.plan:
            if self.attempted[kind] < count:
                return kind
        return None

    @task
    def write_and_read(self) -> None:
        kind = self._phase()
        self.state.mark_once(PHASE_MARKS[kind])
        if kind is not None:
            n = self.attempted[kind]
            self.attempted[kind] += 1  # a refused write (-OOM, counted by call) is not retried
            ttl = self.ttl_s if kind == "volatile" else None
            if self.call(f"SET {kind}", self.redis.set, self._key(kind, n), self.value, ex=ttl):
                self.acked[kind].append(n)
        self._read_back()

    def _read_back(self) -> None:
        kinds = [k for k in ("persistent", "volatile") if self.acked[k]]
        if not kinds:
            return
        kind = random.choice(kinds)
        key = self._key(kind, random.choice(self.acked[kind]))
        self.cache_read(f"GET {kind}", kind, self.redis.get, key)

    def on_stop(self) -> None:
        """Count survivors: persistent keys (phases 1 and 3) must all be there."""
        events = self.state.recorder.events
        for kind in ("persistent", "pressure", "volatile"):
            present = 0
            keys = [self._key(kind, n) for n in self.acked[kind]]
            for start in range(0, len(keys), EXISTS_BATCH):
                batch = keys[start : start + EXISTS_BATCH]
                present += self.call("EXISTS survivors", self.redis.exists, *batch) or 0
            group = "volatile" if kind == "volatile" else "persistent"
            events.add(f"{group}_written", len(keys))
            events.add(f"{group}_present", present)
            # Leave the deployment as it was: keys without TTL would fill it for the next run.
            for start in range(0, len(keys), EXISTS_BATCH):
                self.call("UNLINK cleanup", self.redis.unlink, *keys[start : start + EXISTS_BATCH])
        super().on_stop()
