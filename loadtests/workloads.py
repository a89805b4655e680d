"""The three services (price, processing, acquisition) as Locust users.

- PriceComparison runs the client library a service ships: a ServiceCache built
  by `deploy.connect.service_cache` (its own ACL user, the profile's TTLs, the
  circuit breaker, the codec) in front of the run's SQLite origin. Cache-aside
  reads with a skewed (Zipf-like) pair popularity, price events that drop a
  cached price moved by more than 1 % (`on_price`), and write-through quotes
  (`write_quotes`). Each library call is timed as one request, and split into
  its Redis round trips (`<name> [redis]`), its origin reads (`<name> [origin]`)
  and what is left, the library's own cost (`<name> [library]`: keys, codec,
  breaker, journal).
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
from collections.abc import Callable
from functools import cache
from itertools import accumulate
from pathlib import Path
from typing import Any, TypeVar

from locust import events, task

from loadtests.harness import RedisUser, RunState
from redis_harness.client.breaker import State, Transition
from redis_harness.client.cache import ServiceCache
from redis_harness.client.connection import ResilientRedis
from redis_harness.client.keys import build_key, lock_key
from redis_harness.client.warming import CacheWarmer, WarmReport
from redis_harness.deploy.connect import service_cache
from redis_harness.load.recorder import part_name
from redis_harness.load.sent import SentCommands
from redis_harness.origin.store import ENTITIES, OriginStore, Quote

T = TypeVar("T")
VERSION = 1
API_KEYS = 200
RATE_LIMIT = 100  # requests per window per API key
BIG_MOVE_SHARE = 0.2  # one price event in five moves the market past the invalidation threshold
WARM_BATCH = 500
WARM_BUDGET_S = 20.0


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


# ----------------------------------------------------------------------------- timing a library call


class Stopwatch:
    """Where one library call spent its time: Redis round trips and origin reads, summed."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.redis_s = 0.0
        self.redis_calls = 0
        self.redis_failed = 0
        self.origin_s = 0.0
        self.error: Exception | None = None  # the first Redis error (or open breaker) the library met

    def time_redis(self, client: ResilientRedis) -> None:
        """Time every Redis round trip the library makes through `client` (its one way to Redis).

        The library's own calls go through `client.call` (pipelines too), so one wrapper
        on this instance sees them all, inside the breaker: the time of `fn` is the
        round trip as redis-py makes it, the breaker's bookkeeping stays library time."""
        inner = client.call

        def call(fn: Callable[[Any], T]) -> T:
            def timed(r: Any) -> T:
                started = time.perf_counter()
                try:
                    return fn(r)
                except Exception:
                    self.redis_failed += 1
                    raise
                finally:
                    self.redis_s += time.perf_counter() - started
                    self.redis_calls += 1

            try:
                return inner(timed)
            except Exception as exc:  # the library decides what to do with it; the run counts it
                self.error = self.error or exc
                raise

        client.call = call  # type: ignore[method-assign]


class TimedOrigin:
    """The origin store as the library sees it, with the time spent in it added to a stopwatch."""

    def __init__(self, store: OriginStore, watch: Stopwatch) -> None:
        self._store = store
        self._watch = watch

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            finally:
                self._watch.origin_s += time.perf_counter() - started

        return timed


class BreakerMarks:
    """The breakers of one process as one timeline mark each way: opened (the first one to
    open) and all closed again, so ten users' breakers do not draw ten marks."""

    def __init__(self) -> None:
        self.open: set[int] = set()

    def listener(self, run: RunState, owner: int) -> Callable[[Transition], None]:
        def on_transition(change: Transition) -> None:
            run.recorder.events.add(f"breaker_{change.new.value.replace('-', '_')}")
            was_open = bool(self.open)
            if change.new is State.CLOSED:
                self.open.discard(owner)
            else:
                self.open.add(owner)
            if self.open and not was_open:
                run.mark(f"breaker open ({change.reason})", "breaker")
            elif was_open and not self.open:
                run.mark("breaker closed", "breaker")

        return on_transition


BREAKERS = BreakerMarks()


def cache_for(run: RunState, service: str, watch: Stopwatch, owner: int = 0) -> ServiceCache:
    """A ServiceCache as the service would deploy it, with its Redis and origin time measured."""
    built = service_cache(
        run.profile,
        run.secrets,
        service,
        TimedOrigin(origin(), watch),  # type: ignore[arg-type]  # same interface, timed
        breaker={"listeners": (BREAKERS.listener(run, owner),)},
    )
    watch.time_redis(built.client)
    return built


class ServiceUser(RedisUser):
    """A user that calls the shipped client library; each call is one timed request."""

    abstract = True
    service = "price"
    acl_user = "price"  # its plain connection (unused by the library calls) logs in as the service too

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.watch = Stopwatch()
        self.cache = cache_for(self.state, self.service, self.watch, owner=id(self))
        self.library_sent = SentCommands(self.cache.client.redis)

    def library(self, name: str, fn: Callable[[], T], *, datatype: str | None = None) -> T | None:
        """Run one library call; record it whole and in its parts. A call that raised, or met
        a Redis error it had to work around (fallback to the origin, journaled write), is a
        failed request: the service got an answer, but the cache did not serve it."""
        recorder = self.state.recorder
        counts = dict(self.cache.stats.counts)
        self.watch.reset()
        intended = self.pacer.wait()  # open loop (--rate): when this call was meant to start
        sent = self.library_sent.count
        started = time.perf_counter()
        result: T | None = None
        raised: Exception | None = None
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - a library call that raises is a failed request, not a crash
            raised = exc
        ended = time.perf_counter()
        watch = self.watch
        # --rate counts Redis commands: a call that sent several takes their slots too.
        self.pacer.advance(self.library_sent.count - sent - 1)
        error = raised or watch.error
        total_us = (ended - started) * 1e6
        intended_us = (ended - intended) * 1e6 if intended is not None else None
        recorder.record(name, total_us, error is None, intended_us, redis_call=False)
        if watch.redis_calls:
            # The round trips decide the error windows: a success here means Redis answered.
            recorder.record(part_name(name, "redis"), watch.redis_s * 1e6, not watch.redis_failed)
        if watch.origin_s:
            recorder.record(part_name(name, "origin"), watch.origin_s * 1e6, True, redis_call=False)
        library_us = max(0.0, total_us - (watch.redis_s + watch.origin_s) * 1e6)
        recorder.record(part_name(name, "library"), library_us, True, redis_call=False)
        after = self.cache.stats.counts
        if datatype is not None:
            for outcome, hit in (("hits", True), ("misses", False)):
                for _ in range(after[outcome] - counts[outcome]):
                    recorder.cache_read(datatype, hit)
        for counter in ("fallback_reads", "invalidations", "cache_write_failures", "lock_contended"):
            if after[counter] > counts[counter]:
                recorder.events.add(counter, after[counter] - counts[counter])
        events.request.fire(
            request_type="cache",
            name=name,
            response_time=total_us / 1000.0,
            response_length=0,
            exception=error,
            context={},
        )
        return result

    def on_stop(self) -> None:
        self.cache.close()
        super().on_stop()


class PriceComparison(ServiceUser):
    service = "price"
    weight = 6

    def _read(self, entity: str) -> None:
        symbol = pick_pair()
        self.library(f"cache.get {entity}", lambda: self.cache.get(entity, symbol), datatype=entity)

    @task(8)
    def price(self) -> None:
        self._read("price")

    @task(3)
    def liquidity(self) -> None:
        self._read("liquidity")

    @task(2)
    def volume(self) -> None:
        self._read("volume")

    @task(1)
    def historical(self) -> None:
        self._read("historical")

    @task(1)
    def price_event(self) -> None:
        """A new mid from the feed: the library drops the cached price if it moved by more than 1 %."""
        symbol = pick_pair()
        quote = origin().read("price", symbol)  # what the feed last said: the event's reference, untimed
        if not quote or not quote.get("mid"):
            return
        move = self.cache.price_move * (1.5 if random.random() < BIG_MOVE_SHARE else 0.2)
        mid = quote["mid"] * (1 + random.choice((-1, 1)) * move)
        dropped = self.library("cache.on_price price", lambda: self.cache.on_price(symbol, mid))
        if dropped:
            self.state.recorder.events.add("price_invalidations")

    @task(1)
    def quote(self) -> None:
        """A venue quote: write-through, the origin first, then the pair's price and liquidity."""
        symbol = pick_pair()
        mid = 1 + random.random() * 100
        quote = Quote(symbol, "loadtest", mid * 0.999, mid * 1.001, random.random() * 1e6)
        self.library("cache.write_quotes price", lambda: self.cache.write_quotes([quote]))


def warm(run: RunState, service: str = "price") -> WarmReport:
    """Warm the service's cache from the origin with the library's CacheWarmer, every pair and
    entity, most popular first (SET NX: a fresher value already cached stays)."""
    watch = Stopwatch()
    built = cache_for(run, service, watch)
    try:
        limit = len(popularity()[0]) * len(ENTITIES)
        return CacheWarmer(built, limit=limit, batch=WARM_BATCH, budget_s=WARM_BUDGET_S).run()
    finally:
        built.close()


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


SERVICE_USERS: tuple[type[Any], ...] = (PriceComparison, DataProcessing, DataAcquisition, LockContention)
