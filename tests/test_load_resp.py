"""The lean user's wire format (commands encoded once in RESP2, pure logic) and its call watchdog."""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Iterator

import gevent
import gevent.socket
import hiredis
import pytest
from gevent.server import StreamServer

from redis_harness.load.resp import CallWatchdog, ConnectionFailed, RespConnection, encode


def test_encode_is_what_redis_reads() -> None:
    assert encode("SET", "key:000000000001", b"xxx") == b"*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000001\r\n$3\r\nxxx\r\n"
    assert encode("EXPIRE", "k", 30) == b"*3\r\n$6\r\nEXPIRE\r\n$1\r\nk\r\n$2\r\n30\r\n"


def test_binary_and_utf8_arguments_keep_their_length() -> None:
    payload = encode("SET", "prix:€", b"\x00\r\n")
    reader = hiredis.Reader()  # RESP arrays parse the same way in both directions
    reader.feed(payload)
    assert reader.gets() == [b"SET", "prix:€".encode(), b"\x00\r\n"]


# ----------------------------------------------------------------------------- the call watchdog
# Real loopback sockets in this process: a peer that never answers and one that answers late.


@contextlib.contextmanager
def peer(reply_after_s: float | None, reply: bytes = b"+PONG\r\n") -> Iterator[tuple[str, int]]:
    """A TCP peer on loopback that reads commands and answers `reply` after `reply_after_s` (None: never),
    in pieces of 64 kB."""

    def serve(sock: gevent.socket.socket, _: object) -> None:
        while sock.recv(4096):
            if reply_after_s is not None:
                gevent.sleep(reply_after_s)
                for at in range(0, len(reply), 65_536):
                    sock.sendall(reply[at : at + 65_536])
                    gevent.sleep(0.01)

    server = StreamServer(("127.0.0.1", 0), serve)
    server.start()
    try:
        yield "127.0.0.1", server.server_port
    finally:
        server.stop(timeout=1)


def timed_call(connection: RespConnection) -> tuple[float, Exception | None]:
    began = time.monotonic()
    try:
        connection.execute(encode("PING"))
    except ConnectionFailed as exc:
        return time.monotonic() - began, exc
    return time.monotonic() - began, None


def test_the_watchdog_fails_every_unanswered_call_soon_after_its_timeout() -> None:
    """20 cooperative connections (no socket timeout once connected) to a peer that never answers:
    each call fails as a timeout between 0.5 s and 0.5 s + the watchdog's period (plus the scheduling
    of a busy test host), and the next call connects again."""
    watchdog = CallWatchdog(period_s=0.05)
    with peer(None) as (host, port):
        connections = [RespConnection(host, port, None, None, 0.5, watchdog=watchdog) for _ in range(20)]
        with gevent.Timeout(10):
            results = [g.get() for g in [gevent.spawn(timed_call, c) for c in connections]]
            again = timed_call(connections[0])
    for took, error in [*results, again]:
        assert isinstance(error, ConnectionFailed) and "no reply within 0.5 s" in str(error), error
        assert 0.5 <= took < 1.5, took
    assert connections[0].connects == 2


def test_the_watchdog_fails_a_tls_handshake_that_gets_no_answer() -> None:
    """A peer that takes the TCP connection and never answers the TLS handshake (a paused server does
    so: its kernel still accepts): the call fails as a timeout, not after the peer's whim."""
    tls = ssl.create_default_context()
    with peer(None) as (host, port):
        connection = RespConnection(host, port, None, None, 0.5, tls=tls, watchdog=CallWatchdog(0.05))
        with gevent.Timeout(10):
            took, error = timed_call(connection)
    assert isinstance(error, ConnectionFailed) and "no reply within 0.5 s" in str(error), error
    assert 0.5 <= took < 1.5, took


def test_the_watchdog_times_each_call_not_the_connections_age() -> None:
    """Five calls answered after 0.3 s each on one connection with a 0.5 s timeout: 1.5 s in all,
    every call succeeds (the watchdog measures from each call's start)."""
    with peer(0.3) as (host, port):
        connection = RespConnection(host, port, None, None, 0.5, watchdog=CallWatchdog(0.05))
        with gevent.Timeout(10):
            results = [timed_call(connection) for _ in range(5)]
    assert [error for _, error in results] == [None] * 5
    assert connection.connects == 1


def test_without_a_watchdog_that_looks_an_unanswered_call_waits_on() -> None:
    """The broken variant: a watchdog that never looks in time. The socket has no timeout of its own once
    connected, so the call is still waiting when the test's own 2 s bound ends it: the timeout above is
    the watchdog's doing."""
    with peer(None) as (host, port):
        connection = RespConnection(host, port, None, None, 0.5, watchdog=CallWatchdog(60))
        with pytest.raises(gevent.Timeout), gevent.Timeout(2):
            connection.execute(encode("PING"))
        connection.close()


def test_a_cooperative_connection_reads_a_reply_that_comes_in_many_pieces() -> None:
    """A 300 kB bulk reply sent in five pieces 10 ms apart: many reads, each after a wait, one whole reply."""
    value = bytes(range(256)) * 1200
    with peer(0.0, b"$%d\r\n%s\r\n" % (len(value), value)) as (host, port):
        connection = RespConnection(host, port, None, None, 0.5, watchdog=CallWatchdog(0.05))
        with gevent.Timeout(10):
            assert connection.execute(encode("GET", "big")) == value
            assert connection.execute(encode("GET", "big")) == value
    assert connection.connects == 1
