"""The origin store: the database the cache stands in front of (SQLite, embedded).

It holds what the three services (price, processing, acquisition) work on: trading pairs quoted on
several exchanges (bid, ask, order-book depth) and 5-minute candles. The four
cached entities are computed from it the way a service would, so an origin
read costs what it would cost, and that cost is what the cache saves:

  price       best bid/ask across exchanges, mid, spread, per-venue mids
  liquidity   order-book depth summed across exchanges
  volume      24-hour base and quote volume and VWAP, aggregated from candles
  historical  the last 24 hours of 5-minute closes and volumes

CHECK constraints make bad writes fail for real (a write-through test relies
on it). One connection per thread (sqlite3 objects must stay in their thread),
WAL so readers never wait for the writer.
"""

from __future__ import annotations

import math
import random
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENTITIES = ("price", "liquidity", "volume", "historical")
CANDLE_S = 300
DAY_S = 86_400
EXCHANGES = ("binance", "coinbase", "kraken", "okx", "bybit")
# Reference USD prices the seed data starts from (rough mid-2024 levels).
BASES = {
    "BTC": 64_000.0, "ETH": 3_100.0, "SOL": 145.0, "BNB": 580.0, "XRP": 0.52, "ADA": 0.45, "DOGE": 0.12,
    "AVAX": 28.0, "DOT": 6.5, "LINK": 14.0, "LTC": 80.0, "TRX": 0.12, "ATOM": 8.0, "UNI": 9.0, "XLM": 0.1,
    "NEAR": 5.0, "APT": 8.0, "ARB": 0.9, "OP": 1.8, "FIL": 4.5,
}  # fmt: skip
QUOTES = {"USDT": 1.0, "USDC": 1.0, "EUR": 1.08, "BTC": BASES["BTC"], "ETH": BASES["ETH"]}

SCHEMA = """
CREATE TABLE IF NOT EXISTS pairs (
    symbol     TEXT PRIMARY KEY,
    base       TEXT NOT NULL,
    quote      TEXT NOT NULL,
    popularity INTEGER NOT NULL CHECK (popularity >= 0)   -- requests per day, for warming order
);
CREATE TABLE IF NOT EXISTS quotes (
    symbol     TEXT NOT NULL REFERENCES pairs(symbol),
    exchange   TEXT NOT NULL,
    bid        REAL NOT NULL CHECK (bid > 0),
    ask        REAL NOT NULL CHECK (ask >= bid),
    depth_usd  REAL NOT NULL CHECK (depth_usd >= 0),
    updated_at REAL NOT NULL,
    PRIMARY KEY (symbol, exchange)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS candles (
    symbol TEXT NOT NULL REFERENCES pairs(symbol),
    ts     INTEGER NOT NULL,
    close  REAL NOT NULL CHECK (close > 0),
    volume REAL NOT NULL CHECK (volume >= 0),
    PRIMARY KEY (symbol, ts)
) WITHOUT ROWID;
"""


class OriginError(Exception):
    """The origin refused a write (constraint, lock, I/O); nothing was committed."""


@dataclass(frozen=True)
class Quote:
    symbol: str
    exchange: str
    bid: float
    ask: float
    depth_usd: float


class OriginStore:
    def __init__(self, path: Path, *, busy_timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._conn().executescript(SCHEMA)

    # ------------------------------------------------------------------ connections

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE for writes).
            # check_same_thread=False only so close() may close every thread's connection;
            # each connection is otherwise used by its own thread alone.
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def _write(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> None:
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            for sql, params in statements:
                conn.execute(sql, params)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise OriginError(f"origin write failed: {exc}") from exc

    # ------------------------------------------------------------------ seed

    def is_empty(self) -> bool:
        return self._conn().execute("SELECT COUNT(*) FROM pairs").fetchone()[0] == 0

    def seed(self, *, seed: int = 7, now: float | None = None) -> int:
        """Realistic, deterministic data: ~100 pairs, 2-5 venues each, a day of candles."""
        rng = random.Random(seed)
        end = int((now if now is not None else time.time()) // CANDLE_S * CANDLE_S)
        pairs, quotes, candles = [], [], []
        symbols = [(b, q) for b in BASES for q in QUOTES if b != q]
        for rank, (base, quote) in enumerate(symbols, start=1):
            symbol = f"{base}-{quote}"
            # Request popularity falls off like Zipf along market-cap order, with some noise.
            popularity = int(1_000_000 / rank**1.1 * rng.uniform(0.5, 1.5))
            pairs.append((symbol, base, quote, popularity))
            mid = BASES[base] / QUOTES[quote]
            for exchange in rng.sample(EXCHANGES, rng.randint(2, len(EXCHANGES))):
                venue_mid = mid * (1 + rng.gauss(0, 0.0008))
                half_spread = venue_mid * rng.uniform(0.5, 10) / 10_000
                depth = popularity * rng.uniform(5, 50)
                quotes.append((symbol, exchange, venue_mid - half_spread, venue_mid + half_spread, depth, float(end)))
            # A geometric random walk that ends at today's mid, ~2 % daily volatility.
            price = mid
            base_volume = popularity / max(mid * QUOTES[quote], 1e-9) * 0.5
            for step in range(DAY_S // CANDLE_S):
                ts = end - step * CANDLE_S
                candles.append((symbol, ts, price, base_volume * rng.lognormvariate(0, 0.6)))
                price *= math.exp(rng.gauss(0, 0.02 / math.sqrt(DAY_S / CANDLE_S)))
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT OR REPLACE INTO pairs VALUES (?, ?, ?, ?)", pairs)
        conn.executemany("INSERT OR REPLACE INTO quotes VALUES (?, ?, ?, ?, ?, ?)", quotes)
        conn.executemany("INSERT OR REPLACE INTO candles VALUES (?, ?, ?, ?)", candles)
        conn.execute("COMMIT")
        return len(pairs)

    @classmethod
    def open_seeded(cls, path: Path, *, seed: int = 7) -> OriginStore:
        store = cls(path)
        if store.is_empty():
            store.seed(seed=seed)
        return store

    # ------------------------------------------------------------------ reads

    def symbols(self) -> list[str]:
        return [row[0] for row in self._conn().execute("SELECT symbol FROM pairs ORDER BY symbol")]

    def hottest(self, limit: int) -> list[str]:
        """Symbols by request popularity, most requested first (warming order on a cold start)."""
        rows = self._conn().execute("SELECT symbol FROM pairs ORDER BY popularity DESC, symbol LIMIT ?", (limit,))
        return [row[0] for row in rows]

    def read(self, entity: str, symbol: str) -> dict[str, Any] | None:
        reader = _READERS.get(entity)
        if reader is None:
            raise ValueError(f"entity: {entity!r} is not one of {', '.join(ENTITIES)}")
        return reader(self._conn(), symbol)

    def read_many(self, entity: str, symbols: Iterable[str]) -> dict[str, dict[str, Any]]:
        found = {}
        for symbol in symbols:
            value = self.read(entity, symbol)
            if value is not None:
                found[symbol] = value
        return found

    # ------------------------------------------------------------------ writes

    def apply_quotes(self, quotes: Sequence[Quote], *, at: float | None = None) -> None:
        """Upsert venue quotes in one transaction: all or none."""
        stamp = at if at is not None else time.time()
        self._write(
            (
                "INSERT INTO quotes VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (symbol, exchange) DO UPDATE SET "
                "bid = excluded.bid, ask = excluded.ask, depth_usd = excluded.depth_usd, "
                "updated_at = excluded.updated_at",
                (q.symbol, q.exchange, q.bid, q.ask, q.depth_usd, stamp),
            )
            for q in quotes
        )

    def apply_trade(self, symbol: str, price: float, volume: float, *, at: float | None = None) -> None:
        """A trade lands in its 5-minute candle: the close moves to its price, its volume adds up."""
        ts = int((at if at is not None else time.time()) // CANDLE_S * CANDLE_S)
        self._write(
            [
                (
                    "INSERT INTO candles VALUES (?, ?, ?, ?) ON CONFLICT (symbol, ts) DO UPDATE SET "
                    "close = excluded.close, volume = candles.volume + excluded.volume",
                    (symbol, ts, price, volume),
                )
            ]
        )


# ---------------------------------------------------------------------- entity readers


def _price(conn: sqlite3.Connection, symbol: str) -> dict[str, Any] | None:
    rows = conn.execute("SELECT exchange, bid, ask, updated_at FROM quotes WHERE symbol = ?", (symbol,)).fetchall()
    if not rows:
        return None
    bid = max(r[1] for r in rows)
    ask = min(r[2] for r in rows)
    mid = (bid + ask) / 2
    return {
        "symbol": symbol,
        "bid": bid,
        "ask": ask,
        "mid": mid,
        # Venues disagree, so the best bid can exceed the best ask: a negative spread is an arbitrage signal.
        "spread_bps": (ask - bid) / mid * 10_000,
        "venues": {r[0]: (r[1] + r[2]) / 2 for r in sorted(rows)},
        "updated_at": max(r[3] for r in rows),
    }


def _liquidity(conn: sqlite3.Connection, symbol: str) -> dict[str, Any] | None:
    rows = conn.execute("SELECT exchange, depth_usd FROM quotes WHERE symbol = ? ORDER BY exchange", (symbol,))
    venues = dict(rows.fetchall())
    if not venues:
        return None
    return {"symbol": symbol, "depth_usd": sum(venues.values()), "venues": venues}


def _volume(conn: sqlite3.Connection, symbol: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT COUNT(*), SUM(volume), SUM(close * volume), MAX(ts) FROM candles "
        "WHERE symbol = ?1 AND ts > (SELECT MAX(ts) FROM candles WHERE symbol = ?1) - ?2",
        (symbol, DAY_S),
    ).fetchone()
    count, base, quote, last = row
    if not count:
        return None
    return {
        "symbol": symbol,
        "volume_24h": base,
        "quote_volume_24h": quote,
        "vwap_24h": quote / base if base else None,
        "candles": count,
        "as_of": last,
    }


def _historical(conn: sqlite3.Connection, symbol: str) -> dict[str, Any] | None:
    rows = conn.execute(
        "SELECT ts, close, volume FROM candles WHERE symbol = ? ORDER BY ts DESC LIMIT ?",
        (symbol, DAY_S // CANDLE_S),
    ).fetchall()
    if not rows:
        return None
    return {"symbol": symbol, "interval_s": CANDLE_S, "points": [list(r) for r in reversed(rows)]}


_READERS = {"price": _price, "liquidity": _liquidity, "volume": _volume, "historical": _historical}
