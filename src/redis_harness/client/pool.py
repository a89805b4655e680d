"""How a client's connection pool is doing: connections in use and idle, the maximum, waits and errors.

In use and idle come from redis-py's own pool (`get_connection_count`); redis-py
counts no waits or errors, so each pool's `get_connection` is wrapped once to
count them:

- waits: checkouts that found no idle connection, so the caller waited for a
  new connection to be opened (or, in a blocking pool, for one to be released);
  a steadily growing count means the pool is too small for the concurrency;
- errors: checkouts that failed (the server unreachable, the pool exhausted).

A Cluster client has one pool per node; their figures are added up.
"""

from __future__ import annotations

import threading
from typing import Any

_STATS_ATTRIBUTE = "_redis_harness_pool_stats"


class PoolCounters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.checkouts = 0
        self.waits = 0
        self.errors = 0

    def add(self, *, waited: bool, failed: bool) -> None:
        with self._lock:
            self.checkouts += 1
            self.waits += waited
            self.errors += failed


def _idle_now(pool: Any) -> int | None:
    """Idle connections without building redis-py's metric attributes on every checkout."""
    available = getattr(pool, "_available_connections", None)  # ConnectionPool
    if available is not None:
        return len(available)
    queue = getattr(pool, "pool", None)  # BlockingConnectionPool: a queue of connections or None
    if queue is not None and hasattr(queue, "queue"):
        return sum(1 for c in list(queue.queue) if c is not None)
    return None


def instrument(pool: Any) -> PoolCounters:
    """Count waits and errors of `pool` from now on (once per pool; later calls return the same counters)."""
    counters = getattr(pool, _STATS_ATTRIBUTE, None)
    if counters is not None:
        return counters
    counters = PoolCounters()
    original = pool.get_connection

    def get_connection(*args: Any, **kwargs: Any) -> Any:
        idle = _idle_now(pool)
        try:
            connection = original(*args, **kwargs)
        except Exception:
            counters.add(waited=idle == 0, failed=True)
            raise
        counters.add(waited=idle == 0, failed=False)
        return connection

    pool.get_connection = get_connection
    setattr(pool, _STATS_ATTRIBUTE, counters)
    return counters


def pools_of(client: Any) -> list[Any]:
    """The connection pools behind a client: one for a single server or Sentinel primary, one per Cluster node."""
    if hasattr(client, "get_nodes"):  # RedisCluster
        return [n.redis_connection.connection_pool for n in client.get_nodes() if n.redis_connection is not None]
    return [client.connection_pool]


def pool_status(client: Any) -> dict[str, int | None]:
    """{in_use, idle, max, waits, errors, checkouts} over the client's pools; counting starts at the first call."""
    status: dict[str, int | None] = {"in_use": 0, "idle": 0, "max": 0, "waits": 0, "errors": 0, "checkouts": 0}
    for pool in pools_of(client):
        counters = instrument(pool)
        for count, attributes in pool.get_connection_count():
            key = "in_use" if str(attributes.get("db.client.connection.state")) == "used" else "idle"
            status[key] = (status[key] or 0) + count
        status["max"] = (status["max"] or 0) + pool.max_connections
        status["waits"] = (status["waits"] or 0) + counters.waits
        status["errors"] = (status["errors"] or 0) + counters.errors
        status["checkouts"] = (status["checkouts"] or 0) + counters.checkouts
    return status
