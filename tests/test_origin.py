"""The origin store: a real SQLite database seeded with the three services' data."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from redis_harness.origin.store import CANDLE_S, DAY_S, ENTITIES, OriginError, OriginStore, Quote


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> OriginStore:
    store = OriginStore.open_seeded(tmp_path_factory.mktemp("origin") / "origin.sqlite")
    yield store
    store.close()


def test_seed_is_realistic_and_deterministic(origin: OriginStore, tmp_path: Path) -> None:
    symbols = origin.symbols()
    assert len(symbols) > 50 and "BTC-USDT" in symbols and "ETH-BTC" in symbols
    twin = OriginStore(tmp_path / "twin.sqlite")
    twin.seed(now=1_700_000_000)
    again = OriginStore(tmp_path / "again.sqlite")
    again.seed(now=1_700_000_000)
    assert twin.read("historical", "SOL-USDT") == again.read("historical", "SOL-USDT")


def test_every_entity_is_computed_from_the_tables(origin: OriginStore) -> None:
    price = origin.read("price", "BTC-USDT")
    assert 2 <= len(price["venues"]) <= 5
    assert price["mid"] == pytest.approx((price["bid"] + price["ask"]) / 2)
    assert min(price["venues"].values()) <= price["mid"] <= max(price["venues"].values())
    assert 30_000 < price["mid"] < 130_000
    liquidity = origin.read("liquidity", "BTC-USDT")
    assert liquidity["depth_usd"] == pytest.approx(sum(liquidity["venues"].values()))
    volume = origin.read("volume", "BTC-USDT")
    assert volume["candles"] == DAY_S // CANDLE_S and volume["volume_24h"] > 0
    history = origin.read("historical", "BTC-USDT")
    stamps = [p[0] for p in history["points"]]
    assert len(stamps) == DAY_S // CANDLE_S and stamps == sorted(stamps)
    assert all(b - a == CANDLE_S for a, b in zip(stamps, stamps[1:], strict=False))


def test_unknown_symbols_read_as_none_and_unknown_entities_are_refused(origin: OriginStore) -> None:
    assert all(origin.read(e, "NOPE-USDT") is None for e in ENTITIES)
    with pytest.raises(ValueError, match="entity"):
        origin.read("orderbook", "BTC-USDT")


def test_popularity_orders_warming(origin: OriginStore) -> None:
    hottest = origin.hottest(5)
    assert len(hottest) == 5 and hottest[0] == "BTC-USDT"


def test_quote_writes_are_all_or_nothing(origin: OriginStore) -> None:
    before = origin.read("price", "ETH-USDT")
    venue = next(iter(before["venues"]))
    good = Quote("ETH-USDT", venue, 3000.0, 3000.5, 1e6)
    bad = Quote("ETH-USDT", venue, 3000.0, 2999.0, 1e6)  # ask below bid: CHECK constraint
    with pytest.raises(OriginError, match="CHECK constraint"):
        origin.apply_quotes([good, bad])
    assert origin.read("price", "ETH-USDT") == before
    origin.apply_quotes([good])
    assert origin.read("price", "ETH-USDT")["venues"][venue] == 3000.25


def test_a_trade_lands_in_its_candle(origin: OriginStore) -> None:
    last = origin.read("historical", "ADA-USDT")["points"][-1]
    before = origin.read("volume", "ADA-USDT")["volume_24h"]
    origin.apply_trade("ADA-USDT", 0.5, 1000.0, at=last[0] + 10)
    assert origin.read("historical", "ADA-USDT")["points"][-1] == [last[0], 0.5, last[2] + 1000.0]
    assert origin.read("volume", "ADA-USDT")["volume_24h"] == pytest.approx(before + 1000.0)


def test_threads_read_and_write_concurrently(origin: OriginStore) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                origin.read("price", "BTC-USDT")
                origin.apply_quotes([Quote("BTC-USDT", "okx", 60_000.0 + n, 60_001.0 + n + i, 1e5)])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
