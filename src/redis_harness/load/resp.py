"""Redis's wire protocol (RESP2) on a plain socket (or one wrapped in TLS), with replies parsed by hiredis.Reader.

The cheapest way this harness has to talk to Redis from Python: commands
encoded once (`encode`), a connection that only sends bytes and parses
replies. The lean Locust user (loadtests/lean.py) runs it in gevent's loop
on a `CooperativeSocket`, each call bounded by the process's `CallWatchdog`;
the calibration (load/calibrate.py) on a blocking socket, so the latency
floor it records is not redis-py's. Against a deployment with
security.tls on, TLS runs in an ssl.SSLObject over two memory buffers (`TlsChannel`)
with the caller's ssl.SSLContext (TlsSettings.ssl_context: the deployment's CA, the
name checked, a client certificate when the deployment asks for one), and the
socket stays a plain one of the caller's kind.
"""

from __future__ import annotations

import errno
import socket
import ssl
import time
import weakref
from collections.abc import Callable
from typing import Any

import hiredis

READ_SIZE = 16_384


def encode(*parts: bytes | str | int) -> bytes:
    """One command in RESP, encoded once so a hot loop only sends bytes."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class RedisReplyError(Exception):
    """An error reply from Redis (-ERR, -NOPERM, -OOM …), or a connection that failed."""


class ConnectionFailed(RedisReplyError):
    """The connection failed (refused, reset, timed out, closed, not Redis): no reply at all."""


class OutOfMemoryReply(RedisReplyError):
    """-OOM: Redis refused a write at maxmemory (the eviction scenario counts these)."""


def send_all(sock: socket.socket | CooperativeSocket | TlsChannel, payload: bytes) -> None:
    """socket.sendall without gevent's: its sendall sizes chunks with a getsockopt and arms a Timeout
    on every call (a tenth of a lean call's CPU); a command fits one send, which the timeout bounds."""
    sent = sock.send(payload)
    while sent < len(payload):
        sent += sock.send(memoryview(payload)[sent:])


class TlsChannel:
    """TLS over a plain socket, with the record layer in memory (ssl.MemoryBIO + SSLObject).

    Why not SSLContext.wrap_socket: under gevent that gives gevent's SSLSocket,
    whose read and send run several Python layers and a Timeout per call (35 %
    of a lean user's CPU over TLS, measured with py-spy); and in a gevent-patched
    process the standard library's SSLSocket cannot wrap a blocking socket. Here
    a call is the plain socket's own send and receive, whatever its kind, plus
    the encryption in C, so TLS costs the generator what it costs on the wire.
    """

    def __init__(self, sock: socket.socket | CooperativeSocket, context: ssl.SSLContext, server_hostname: str) -> None:
        self.sock = sock
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=server_hostname)
        while True:  # the handshake: runs within the socket's timeout, the name checked against the SANs
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._receive()
        self._flush()

    def _flush(self) -> None:
        if self._outgoing.pending:
            send_all(self.sock, self._outgoing.read())

    def _receive(self) -> None:
        data = self.sock.recv(READ_SIZE)
        if not data:
            raise ConnectionError("connection closed by the server")
        self._incoming.write(data)

    def send(self, payload: bytes | memoryview) -> int:
        """All of `payload`, encrypted and sent (the memory buffer takes any size)."""
        written = self._tls.write(payload)
        self._flush()
        return written

    def recv_into(self, buffer: bytearray) -> int:
        """Decrypted bytes into `buffer`, reading the socket only when no whole record is buffered."""
        if not self._incoming.pending:
            self._receive()
        while True:
            try:
                count = self._tls.read(len(buffer), buffer)
            except ssl.SSLWantReadError:  # a record not yet whole, or TLS 1.3's session tickets only
                self._flush()
                self._receive()
                continue
            if not count:  # the server closed TLS (close_notify)
                raise ConnectionError("connection closed by the server")
            return count

    def close(self) -> None:
        self.sock.close()


class CooperativeSocket:
    """A connected socket for gevent's loop with none of gevent's socket layers on a call's path.

    gevent's socket tries each read first (a failed recv and a Python exception
    per call, since a reply is never there yet right after the command), and
    arms a Timeout for each wait when the socket has a timeout. Here a read
    waits on the socket's own libev watcher, kept for the connection's life,
    then reads once; a call is bounded by the process's `CallWatchdog` instead.
    50 connections in one process, CPU per GET: plaintext 17.6 µs with
    gevent's socket, 12.2 µs without its Timeout, 9.2 µs on this; over TLS
    20.1, 15.0 and 12.5 µs (measured side by side, one process, 4 s each).
    """

    def __init__(self, connected: socket.socket) -> None:
        from gevent import get_hub, monkey

        self.hub = get_hub()
        # The standard library's socket on the same descriptor, never gevent's, in a patched process too.
        self.sock: socket.socket = monkey.get_original("socket", "socket")(fileno=connected.detach())
        self.sock.setblocking(False)
        fd = self.sock.fileno()
        self._readable, self._writable = self.hub.loop.io(fd, 1), self.hub.loop.io(fd, 2)
        self._closed = False

    def send(self, payload: bytes | memoryview) -> int:
        while True:
            try:
                return self.sock.send(payload)
            except BlockingIOError:  # the send buffer is full: rare for a command
                self.hub.wait(self._writable)

    def recv_into(self, buffer: bytearray) -> int:
        return self._when_readable(self.sock.recv_into, buffer)

    def recv(self, size: int) -> bytes:
        return self._when_readable(self.sock.recv, size)

    def _when_readable(self, read: Callable[[Any], Any], argument: Any) -> Any:
        while True:
            self.hub.wait(self._readable)  # level-triggered: returns at once when bytes are waiting
            try:
                return read(argument)
            except BlockingIOError:
                continue

    def close(self) -> None:
        """Closes; a greenlet waiting on this socket (the watchdog closes it under a call) gets an OSError."""
        if self._closed:
            return
        self._closed = True
        closed = OSError(errno.EBADF, "the connection was closed while a call waited on it")
        self.hub.cancel_waits_close_and_then([self._readable, self._writable], closed, self.sock.close)


class CallWatchdog:
    """Fails the calls on cooperative (gevent) connections that outlive their connection's timeout.

    gevent bounds each wait on a socket with a timeout by arming a Timeout (a
    third of a lean call's CPU at 50 connections in one process, measured).
    Here the connections' sockets (`CooperativeSocket`) have no timeout, and one
    greenlet per process looks at every call in flight each `period_s`: a call
    still running `timeout_s` after it began, connecting included, has its
    connection closed, which wakes the waiting greenlet with an error, reported
    as the call's timeout. So a call fails between timeout_s and timeout_s +
    period_s after it began, where redis-py's would at timeout_s.
    """

    def __init__(self, period_s: float = 0.1) -> None:
        self.period_s = period_s
        self._watched: weakref.WeakSet[RespConnection] = weakref.WeakSet()
        self._greenlet: Any = None

    def watch(self, connection: RespConnection) -> None:
        self._watched.add(connection)
        if self._greenlet is None or self._greenlet.dead:
            import gevent  # only where the connections are cooperative

            self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        import gevent

        while self._watched:
            gevent.sleep(self.period_s)
            now = time.monotonic()
            for connection in list(self._watched):
                began = connection.call_began
                if began is not None and now - began >= connection.timeout_s:
                    connection.expire()


class RespConnection:
    """One TCP connection speaking RESP2; connects (and authenticates) on first use and after a failure."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str | None,
        password: str | None,
        timeout_s: float = 1.0,
        socket_class: type[socket.socket] | None = None,
        tls: ssl.SSLContext | None = None,
        watchdog: CallWatchdog | None = None,
    ) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        # Given under gevent: the connection is a CooperativeSocket and the watchdog bounds each call.
        self.watchdog = watchdog
        self.call_began: float | None = None  # time.monotonic() of the call in flight, for the watchdog
        self._expired = False
        if watchdog is not None:
            watchdog.watch(self)
        # None: plaintext. Any client context: TLS runs in memory (TlsChannel), whatever the socket's kind.
        self.tls = tls
        # Without a watchdog: None for the socket module's class at connect time, or a blocking one.
        self.socket_class = socket_class
        self._auth = (
            encode("AUTH", username, password)
            if username and password
            else (encode("AUTH", password) if password else None)
        )
        self._sock: socket.socket | CooperativeSocket | TlsChannel | None = None
        self._handshaking: CooperativeSocket | None = None
        self._reader = hiredis.Reader()
        self._buffer = bytearray(READ_SIZE)
        self.connects = 0

    def _connect(self) -> None:
        self._expired = False
        if self.watchdog is not None:
            import gevent.socket  # connects cooperatively, then leaves the socket to CooperativeSocket

            sock = gevent.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        else:
            sock = (self.socket_class or socket.socket)(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(self.timeout_s)  # the connect's bound; the handshake's and AUTH's too without a watchdog
        plain: socket.socket | CooperativeSocket = sock
        try:
            sock.connect((self.host, self.port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.watchdog is not None:
                plain = self._handshaking = CooperativeSocket(sock)  # the watchdog may close it mid-handshake
            self._sock = plain if self.tls is None else TlsChannel(plain, self.tls, self.host)
        except OSError:  # ssl.SSLError, certificate failures and ConnectionError are OSErrors too
            plain.close()
            raise
        finally:
            self._handshaking = None
        self._reader = hiredis.Reader()
        self.connects += 1
        if self._auth is not None:
            reply = self._round_trip(self._auth, 1)
            if isinstance(reply, hiredis.ReplyError):
                self.close()
                raise RedisReplyError(f"AUTH refused: {reply}")

    def expire(self) -> None:
        """The watchdog's: this call has waited timeout_s; close, so its wait ends with an error
        (in a TLS handshake too, before the connection is this one's)."""
        self._expired = True
        if self._handshaking is not None:
            self._handshaking.close()
        self.close()

    def _round_trip(self, payload: bytes, replies: int) -> Any:
        sock = self._sock
        assert sock is not None
        send_all(sock, payload)
        reader, buffer = self._reader, self._buffer
        got: list[Any] = []
        while True:
            reply = reader.gets()
            if reply is False:
                count = sock.recv_into(buffer)
                if not count:
                    raise ConnectionError("connection closed by the server")
                reader.feed(buffer, 0, count)
                continue
            got.append(reply)
            if len(got) == replies:
                return got[0] if replies == 1 else got

    def execute(self, payload: bytes, replies: int = 1) -> Any:
        """Send one command (or `replies` pipelined ones) and return the reply (list of replies).

        Raises RedisReplyError for an error reply or a connection failure; the
        connection is dropped after a failure and opened again by the next call.
        """
        self.call_began = time.monotonic()
        try:
            if self._sock is None:
                self._connect()
            result = self._round_trip(payload, replies)
        except (OSError, ConnectionError, hiredis.ProtocolError) as exc:  # socket.timeout is an OSError
            self.close()
            if self._expired:
                self._expired = False
                raise ConnectionFailed(f"TimeoutError: no reply within {self.timeout_s:g} s") from None
            raise ConnectionFailed(f"{exc.__class__.__name__}: {exc}") from None
        finally:
            self.call_began = None
        for reply in result if replies > 1 else (result,):
            if isinstance(reply, hiredis.ReplyError):
                message = str(reply)
                raise (OutOfMemoryReply if message.startswith("OOM") else RedisReplyError)(message)
        return result

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
