"""Size saved against CPU spent: JSON vs MessagePack vs MessagePack + zlib/zstd, per entity.

Values are the real entities read from a freshly seeded origin store. Run:

    .venv/bin/python benchmarks/codec_bench.py [--rounds 200] [--json]

Timings are per value, in microseconds, best of three passes (least disturbed
by other work on the machine); sizes are mean bytes per value.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import zstandard

from redis_harness.client.codec import Codec
from redis_harness.origin.store import ENTITIES, OriginStore

Encode = Callable[[Any], bytes]
Decode = Callable[[bytes], Any]


def formats() -> dict[str, tuple[Encode, Decode]]:
    zc, zd = zstandard.ZstdCompressor(level=3), zstandard.ZstdDecompressor()
    codec = Codec()

    def pack(v: Any) -> bytes:
        return msgpack.packb(v, use_bin_type=True)

    def unpack(b: bytes) -> Any:
        return msgpack.unpackb(b, raw=False, strict_map_key=False)

    return {
        "json": (lambda v: json.dumps(v, separators=(",", ":")).encode(), lambda b: json.loads(b)),
        "msgpack": (pack, unpack),
        "msgpack+zlib6": (lambda v: zlib.compress(pack(v), 6), lambda b: unpack(zlib.decompress(b))),
        "msgpack+zstd3": (lambda v: zc.compress(pack(v)), lambda b: unpack(zd.decompress(b))),
        f"codec (zstd >= {codec.threshold} B)": (codec.encode, codec.decode),
    }


def best_per_value_us(fn: Callable[[Any], Any], items: list[Any], rounds: int) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(rounds):
            for item in items:
                fn(item)
        best = min(best, (time.perf_counter() - started) / (rounds * len(items)))
    return best * 1e6


def run(rounds: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        origin = OriginStore(Path(tmp) / "origin.sqlite")
        origin.seed()
        symbols = origin.hottest(20)
        values = {entity: list(origin.read_many(entity, symbols).values()) for entity in ENTITIES}
        origin.close()
    rows = []
    for entity, items in values.items():
        baseline = None
        for name, (encode, decode) in formats().items():
            encoded = [encode(v) for v in items]
            assert all(decode(e) == v for e, v in zip(encoded, items, strict=True)), name
            size = statistics.mean(len(e) for e in encoded)
            baseline = baseline or size
            n = max(1, rounds // 10) if entity == "historical" else rounds
            rows.append(
                {
                    "entity": entity,
                    "format": name,
                    "bytes": round(size),
                    "vs_json": round(size / baseline, 3),
                    "encode_us": round(best_per_value_us(encode, items, n), 2),
                    "decode_us": round(best_per_value_us(decode, encoded, n), 2),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="passes over the 20 values per timing (bounded)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = run(max(1, min(args.rounds, 10_000)))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'entity':<11} {'format':<24} {'bytes':>7} {'vs json':>8} {'encode µs':>10} {'decode µs':>10}")
    for row in rows:
        print(
            f"{row['entity']:<11} {row['format']:<24} {row['bytes']:>7} {row['vs_json']:>8.3f} "
            f"{row['encode_us']:>10.2f} {row['decode_us']:>10.2f}"
        )


if __name__ == "__main__":
    main()
