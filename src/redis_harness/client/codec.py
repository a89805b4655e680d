"""Cache values as bytes: MessagePack, zstd-compressed above a size threshold.

Small values (a price record is ~200 bytes) are not worth the CPU of
compressing; series (a day of 5-minute candles is ~8 kB) are. One header byte
says which form follows, so the threshold can change without breaking values
already cached. `benchmarks/codec_bench.py` measures the size saved against
the CPU spent.
"""

from __future__ import annotations

import threading
from typing import Any

import msgpack
import zstandard

RAW = b"\x01"  # MessagePack
ZSTD = b"\x02"  # zstd frame of MessagePack
DEFAULT_THRESHOLD = 1024
DEFAULT_LEVEL = 3
# A decompression bomb in the cache must not take the process down.
MAX_DECODED_BYTES = 64 * 1024 * 1024


class CodecError(ValueError):
    """Bytes that are not a value this codec wrote."""


class Codec:
    def __init__(self, threshold: int = DEFAULT_THRESHOLD, level: int = DEFAULT_LEVEL) -> None:
        if threshold < 0:
            raise ValueError("threshold: use 0 or more bytes")
        self.threshold = threshold
        self.level = level
        # zstandard's (de)compressor objects must not be shared between threads.
        self._local = threading.local()

    def _compressor(self) -> zstandard.ZstdCompressor:
        compressor = getattr(self._local, "compressor", None)
        if compressor is None:
            compressor = self._local.compressor = zstandard.ZstdCompressor(level=self.level)
        return compressor

    def _decompressor(self) -> zstandard.ZstdDecompressor:
        decompressor = getattr(self._local, "decompressor", None)
        if decompressor is None:
            decompressor = self._local.decompressor = zstandard.ZstdDecompressor()
        return decompressor

    def encode(self, value: Any) -> bytes:
        packed = msgpack.packb(value, use_bin_type=True)
        if len(packed) >= self.threshold:
            compressed = self._compressor().compress(packed)
            # Incompressible data (already random-looking) stays raw: no CPU on decode.
            if len(compressed) < len(packed):
                return ZSTD + compressed
        return RAW + packed

    def decode(self, data: bytes) -> Any:
        if not data:
            raise CodecError("empty value")
        head, body = data[:1], data[1:]
        try:
            if head == ZSTD:
                body = self._decompressor().decompress(body, max_output_size=MAX_DECODED_BYTES)
            elif head != RAW:
                raise CodecError(f"unknown header byte {head!r}; not written by this codec")
            return msgpack.unpackb(body, raw=False, strict_map_key=False)
        except (zstandard.ZstdError, ValueError, msgpack.UnpackException) as exc:
            if isinstance(exc, CodecError):
                raise
            raise CodecError(f"corrupt value ({exc.__class__.__name__}: {exc})") from None

    @staticmethod
    def is_compressed(data: bytes) -> bool:
        return data[:1] == ZSTD
