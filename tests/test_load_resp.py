"""The lean user's wire format: commands encoded once in RESP2 (pure logic, no server)."""

from __future__ import annotations

import hiredis

from redis_harness.load.resp import encode


def test_encode_is_what_redis_reads() -> None:
    assert encode("SET", "key:000000000001", b"xxx") == b"*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000001\r\n$3\r\nxxx\r\n"
    assert encode("EXPIRE", "k", 30) == b"*3\r\n$6\r\nEXPIRE\r\n$1\r\nk\r\n$2\r\n30\r\n"


def test_binary_and_utf8_arguments_keep_their_length() -> None:
    payload = encode("SET", "prix:€", b"\x00\r\n")
    reader = hiredis.Reader()  # RESP arrays parse the same way in both directions
    reader.feed(payload)
    assert reader.gets() == [b"SET", "prix:€".encode(), b"\x00\r\n"]
