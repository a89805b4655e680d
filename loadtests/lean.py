"""The lean Redis user: pre-encoded RESP on a socket in gevent's loop, replies parsed by hiredis.Reader.

For the high-rate paths (the `raw` scenario, plain GET/SET/pipelines): at 50
connections in one process redis-py's `Redis.get` costs about 50 µs of
generator CPU per call, its connection layer (`send_packed_command` +
`read_response`) about 22 µs and this about 17 µs (measured side by side on
the 2-core machine; figures in the README's load section); since its socket
left gevent's layers (resp.CooperativeSocket) about 9 µs, 12-13 µs over
mutual TLS. The difference is what lets one Locust process come near
redis-benchmark instead of measuring itself.

What it keeps from the redis-py user: one connection per simulated user,
a 1 s bound on each call so a paused server shows up as errors (resp.CallWatchdog,
one per process, in place of a timer per wait), connection and
authentication failures counted as errors of the call that met them (never
raised into Locust, never silently dropping the user), and the open-loop
pacing of `harness.Pacer`, and the primary for each command: a Sentinel's
(asked again after a failure or READONLY) or each Cluster slot's (corrected by
-MOVED), from load/routes.py. What it gives up: redis-py's retries, so an
error is the call's, and reading from replicas.
"""

from __future__ import annotations

import functools
import ssl
import time
from collections import Counter
from typing import Any

from gevent import monkey
from locust import User
from locust.runners import LocalRunner
from locust.stats import StatsEntry, bucket_response_time

from loadtests.harness import CALL_TIMEOUT_S, Pacer, report_request, state
from redis_harness.deploy.tls_client import client_ssl_context
from redis_harness.load.resp import (
    CallWatchdog,
    ConnectionFailed,
    OutOfMemoryReply,
    RedisReplyError,
    RespConnection,
    encode,
)
from redis_harness.load.routes import Address, Routes, routes_for

__all__ = ["LeanRedisUser", "encode"]

# Successful calls per user between two updates of Locust's statistics.
LOCUST_BATCH = 64


class LeanRedisUser(User):
    """A simulated client on a RespConnection: each call timed in µs, Locust request events fired.

    Subclasses pre-encode their commands with `encode()` and issue them with
    `call(name, payload)` (or `call(name, payload, ops=n)` for a pipeline of n).
    """

    abstract = True
    acl_user: str | None = None  # None: the `default` user

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.state = state()
        user, password = self.state.secrets.login(self.acl_user)
        tls = _tls_context(self.acl_user)
        self.routes = _routes(self.acl_user)
        socket_class = _socket_class(environment)
        self._open = functools.partial(
            RespConnection,
            username=user or "default",
            password=password,
            timeout_s=CALL_TIMEOUT_S,
            socket_class=socket_class,
            tls=tls,
            watchdog=_watchdog() if socket_class is None else None,
        )
        # One connection per primary this user has sent to (a Cluster's each, a Sentinel's current one).
        self.connections: dict[Address, RespConnection] = {}
        self.connection = self._connection_to(self.routes.address())
        self.pacer = Pacer(self.state.rate, environment, self.state.recorder)
        self.last_error: Exception | None = None
        self._record = self.state.recorder.record
        self._successes: dict[str, list[float]] = {}  # ms, for Locust's stats, logged in batches
        self._pending = 0

    def _connection_to(self, address: Address) -> RespConnection:
        connection = self.connections.get(address)
        if connection is None:
            connection = self.connections[address] = self._open(*address)
        return connection

    def call(self, name: str, payload: bytes, ops: int = 1, slot: int | None = None) -> Any:
        """Run one command (or a pipeline of `ops`, all in `slot` on a Cluster); errors are recorded and
        returned as None, never raised."""
        intended = self.pacer.wait(ops)
        connection = (
            self.connection
            if slot is None or self.routes.slots is None
            else self._connection_to(self.routes.slots[slot])
        )
        connects = connection.connects
        start = time.perf_counter()
        exception: Exception | None = None
        result = None
        try:
            result = connection.execute(payload, ops)
        except RedisReplyError as exc:
            exception = exc
        end = time.perf_counter()
        if exception is not None:
            # The routes are the process's: another user may have learnt the new primary already.
            self.routes.follow(str(exception), isinstance(exception, ConnectionFailed))
            self.connection = self._connection_to(self.routes.address())
        self.last_error = exception
        service_us = (end - start) * 1e6
        self._record(name, service_us, exception is None, (end - intended) * 1e6 if intended else None)
        if isinstance(exception, OutOfMemoryReply):
            self.state.recorder.events.add("oom_errors")
        if connection.connects > connects > 0:
            self.state.recorder.events.add("reconnects")
        if exception is None:
            batch = self._successes.get(name)
            if batch is None:
                batch = self._successes[name] = []
            batch.append(service_us / 1000.0)
            self._pending += 1
            if self._pending >= LOCUST_BATCH:
                self.flush_locust_stats()
        else:
            report_request(name, service_us / 1000.0, exception)
        return result

    def flush_locust_stats(self) -> None:
        """Successful calls into Locust's own statistics (its UI, CSV and locust.html), a batch at a time."""
        stats = self.environment.stats
        for name, values in self._successes.items():
            if values:
                log_batch(stats.get(name, "redis"), values)
                log_batch(stats.total, values)
        self._successes = {}
        self._pending = 0

    def on_stop(self) -> None:
        self.flush_locust_stats()
        for connection in self.connections.values():
            connection.close()


def _socket_class(environment: Any) -> type | None:
    """A blocking socket when this process runs one headless user; None (gevent's) otherwise.

    With a single connection there is nothing to multiplex, and gevent's wait
    for a reply (a switch to its hub and an epoll round) costs about 35 µs per
    call, more than Redis takes to answer on loopback; a blocking socket makes
    the one-connection latency Redis's, as redis-benchmark -c 1 measures it.
    Locust's own greenlets still run between tasks (the user yields after each). Over TLS too:
    the encryption runs in memory (resp.TlsChannel), on whichever socket this gives.
    """
    options = environment.parsed_options
    single = (
        options is not None
        and getattr(options, "headless", False)
        and getattr(options, "num_users", 0) == 1
        and isinstance(environment.runner, LocalRunner)
    )
    return monkey.get_original("socket", "socket") if single else None


@functools.cache
def _watchdog() -> CallWatchdog:
    """The process's one watchdog for its users' calls on gevent's sockets."""
    return CallWatchdog()


@functools.cache
def _routes(acl_user: str | None) -> Routes:
    """Where this process's users of `acl_user` send their commands, asked once per process."""
    return routes_for(state().profile, state().secrets, acl_user)


@functools.cache
def _tls_context(acl_user: str | None) -> ssl.SSLContext | None:
    """One context per user in this process (the CA and key loaded once); None on a plaintext deployment."""
    return client_ssl_context(state().profile, acl_user)


def log_batch(entry: StatsEntry, values_ms: list[float]) -> None:
    """What `StatsEntry.log` does once per request, done once per batch of successful requests.

    Firing `events.request` per call costs about 3 µs of generator CPU (a
    fifth of a lean call); the batch costs a tenth of that. Failures still go
    through `events.request` one by one, with their exception.
    """
    now = time.time()
    if entry.use_response_times_cache and entry.last_request_timestamp and int(now) > int(entry.last_request_timestamp):
        entry._cache_response_times(int(now) - 1)
    count = len(values_ms)
    entry.num_requests += count
    entry.num_reqs_per_sec[int(now)] += count
    entry.last_request_timestamp = now
    entry.total_response_time += sum(values_ms)
    low, high = min(values_ms), max(values_ms)
    entry.min_response_time = low if entry.min_response_time is None else min(entry.min_response_time, low)
    entry.max_response_time = max(entry.max_response_time, high)
    # Locust keeps response times rounded (bucket_response_time: whole ms below 100 ms).
    for bucket, n in Counter(round(v) if v < 100 else bucket_response_time(v) for v in values_ms).items():
        entry.response_times[bucket] += n
