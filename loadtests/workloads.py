"""The three services (price, processing, acquisition) as Locust users, with the key design and TTL table.

- PriceComparison: cache-aside reads of price/liquidity/volume/historical with a
  skewed (Zipf-like) pair popularity; a miss reads the SQLite origin (timed as
  its own request, since that cost is what the cache saves) and fills the cache
  with the profile's TTL; price updates invalidate on a move of more than 1 %.
- DataProcessing: intermediate calculations in hashes, bulk updates in pipelines.
- DataAcquisition: per-API-key rate limiting, fixed window (INCR+EXPIRE) and
  sliding window (sorted set).
- LockContention: a few hot locks (redis-py's Lock: SET NX PX + a Lua release).

Each user logs in as its service's ACL user, so the run also proves the ACLs
let the services do their work.
"""

from __future__ import annotations

import os
import random
import time
from functools import cache
from itertools import accumulate
from pathlib import Path
from typing import Any

from locust import task

from loadtests.harness import RedisUser
from redis_harness.client.codec import Codec
from redis_harness.client.keys import build_key, lock_key
from redis_harness.origin.store import OriginStore

VERSION = 1
INVALIDATE_MOVE = 0.01  # invalidate on a price move of more than 1 %
API_KEYS = 200
RATE_LIMIT = 100  # requests per window per API key
CODEC = Codec()


@cache
def origin() -> OriginStore:
    """The origin store of this run, seeded by `redis-harness load` before Locust starts."""
    return OriginStore(Path(os.environ["REDIS_HARNESS_ORIGIN"]))


@cache
def popularity() -> tuple[list[str], list[float]]:
    """Pairs, most requested first, with cumulative Zipf weights (s = 1.1)."""
    symbols = origin().hottest(1000)
    weights = [1 / rank**1.1 for rank in range(1, len(symbols) + 1)]
    return symbols, list(accumulate(weights))


def pick_pair() -> str:
    symbols, cumulative = popularity()
    return random.choices(symbols, cum_weights=cumulative)[0]


class PriceComparison(RedisUser):
    acl_user = "price"
    weight = 6

    def _cache_aside(self, entity: str) -> None:
        symbol = pick_pair()
        key = build_key("price", VERSION, entity, symbol)
        cached = self.cache_read(f"GET {entity}", entity, self.redis.get, key)
        if cached is not None or self.last_error is not None:
            return
        start = time.perf_counter()
        value = origin().read(entity, symbol)
        self.state.recorder.record(
            f"ORIGIN {entity}", (time.perf_counter() - start) * 1e6, value is not None, redis_call=False
        )
        if value is not None:
            ttl = int(self.state.profile.ttl[entity])
            self.call(f"SET {entity}", self.redis.set, key, CODEC.encode(value), ex=ttl)

    @task(8)
    def price(self) -> None:
        self._cache_aside("price")

    @task(3)
    def liquidity(self) -> None:
        self._cache_aside("liquidity")

    @task(2)
    def volume(self) -> None:
        self._cache_aside("volume")

    @task(1)
    def historical(self) -> None:
        self._cache_aside("historical")

    @task(1)
    def price_update(self) -> None:
        """A new quote arrives: drop the cached price if it moved by more than 1 %."""
        symbol = pick_pair()
        key = build_key("price", VERSION, "price", symbol)
        cached = self.call("GET price-check", self.redis.get, key)
        if cached is None:
            return
        mid = CODEC.decode(cached).get("mid")
        if mid and random.random() < 0.2:  # one update in five moves the market that much
            new_mid = mid * (1 + random.choice((-1, 1)) * INVALIDATE_MOVE * 1.5)
            if abs(new_mid - mid) / mid > INVALIDATE_MOVE:
                self.call("DEL price-invalidate", self.redis.delete, key)
                self.state.recorder.events.add("invalidations")


class DataProcessing(RedisUser):
    acl_user = "processing"
    weight = 2

    @task(4)
    def intermediate(self) -> None:
        symbol = pick_pair()
        key = build_key("processing", VERSION, "calc", symbol)
        fields = {"vwap": random.random() * 100, "ema": random.random() * 100, "ts": time.time()}
        self.call("HSET calc", self.redis.hset, key, mapping=fields)
        self.call("EXPIRE calc", self.redis.expire, key, int(self.state.profile.ttl["volume"]))
        self.cache_read("HGETALL calc", "calc", self.redis.hgetall, key)

    @task(1)
    def bulk_update(self) -> None:
        """Recompute 50 pairs at once: one round trip for 100 commands."""
        ttl = int(self.state.profile.ttl["volume"])
        pipe = self.redis.pipeline(transaction=False)
        for symbol in random.sample(popularity()[0], k=min(50, len(popularity()[0]))):
            key = build_key("processing", VERSION, "calc", symbol)
            pipe.hset(key, mapping={"vwap": random.random() * 100, "ts": time.time()})
            pipe.expire(key, ttl)
        self.call("PIPELINE calc-bulk", pipe.execute)


class DataAcquisition(RedisUser):
    acl_user = "acquisition"
    weight = 2

    @task(3)
    def fixed_window(self) -> None:
        api_key = f"key{random.randrange(API_KEYS)}"
        window = int(time.time() // 60)
        key = build_key("acquisition", VERSION, "ratelimit", f"{api_key}-{window}")
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, 120)
        result = self.call("PIPELINE ratelimit-fixed", pipe.execute)
        if result and result[0] > RATE_LIMIT:
            self.state.recorder.events.add("rate_limited")

    @task(1)
    def sliding_window(self) -> None:
        api_key = f"key{random.randrange(API_KEYS)}"
        key = build_key("acquisition", VERSION, "sliding", api_key)
        now = time.time()
        pipe = self.redis.pipeline(transaction=True)
        pipe.zremrangebyscore(key, 0, now - 60)
        pipe.zadd(key, {f"{now}-{random.random()}": now})
        pipe.zcard(key)
        pipe.expire(key, 61)
        self.call("PIPELINE ratelimit-sliding", pipe.execute)


class LockContention(RedisUser):
    acl_user = "processing"
    weight = 1

    @task
    def contend(self) -> None:
        lock = self.redis.lock(lock_key("processing", f"batch-{random.randrange(4)}"), timeout=2, blocking=False)
        acquired = self.call("LOCK acquire", lock.acquire)
        if not acquired:
            self.state.recorder.events.add("lock_contended")
            return
        time.sleep(random.uniform(0.001, 0.005))  # the critical section
        self.call("LOCK release", lock.release)


def warm_cache(redis_client: Any, ttl: dict[str, float]) -> int:
    """Fill the cache for every pair and entity from the origin, in pipelines (cache warming)."""
    written = 0
    for entity in ("price", "liquidity", "volume", "historical"):
        pipe = redis_client.pipeline(transaction=False)
        for symbol, value in origin().read_many(entity, popularity()[0]).items():
            pipe.set(build_key("price", VERSION, entity, symbol), CODEC.encode(value), ex=int(ttl[entity]))
            written += 1
        pipe.execute()
    return written


SERVICE_USERS: tuple[type[Any], ...] = (PriceComparison, DataProcessing, DataAcquisition, LockContention)
