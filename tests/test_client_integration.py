"""The cache patterns against the real Redis of a deployment and the real SQLite origin."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from redis_harness.client.cache import LockNotAcquired, ServiceCache
from redis_harness.client.codec import Codec
from redis_harness.client.connection import ResilientRedis
from redis_harness.client.warming import CacheWarmer
from redis_harness.deploy.connect import service_cache, settings_for
from redis_harness.origin.store import ENTITIES, OriginError, OriginStore, Quote

from .conftest import Deployment, emit

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def deployment(fault_deployment: Deployment) -> Deployment:
    return fault_deployment


@pytest.fixture
def cache(deployment: Deployment, origin: OriginStore) -> Iterator[ServiceCache]:
    price_cache = service_cache(deployment.profile, deployment.secrets, "price", origin)
    yield price_cache
    price_cache.close()


def raw_get(cache: ServiceCache, key: str) -> bytes | None:
    return cache.client.call(lambda r: r.get(key))


def pttl(cache: ServiceCache, key: str) -> int:
    return cache.client.call(lambda r: r.pttl(key))


def test_client_from_the_plans_environment_variables(deployment: Deployment, origin: OriginStore) -> None:
    env = {
        "REDIS_HOST": deployment.profile.network.host,
        "REDIS_PORT": str(deployment.profile.network.port),
        "REDIS_DB": "0",
        "REDIS_USERNAME": "price",
        "REDIS_PASSWORD": deployment.secrets.service("price").password,
    }
    client = ResilientRedis.from_env(env)
    try:
        assert client.call(lambda r: r.set("price:v1:envcheck:x", b"1", px=10_000))
        with pytest.raises(redis.exceptions.NoPermissionError):  # logged in as `price`, not `default`
            client.call(lambda r: r.set("processing:v1:envcheck:x", b"1", px=10_000))
    finally:
        client.close()
    standalone = ServiceCache.from_env(env, "price", origin)
    try:
        assert standalone.get("price", "BTC-USDT") == origin.read("price", "BTC-USDT")
        assert standalone.ttl == {"price": 30, "liquidity": 60, "volume": 300, "historical": 86_400}
    finally:
        standalone.close()


def test_cache_aside_reads_the_origin_once_then_hits_with_the_profiles_ttl(cache: ServiceCache) -> None:
    for entity in ENTITIES:
        first = cache.get(entity, "SOL-USDT")
        assert first == cache.origin.read(entity, "SOL-USDT")
        assert cache.get(entity, "SOL-USDT") == first
        ttl_ms = pttl(cache, cache.key(entity, "SOL-USDT"))
        assert 0 < ttl_ms <= cache.ttl[entity] * 1000
        assert ttl_ms > cache.ttl[entity] * 1000 - 10_000  # set just now, from the profile's table
    snapshot = cache.stats.snapshot()
    assert (snapshot["hits"], snapshot["misses"]) == (len(ENTITIES), len(ENTITIES))
    assert cache.ttl == {"price": 30, "liquidity": 60, "volume": 300, "historical": 86_400}


def test_values_are_binary_and_series_are_compressed(cache: ServiceCache) -> None:
    cache.get("price", "ETH-USDT")
    cache.get("historical", "ETH-USDT")
    price_raw = raw_get(cache, cache.key("price", "ETH-USDT"))
    history_raw = raw_get(cache, cache.key("historical", "ETH-USDT"))
    assert not Codec.is_compressed(price_raw) and Codec.is_compressed(history_raw)
    assert cache.codec.decode(history_raw) == cache.origin.read("historical", "ETH-USDT")


def test_write_through_updates_origin_and_cache_together(cache: ServiceCache) -> None:
    before = cache.get("price", "AVAX-USDT")
    venue = next(iter(before["venues"]))
    mid = before["venues"][venue] * 1.002
    prices = cache.write_quotes([Quote("AVAX-USDT", venue, mid - 0.01, mid + 0.01, 2e6)])
    in_origin = cache.origin.read("price", "AVAX-USDT")
    assert prices["AVAX-USDT"] == in_origin and in_origin["venues"][venue] == pytest.approx(mid)
    assert cache.codec.decode(raw_get(cache, cache.key("price", "AVAX-USDT"))) == in_origin
    liquidity = cache.codec.decode(raw_get(cache, cache.key("liquidity", "AVAX-USDT")))
    assert liquidity == cache.origin.read("liquidity", "AVAX-USDT") and liquidity["venues"][venue] == 2e6


def test_write_through_origin_failure_changes_neither_side(cache: ServiceCache) -> None:
    before = cache.get("price", "DOT-USDT")
    venue = next(iter(before["venues"]))
    with pytest.raises(OriginError):
        cache.write_quotes([Quote("DOT-USDT", venue, 7.0, 6.0, 1e6)])  # ask below bid: refused by the origin
    assert cache.origin.read("price", "DOT-USDT") == before
    assert cache.codec.decode(raw_get(cache, cache.key("price", "DOT-USDT"))) == before


def test_bulk_refresh_pipelines_every_symbol(cache: ServiceCache, capsys: pytest.CaptureFixture[str]) -> None:
    symbols = cache.origin.symbols()
    assert cache.bulk_refresh("volume", symbols) == len(symbols)
    keys = [cache.key("volume", s) for s in symbols]
    ttls = cache.client.pipeline(lambda pipe: [pipe.pttl(k) for k in keys])
    assert all(0 < t <= 300_000 for t in ttls)
    # The same writes pipelined and one round trip each, for the report.
    payloads = [(k, cache.codec.encode(cache.origin.read("volume", s))) for k, s in zip(keys, symbols, strict=True)]
    started = time.perf_counter()
    cache.client.pipeline(lambda pipe: [pipe.set(k, v, px=300_000) for k, v in payloads])
    pipelined = time.perf_counter() - started
    started = time.perf_counter()
    for key, value in payloads:
        cache.client.call(lambda r, k=key, v=value: r.set(k, v, px=300_000))
    one_by_one = time.perf_counter() - started
    emit(
        capsys,
        "bulk_pipeline",
        {"keys": len(keys), "pipelined_ms": round(pipelined * 1e3, 2), "one_by_one_ms": round(one_by_one * 1e3, 2)},
    )


def test_price_event_invalidates_only_a_move_above_one_percent(cache: ServiceCache) -> None:
    cached = cache.get("price", "LINK-USDT")
    key = cache.key("price", "LINK-USDT")
    assert cache.on_price("LINK-USDT", cached["mid"] * 1.009) is False
    assert raw_get(cache, key) is not None
    assert cache.on_price("LINK-USDT", cached["mid"] * 0.985) is True
    assert raw_get(cache, key) is None


def test_a_trade_invalidates_volume_and_history_and_the_next_read_sees_it(cache: ServiceCache) -> None:
    volume = cache.get("volume", "LTC-USDT")
    cache.get("historical", "LTC-USDT")
    price = cache.get("price", "LTC-USDT")
    dropped = cache.record_trade("LTC-USDT", price["mid"], 12.5)  # at the mid: the price stays cached
    assert dropped == ["volume", "historical"]
    assert raw_get(cache, cache.key("volume", "LTC-USDT")) is None
    assert raw_get(cache, cache.key("price", "LTC-USDT")) is not None
    assert cache.get("volume", "LTC-USDT")["volume_24h"] == pytest.approx(volume["volume_24h"] + 12.5)
    assert "price" in cache.record_trade("LTC-USDT", price["mid"] * 1.05, 1.0)  # a 5 % jump drops the price too


def test_lock_excludes_others_and_expires_when_its_holder_dies(
    deployment: Deployment, origin: OriginStore, cache: ServiceCache
) -> None:
    other = service_cache(deployment.profile, deployment.secrets, "price", origin)
    try:
        with cache.locked("rebalance", timeout_s=5) as held:
            assert 0 < pttl(cache, held.name) <= 5000  # SET NX PX underneath
            with pytest.raises(LockNotAcquired), other.locked("rebalance", blocking_timeout_s=0.2):
                pass
        with other.locked("rebalance", blocking_timeout_s=0.2):
            pass  # free once released
        crashed = cache.lock("crash", timeout_s=0.5)
        assert crashed.acquire()  # and never released: its holder "dies"
        started = time.monotonic()
        with other.locked("crash", blocking_timeout_s=5):
            waited = time.monotonic() - started
        assert waited < 5
    finally:
        other.close()


def test_single_flight_leaves_the_refill_to_the_lock_holder(
    deployment: Deployment, origin: OriginStore, cache: ServiceCache
) -> None:
    other = service_cache(deployment.profile, deployment.secrets, "price", origin)
    try:
        key = cache.key("historical", "XLM-USDT")
        cache.invalidate([key])
        with cache.locked("fill.historical.XLM-USDT"):
            value = other.get("historical", "XLM-USDT", single_flight=True)
        assert value == origin.read("historical", "XLM-USDT")  # served from the origin after a bounded wait
        assert other.stats.counts["lock_contended"] == 1
        assert raw_get(cache, key) is None  # only the lock holder fills
        assert other.get("historical", "XLM-USDT", single_flight=True) == value
        assert raw_get(cache, key) is not None
    finally:
        other.close()


def test_concurrent_single_flight_readers_agree(cache: ServiceCache, capsys: pytest.CaptureFixture[str]) -> None:
    cache.invalidate([cache.key("historical", "NEAR-USDT")])
    before = cache.stats.counts["origin_reads"]
    results: list[object] = []
    start = threading.Barrier(8, timeout=10)

    def read() -> None:
        start.wait()
        results.append(cache.get("historical", "NEAR-USDT", single_flight=True))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 8 and all(r == results[0] for r in results)
    emit(capsys, "single_flight", {"readers": 8, "origin_reads": cache.stats.counts["origin_reads"] - before})


def test_version_bump_makes_old_entries_unreachable_and_purges_them(
    cache: ServiceCache, deployment: Deployment
) -> None:
    symbols = cache.origin.hottest(20)
    cache.bulk_refresh("price", symbols)
    old_version = cache.refresh_version()
    old_keys = [cache.key("price", s) for s in symbols]
    new_version = cache.versions.bump()
    assert new_version == old_version + 1 and cache.refresh_version() == new_version
    misses = cache.stats.counts["misses"]
    cache.get("price", symbols[0])
    assert cache.stats.counts["misses"] == misses + 1  # the old entry is not reachable any more
    admin = ResilientRedis(settings_for(deployment.profile, "admin", deployment.secrets.admin.password))
    try:
        # Services may not SCAN (it lists every prefix): the purge runs as admin.
        with pytest.raises(redis.exceptions.NoPermissionError):
            cache.client.call(lambda r: r.scan(0))
        report = cache.versions.purge_older(admin, batch=7)  # small batches: many SCAN calls, never KEYS
    finally:
        admin.close()
    assert report.complete and report.deleted >= len(old_keys) and report.current == new_version
    assert cache.client.call(lambda r: r.exists(*old_keys)) == 0
    assert raw_get(cache, cache.key("price", symbols[0])) is not None  # the current version stays


def test_warming_loads_the_most_requested_first_in_the_background(cache: ServiceCache) -> None:
    for symbol, times in (("XRP-USDT", 5), ("DOGE-USDT", 3)):
        for _ in range(times):
            cache.get("price", symbol)
    cache.invalidate([cache.key("price", "XRP-USDT"), cache.key("price", "DOGE-USDT")])
    fresh = cache.write_quotes([Quote("ADA-USDT", "binance", 0.449, 0.451, 5e5)])["ADA-USDT"]
    warmer = CacheWarmer(cache, entities=("price",), limit=30, batch=4, budget_s=20)
    call = warmer.start()
    report = call.join(30)
    assert report is not None and report.stopped == "done"
    assert report.order[:2] == [("price", "XRP-USDT"), ("price", "DOGE-USDT")]
    assert report.planned == 30 and report.batches == 8
    assert raw_get(cache, cache.key("price", "XRP-USDT")) is not None
    # SET NX: the write-through value is never replaced by the warmer
    assert cache.codec.decode(raw_get(cache, cache.key("price", "ADA-USDT"))) == fresh


def test_a_service_cannot_reach_another_services_keys(
    deployment: Deployment, origin: OriginStore, cache: ServiceCache
) -> None:
    intruder = ServiceCache(cache.client, origin, service="processing", ttl=deployment.profile.ttl)
    with pytest.raises(redis.exceptions.NoPermissionError):
        intruder.get("price", "BTC-USDT")  # an ACL refusal is a bug to see, not an outage to hide
    assert cache.client.breaker.consecutive_failures == 0


def test_origin_versus_cache_latency(cache: ServiceCache, capsys: pytest.CaptureFixture[str]) -> None:
    """What the cache saves per entity: the origin's computation against a Redis GET + decode.

    The figures are printed, not asserted (timings are measurements). What is asserted is that
    they mean what they say: every timed cache read was a hit that returned the origin's value."""
    symbols = cache.origin.hottest(40)
    figures = {}
    for entity in ENTITIES:
        origin_s, cache_s = [], []
        cache.bulk_refresh(entity, symbols)
        hits_before = cache.stats.counts["hits"]
        for _ in range(5):
            for symbol in symbols:
                started = time.perf_counter()
                from_origin = cache.origin.read(entity, symbol)
                origin_s.append(time.perf_counter() - started)
                started = time.perf_counter()
                from_cache = cache.get(entity, symbol)
                cache_s.append(time.perf_counter() - started)
                assert from_cache == from_origin, f"{entity} {symbol}: the cache served another value"
        assert cache.stats.counts["hits"] - hits_before == len(cache_s), f"{entity}: a timed read missed"
        figures[entity] = {
            "origin_p50_us": round(sorted(origin_s)[len(origin_s) // 2] * 1e6, 1),
            "cache_hit_p50_us": round(sorted(cache_s)[len(cache_s) // 2] * 1e6, 1),
            "origin_p99_us": round(sorted(origin_s)[int(len(origin_s) * 0.99)] * 1e6, 1),
            "cache_hit_p99_us": round(sorted(cache_s)[int(len(cache_s) * 0.99)] * 1e6, 1),
        }
    emit(capsys, "origin_vs_cache_latency", figures)
