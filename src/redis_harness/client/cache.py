"""A service's cache in front of the origin store, with the usual patterns, surviving Redis failures.

- cache-aside read (`get`, `get_many`): Redis first; on a miss read the origin
  and fill the cache with the entity's TTL from the profile's table.
- write-through (`write_quotes`): origin first, then the cache, see below.
- bulk updates (`bulk_refresh`, `write_quotes` with many quotes): pipelines.
- event invalidation (`on_price`, `record_trade`): a price move of more than
  1 % drops the cached price; a trade drops the pair's volume and history.
- distributed lock (`locked`): redis-py's Lock (SET NX PX, Lua release).
- fallback: when Redis fails or the breaker is open, reads go to the origin and
  writes still land in the origin; cache keys whose state is unknown are
  journaled and deleted once Redis answers again.

Consistency of write-through, on failure of either side:
- The origin write fails: OriginError is raised, nothing was committed, and the
  cache is not touched, so it still agrees with the origin.
- The cache write fails (Redis down, breaker open, timeout): the origin write
  stands and the call returns normally, so the write is not lost. Its keys go
  to the pending-invalidation journal: this process serves them from the origin
  until the journal is replayed (DEL) after Redis answers again. Other processes
  may read the previous cached value until then or until its TTL runs out
  (30 s for prices). A timed-out SET may still be applied when a paused server
  resumes; the replay runs after that and removes it.
- The process dies between the two writes: the cache keeps the previous value
  until its TTL runs out.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import redis
from redis.exceptions import LockError, LockNotOwnedError
from redis.lock import Lock

from redis_harness.client.breaker import BreakerOpen, State, Transition
from redis_harness.client.codec import Codec, CodecError
from redis_harness.client.connection import RedisSettings, ResilientRedis
from redis_harness.client.keys import build_key, check_service, lock_key
from redis_harness.client.stats import CacheStats
from redis_harness.client.versions import SchemaVersions
from redis_harness.origin.store import ENTITIES, OriginStore, Quote

T = TypeVar("T")
log = logging.getLogger(__name__)

# Redis did not answer (or was not asked): serve from the origin instead.
UNAVAILABLE = (BreakerOpen, redis.ConnectionError, redis.TimeoutError)
PIPELINE_CHUNK = 500
# Time to live per entity when nothing else is given (a profile's `ttl:` defaults are the same).
DEFAULT_TTL_S = {"price": 30.0, "liquidity": 60.0, "volume": 300.0, "historical": 86400.0}
PRICE_MOVE = 0.01  # a price move above 1 % makes the cached price wrong enough to drop


class LockNotAcquired(Exception):
    """Another holder has the lock (or Redis is unavailable) and the wait ran out."""


class ServiceCache:
    def __init__(
        self,
        client: ResilientRedis,
        origin: OriginStore,
        *,
        service: str,
        ttl: Mapping[str, float],
        codec: Codec | None = None,
        version_refresh_s: float = 5.0,
        price_move: float = PRICE_MOVE,
        max_pending: int = 100_000,
    ) -> None:
        missing = [e for e in ENTITIES if e not in ttl]
        if missing:
            raise ValueError(f"ttl: no TTL for {', '.join(missing)}; the profile's ttl table has them all")
        self.client = client
        self.origin = origin
        self.service = check_service(service)
        self.ttl = dict(ttl)
        self.codec = codec or Codec()
        self.price_move = price_move
        self.max_pending = max_pending
        self.stats = CacheStats()
        self.versions = SchemaVersions(client, service)
        self.version_refresh_s = version_refresh_s
        self._version = 1
        self._version_checked = float("-inf")
        self._accessed: Counter[tuple[str, str]] = Counter()
        self._accessed_lock = threading.Lock()
        # key -> generation: a replay removes a key only if no newer failure re-journaled it meanwhile.
        self._pending: dict[str, int] = {}
        self._pending_lock = threading.Lock()
        self._generation = itertools.count(1)
        self._replay_due = False
        client.breaker.add_listener(self._on_transition)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], service: str, origin: OriginStore, *, breaker: Mapping[str, Any] | None = None
    ) -> ServiceCache:
        """For a service run on its own: connection from REDIS_HOST, REDIS_PORT, REDIS_DB,
        REDIS_PASSWORD (and REDIS_USERNAME), TTLs the defaults (a profile's defaults too)."""
        client = ResilientRedis(RedisSettings.from_env(env, client_name=f"redis-harness-{service}"), **(breaker or {}))
        return cls(client, origin, service=service, ttl=DEFAULT_TTL_S)

    # ------------------------------------------------------------------ keys and versions

    @property
    def version(self) -> int:
        now = time.monotonic()
        if now - self._version_checked >= self.version_refresh_s:
            self._version_checked = now  # first, so concurrent callers do not all ask
            # Unavailable: keep the last known version; the data path falls back anyway.
            with contextlib.suppress(*UNAVAILABLE):
                self._version = self.versions.current()
        return self._version

    def refresh_version(self) -> int:
        self._version_checked = float("-inf")
        return self.version

    def key(self, entity: str, id: str) -> str:
        if entity not in self.ttl:
            raise ValueError(f"entity: {entity!r} is not one of {', '.join(self.ttl)}")
        return build_key(self.service, self.version, entity, id)

    def ttl_ms(self, entity: str) -> int:
        return int(self.ttl[entity] * 1000)

    def access_counts(self) -> Counter[tuple[str, str]]:
        with self._accessed_lock:
            return Counter(self._accessed)

    # ------------------------------------------------------------------ reads

    def get(self, entity: str, id: str, *, single_flight: bool = False) -> dict[str, Any] | None:
        """Cache-aside read. With single_flight, one caller refills a missing entry under a lock
        while the others wait briefly for it instead of all hitting the origin."""
        key = self.key(entity, id)
        with self._accessed_lock:
            self._accessed[(entity, id)] += 1
        if not self._settle_pending(key):
            return self._fallback(entity, id)
        try:
            raw = self._timed_get(key)
        except UNAVAILABLE:
            return self._fallback(entity, id)
        if raw is not None:
            value = self._decode(key, raw)
            if value is not None:
                self.stats.count("hits")
                return value
        self.stats.count("misses")
        if single_flight:
            return self._refill_single_flight(entity, id, key)
        value = self._from_origin(entity, id)
        if value is not None:
            self._store([(key, value, self.ttl_ms(entity))])
        return value

    def get_many(self, entity: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Cache-aside for many ids: one MGET (one per slot on a Cluster), one origin pass for the misses, one
        pipeline to fill."""
        keys = [self.key(entity, i) for i in ids]
        with self._accessed_lock:
            self._accessed.update((entity, i) for i in ids)
        found: dict[str, dict[str, Any]] = {}
        if not all(self._settle_pending(k) for k in keys):
            return {i: v for i in ids if (v := self._fallback(entity, i)) is not None}
        try:
            raws = self.client.call(lambda r: _mget(r, keys))
        except UNAVAILABLE:
            return {i: v for i in ids if (v := self._fallback(entity, i)) is not None}
        missing = []
        for id_, key, raw in zip(ids, keys, raws, strict=True):
            value = self._decode(key, raw) if raw is not None else None
            if value is None:
                missing.append(id_)
            else:
                found[id_] = value
        self.stats.count("hits", len(found))
        self.stats.count("misses", len(missing))
        if missing:
            fresh = self._origin_call(lambda: self.origin.read_many(entity, missing), n=len(missing))
            self._store([(self.key(entity, i), v, self.ttl_ms(entity)) for i, v in fresh.items()])
            found.update(fresh)
        return found

    def _timed_get(self, key: str) -> bytes | None:
        started = time.perf_counter()
        raw = self.client.call(lambda r: r.get(key))
        self.stats.timed("cache_get", time.perf_counter() - started)
        return raw

    def _decode(self, key: str, raw: bytes) -> dict[str, Any] | None:
        try:
            return self.codec.decode(raw)
        except CodecError as exc:
            # Written by something else or damaged: treat as a miss; the refill overwrites it.
            self.stats.count("corrupt_values")
            log.warning("cache %s: dropping undecodable value at %s (%s)", self.service, key, exc)
            return None

    def _origin_call(self, fn: Callable[[], T], n: int = 1) -> T:
        started = time.perf_counter()
        result = fn()
        self.stats.timed("origin_read", (time.perf_counter() - started) / max(n, 1))
        self.stats.count("origin_reads", n)
        return result

    def _from_origin(self, entity: str, id: str) -> dict[str, Any] | None:
        return self._origin_call(lambda: self.origin.read(entity, id))

    def _fallback(self, entity: str, id: str) -> dict[str, Any] | None:
        self.stats.count("fallback_reads")
        return self._from_origin(entity, id)

    def _refill_single_flight(self, entity: str, id: str, key: str) -> dict[str, Any] | None:
        try:
            with self.locked(f"fill.{entity}.{id}", timeout_s=5.0, blocking_timeout_s=0):
                value = self._from_origin(entity, id)
                if value is not None:
                    self._store([(key, value, self.ttl_ms(entity))])
                return value
        except LockNotAcquired:
            self.stats.count("lock_contended")
        # Someone else is filling it: poll the cache briefly (bounded), then give up and read the origin.
        for _ in range(10):
            time.sleep(0.01)
            try:
                raw = self.client.call(lambda r: r.get(key))
            except UNAVAILABLE:
                break
            if raw is not None and (value := self._decode(key, raw)) is not None:
                return value
        return self._from_origin(entity, id)

    # ------------------------------------------------------------------ writes

    def write_quotes(self, quotes: Sequence[Quote]) -> dict[str, dict[str, Any]]:
        """Write-through: the origin in one transaction, then price and liquidity of each pair in
        one pipeline. Returns the new price record per symbol. See the module doc for consistency."""
        started = time.perf_counter()
        self.origin.apply_quotes(quotes)  # OriginError propagates: nothing committed, cache untouched
        self.stats.timed("origin_write", time.perf_counter() - started)
        symbols = list(dict.fromkeys(q.symbol for q in quotes))
        entries = []
        prices = {}
        for symbol in symbols:
            for entity in ("price", "liquidity"):
                value = self.origin.read(entity, symbol)
                if value is not None:
                    entries.append((self.key(entity, symbol), value, self.ttl_ms(entity)))
                    if entity == "price":
                        prices[symbol] = value
        self._store(entries)
        return prices

    def bulk_refresh(self, entity: str, ids: Sequence[str], *, only_missing: bool = False) -> int:
        """Load ids from the origin into the cache with pipelines; returns how many entries were set.
        only_missing (SET NX) never overwrites a fresher value, e.g. while warming."""
        fresh = self._origin_call(lambda: self.origin.read_many(entity, ids), n=len(ids))
        entries = [(self.key(entity, i), v, self.ttl_ms(entity)) for i, v in fresh.items()]
        return self._store(entries, only_missing=only_missing)

    def _store(self, entries: Sequence[tuple[str, Any, int]], *, only_missing: bool = False) -> int:
        """SET entries with their TTLs (ms) in pipelined chunks; a failure journals the keys."""
        stored = 0
        for start in range(0, len(entries), PIPELINE_CHUNK):
            chunk = [(k, self.codec.encode(v), ttl) for k, v, ttl in entries[start : start + PIPELINE_CHUNK]]

            def fill(pipe: Any, chunk: list[tuple[str, bytes, int]] = chunk) -> None:
                for key, payload, ttl in chunk:
                    pipe.set(key, payload, px=ttl, nx=only_missing)

            try:
                results = self.client.pipeline(fill)
            except (BreakerOpen, redis.RedisError) as exc:
                # Outcome unknown (a timed-out SET may still land): never trust these keys until deleted.
                self.stats.count("cache_write_failures", len(chunk))
                self._journal(k for k, _, _ in chunk)
                log.warning("cache %s: %d cache writes failed (%s); journaled", self.service, len(chunk), exc)
                continue
            done = sum(1 for r in results if r)
            self.stats.count("cache_writes", done)
            stored += done
        return stored

    # ------------------------------------------------------------------ invalidation

    def invalidate(self, keys: Iterable[str]) -> bool:
        """Delete keys now, or journal them for deletion when Redis is back; True if deleted now."""
        keys = list(keys)
        if not keys:
            return True
        try:
            self.client.call(lambda r: r.unlink(*keys))
        except (BreakerOpen, redis.RedisError):
            self._journal(keys)
            return False
        self.stats.count("invalidations", len(keys))
        return True

    def on_price(self, symbol: str, mid: float) -> bool:
        """A price event (a feed tick written to the origin elsewhere): drop the cached price when
        the new mid differs from it by more than the threshold. True if the entry was dropped."""
        key = self.key("price", symbol)
        try:
            raw = self.client.call(lambda r: r.get(key))
        except UNAVAILABLE:
            self._journal([key])  # cannot compare: assume it moved
            return True
        cached = self._decode(key, raw) if raw is not None else None
        if cached is None:
            return False
        if abs(mid - cached["mid"]) / cached["mid"] <= self.price_move:
            return False
        self.invalidate([key])
        return True

    def record_trade(self, symbol: str, price: float, volume: float) -> list[str]:
        """A trade: into the origin, then drop what it changed (volume, history, and the price if
        the trade moved it by more than the threshold). Returns the entities dropped."""
        self.origin.apply_trade(symbol, price, volume)
        dropped = ["volume", "historical"]
        self.invalidate([self.key(e, symbol) for e in dropped])
        if self.on_price(symbol, price):
            dropped.append("price")
        return dropped

    def _journal(self, keys: Iterable[str]) -> None:
        with self._pending_lock:
            for key in keys:
                if len(self._pending) >= self.max_pending and key not in self._pending:
                    self.stats.count("pending_dropped")  # bounded memory; the TTL still bounds staleness
                    continue
                self._pending[key] = next(self._generation)

    def _on_transition(self, transition: Transition) -> None:
        if transition.new is State.CLOSED:
            self._replay_due = True

    def pending(self) -> list[str]:
        with self._pending_lock:
            return list(self._pending)

    def _settle_pending(self, key: str) -> bool:
        """Before using `key`, replay the journal if it holds the key or Redis just came back.
        False means the key may still be stale in Redis: read it from the origin."""
        if not self._pending:
            return True
        if key in self._pending or self._replay_due:
            self.replay_pending()
        return key not in self._pending

    def replay_pending(self) -> int:
        """DEL every journaled key; returns how many were deleted (0 if Redis is still away)."""
        with self._pending_lock:
            snapshot = dict(self._pending)
        keys = list(snapshot)
        for start in range(0, len(keys), PIPELINE_CHUNK):
            chunk = keys[start : start + PIPELINE_CHUNK]
            try:
                self.client.call(lambda r, c=chunk: r.unlink(*c))
            except (BreakerOpen, redis.RedisError):
                return 0
        with self._pending_lock:
            for key, generation in snapshot.items():
                if self._pending.get(key) == generation:
                    del self._pending[key]
        self._replay_due = False
        self.stats.count("pending_replayed", len(keys))
        return len(keys)

    # ------------------------------------------------------------------ locks

    def lock(self, name: str, *, timeout_s: float = 10.0, blocking_timeout_s: float | None = 1.0) -> Lock:
        """redis-py's Lock on `<service>:lock:<name>`: SET NX PX to take it (expires after
        timeout_s if the holder dies), a Lua script to release only one's own token."""
        return self.client.redis.lock(
            lock_key(self.service, name), timeout=timeout_s, blocking_timeout=blocking_timeout_s, thread_local=False
        )

    @contextmanager
    def locked(self, name: str, *, timeout_s: float = 10.0, blocking_timeout_s: float | None = 1.0) -> Iterator[Lock]:
        lock = self.lock(name, timeout_s=timeout_s, blocking_timeout_s=blocking_timeout_s)
        try:
            acquired = self.client.call(lambda r: lock.acquire())
        except UNAVAILABLE as exc:
            raise LockNotAcquired(f"lock {lock.name!r}: Redis unavailable ({exc})") from exc
        if not acquired:
            raise LockNotAcquired(f"lock {lock.name!r}: held by another owner for {blocking_timeout_s} s")
        try:
            yield lock
        finally:
            try:
                self.client.call(lambda r: lock.release())
            except LockNotOwnedError:
                log.warning("lock %s expired before release: the work took longer than %s s", lock.name, timeout_s)
            except (LockError, *UNAVAILABLE) as exc:
                log.warning("lock %s not released (%s); it expires after %s s", lock.name, exc, timeout_s)

    def close(self) -> None:
        self.client.close()


def _mget(r: redis.Redis, keys: list[str]) -> list[Any]:
    """MGET of keys in any slots: on a Cluster, one MGET per slot (redis-py's mget_nonatomic; the ids
    of one call hash to many slots, and a single MGET across them is refused with CROSSSLOT)."""
    nonatomic = getattr(r, "mget_nonatomic", None)
    return nonatomic(keys) if nonatomic is not None else r.mget(keys)
