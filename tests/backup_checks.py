"""What the backup tests compare: a deployment's keys with their values and expiry times, and the
writer's keys as a consistent prefix. Pure functions, unit-tested on broken inputs (test_backup_file)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import redis

# key -> (value, absolute expiry in ms since the epoch or -1 without a TTL)
Snapshot = dict[str, tuple[object, int]]


def read_keys(client: redis.Redis, keys: Iterable[str], batch: int = 2000) -> Snapshot:
    """Value (string or hash) and PEXPIRETIME of each key that exists, read in pipelines."""
    keys = list(keys)
    found: Snapshot = {}
    for start in range(0, len(keys), batch):
        chunk = keys[start : start + batch]
        pipe = client.pipeline(transaction=False)
        for key in chunk:
            pipe.type(key)
            pipe.execute_command("PEXPIRETIME", key)
        answers = pipe.execute()
        kinds = dict(zip(chunk, answers[0::2], strict=True))
        expiry = dict(zip(chunk, answers[1::2], strict=True))
        pipe = client.pipeline(transaction=False)
        present = [k for k in chunk if kinds[k] in ("string", "hash")]
        for key in present:
            pipe.get(key) if kinds[key] == "string" else pipe.hgetall(key)
        for key, value in zip(present, pipe.execute(), strict=True):
            found[key] = (value, int(expiry[key]))
    return found


def key_differences(expected: Snapshot, actual: Snapshot, ttl_tolerance_ms: int = 0) -> list[str]:
    """Every expected key missing, with another value, with a TTL lost or gained, or expiring at
    another time (beyond the tolerance); empty when the restore kept them all."""
    problems = []
    for key, (value, expires) in expected.items():
        if key not in actual:
            problems.append(f"{key}: missing")
            continue
        got_value, got_expires = actual[key]
        if got_value != value:
            problems.append(f"{key}: value {got_value!r}, expected {value!r}")
        if (expires == -1) != (got_expires == -1):
            problems.append(f"{key}: expiry {got_expires}, expected {expires} (a TTL lost or gained)")
        elif abs(got_expires - expires) > ttl_tolerance_ms:
            problems.append(f"{key}: expires at {got_expires} ms, expected {expires} ms")
    return problems


def prefix_problems(present: Iterable[int], acked_before: int) -> list[str]:
    """The writer's keys in a restored snapshot: 0..m-1 with no gap (one writer in order: a point in
    time keeps a prefix), and m > acked_before (everything acknowledged before the backup began)."""
    numbers = sorted(present)
    problems = []
    if numbers != list(range(len(numbers))):
        gaps = sorted(set(range(numbers[-1] + 1)) - set(numbers)) if numbers else []
        problems.append(f"not a prefix: {len(gaps)} gaps, first {gaps[:3]}")
    if len(numbers) <= acked_before:
        problems.append(f"{len(numbers)} writer keys, but {acked_before + 1} were acknowledged before the backup")
    return problems


def digest(client: redis.Redis, match: str = "*") -> str:
    """SHA-256 over every key (SCAN), its value and its expiry: equal digests, equal data."""
    keys = sorted(client.scan_iter(match=match, count=5000))
    h = hashlib.sha256()
    for key, (value, expires) in sorted(read_keys(client, keys).items()):
        value = sorted(value.items()) if isinstance(value, Mapping) else value
        h.update(f"{key}\0{value!r}\0{expires}\n".encode())
    h.update(f"{len(keys)}".encode())
    return h.hexdigest()
