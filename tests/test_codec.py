"""The codec: MessagePack, zstd above a threshold, one header byte. Sizes, not timings."""

from __future__ import annotations

import os

import pytest

from redis_harness.client.codec import RAW, ZSTD, Codec, CodecError

PRICE = {"symbol": "BTC-USDT", "bid": 63990.5, "ask": 64001.25, "venues": {"binance": 63995.0, "kraken": 64000.1}}
POINTS = [[1_700_000_000 + 300 * i, 64000.0 + i % 7, 12.5] for i in range(288)]
SERIES = {"symbol": "BTC-USDT", "interval_s": 300, "points": POINTS}


@pytest.mark.parametrize("value", [PRICE, SERIES, {"empty": []}, {"text": "é€ \x00", "n": None, "big": 2**63 - 1}])
def test_round_trip(value: dict) -> None:
    codec = Codec()
    assert codec.decode(codec.encode(value)) == value


def test_small_values_stay_raw_and_large_ones_are_compressed_smaller() -> None:
    codec = Codec(threshold=1024)
    small, large = codec.encode(PRICE), codec.encode(SERIES)
    assert small[:1] == RAW
    assert large[:1] == ZSTD and Codec.is_compressed(large)
    assert len(large) < len(Codec(threshold=10**9).encode(SERIES)) / 2


def test_threshold_is_inclusive_at_the_packed_size() -> None:
    packed_size = len(Codec(threshold=10**9).encode(SERIES)) - 1  # minus the header byte
    assert Codec(threshold=packed_size).encode(SERIES)[:1] == ZSTD
    assert Codec(threshold=packed_size + 1).encode(SERIES)[:1] == RAW


def test_incompressible_values_are_kept_raw() -> None:
    value = {"noise": os.urandom(4096)}
    encoded = Codec(threshold=0).encode(value)
    assert encoded[:1] == RAW
    assert Codec().decode(encoded) == value


@pytest.mark.parametrize("data", [b"", b"\x09abc", ZSTD + b"not zstd", RAW + b"\xc1"])
def test_foreign_or_damaged_bytes_raise_codec_error(data: bytes) -> None:
    with pytest.raises(CodecError):
        Codec().decode(data)
