"""Durable writes: a write acknowledged only once a replica has it too.

Replication is asynchronous: a primary acknowledges a write before any replica has it, so a
failover can lose it. A primary cut off from its replicas (a partition) keeps acknowledging
writes until `min-replicas-max-lag` runs out, and all of them are discarded when it rejoins
as a replica. For the few updates a service cannot lose, send WAIT on the same connection
right after the write: Redis answers how many replicas confirmed it, and fewer than asked
means "not durable", which the caller treats as a failed write (it may be retried).

WAIT does not make Redis strongly consistent (a write that was refused as not durable may
still survive), but a write acknowledged here survives a failover that promotes a replica
which confirmed it; Sentinel and Cluster promote the most up-to-date one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

DURABLE_TIMEOUT_MS = 500  # a healthy replica confirms in about a round trip; well below socket timeouts


class NotDurable(redis.RedisError):
    """The primary applied the write, but fewer replicas than asked confirmed it in time: a
    failover now may lose it. Not an outage: the circuit breaker does not count it."""


def durable_write(
    client: redis.Redis,
    fill: Callable[[Any], None],
    *,
    replicas: int = 1,
    timeout_ms: int = DURABLE_TIMEOUT_MS,
) -> list[Any]:
    """Commands queued by `fill(pipe)`, then WAIT, in one round trip on one connection (a pipeline
    without MULTI); the commands' replies, or NotDurable when fewer than `replicas` confirmed
    within `timeout_ms`. The client's socket timeout must be longer than timeout_ms."""
    if replicas < 1 or timeout_ms < 1:
        raise ValueError("durable_write: replicas and timeout_ms must be 1 or more (WAIT 0 would wait forever)")
    with client.pipeline(transaction=False) as pipe:
        fill(pipe)
        pipe.wait(replicas, timeout_ms)
        *replies, confirmed = pipe.execute()
    if confirmed < replicas:
        # The primary may be one cut off from its replicas and already replaced: a Sentinel client
        # asks Sentinel again on its next connection, and a plain one just reconnects.
        client.connection_pool.disconnect()
        raise NotDurable(f"{confirmed} of {replicas} replica(s) confirmed the write within {timeout_ms} ms")
    return replies
