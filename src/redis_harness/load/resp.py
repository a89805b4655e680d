"""Redis's wire protocol (RESP2) on a plain socket (or one wrapped in TLS), with replies parsed by hiredis.Reader.

The cheapest way this harness has to talk to Redis from Python: commands
encoded once (`encode`), a connection that only sends bytes and parses
replies. The lean Locust user (loadtests/lean.py) runs it on gevent's
cooperative sockets; the calibration (load/calibrate.py) on a blocking one,
so the latency floor it records is not redis-py's. Against a deployment with
security.tls on, the socket is wrapped by an ssl.SSLContext the caller builds
(TlsSettings.ssl_context: the deployment's CA, the name checked, a client
certificate when the deployment asks for one).
"""

from __future__ import annotations

import socket
import ssl
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
    ) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        # None: plaintext. A context of the socket's kind: gevent's for its sockets, the standard one otherwise.
        self.tls = tls
        # None: the socket module's class at connect time (gevent's cooperative one inside Locust).
        self.socket_class = socket_class
        self._auth = (
            encode("AUTH", username, password)
            if username and password
            else (encode("AUTH", password) if password else None)
        )
        self._sock: socket.socket | None = None
        self._reader = hiredis.Reader()
        self._buffer = bytearray(READ_SIZE)
        self.connects = 0

    def _connect(self) -> socket.socket:
        sock = (self.socket_class or socket.socket)(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(self.timeout_s)
        try:
            sock.connect((self.host, self.port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                # The handshake runs here, within the timeout; the host is checked against the certificate's SANs.
                sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        except OSError:  # ssl.SSLError and certificate failures are OSErrors too
            sock.close()
            raise
        self._sock = sock
        self._reader = hiredis.Reader()
        self.connects += 1
        if self._auth is not None:
            reply = self._round_trip(self._auth, 1)
            if isinstance(reply, hiredis.ReplyError):
                self.close()
                raise RedisReplyError(f"AUTH refused: {reply}")
        return sock

    def _round_trip(self, payload: bytes, replies: int) -> Any:
        sock = self._sock
        assert sock is not None
        sock.sendall(payload)
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
        try:
            if self._sock is None:
                self._connect()
            result = self._round_trip(payload, replies)
        except (OSError, ConnectionError, hiredis.ProtocolError) as exc:  # socket.timeout is an OSError
            self.close()
            raise ConnectionFailed(f"{exc.__class__.__name__}: {exc}") from None
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
