"""Schema versions of a service's cached data, tracked in Redis.

The current version lives in `<service>:meta:version` (absent = 1). Every data
key carries the version it was written under, so bumping it makes all older
entries unreachable at once; they expire by their TTL, and `purge_older` (as admin)
removes them sooner with SCAN (never KEYS, which blocks the server for the whole
keyspace) in bounded batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from redis_harness.client.connection import ResilientRedis
from redis_harness.client.keys import BadKeyPart, meta_key, parse_key, service_pattern

FIRST_VERSION = 1


@dataclass(frozen=True)
class PurgeReport:
    current: int
    scanned: int
    deleted: int
    complete: bool  # False when the scan-call budget ran out first; run it again


class SchemaVersions:
    def __init__(self, client: ResilientRedis, service: str) -> None:
        self.client = client
        self.service = service
        self.key = meta_key(service, "version")

    def current(self) -> int:
        raw = self.client.call(lambda r: r.get(self.key))
        return int(raw) if raw is not None else FIRST_VERSION

    def bump(self) -> int:
        """Move the service to the next schema version (atomic across processes)."""

        def fill(pipe: redis.client.Pipeline) -> None:
            pipe.set(self.key, FIRST_VERSION, nx=True)  # an absent key means version 1, not 0
            pipe.incr(self.key)

        return int(self.client.pipeline(fill, transaction=True)[-1])

    def purge_older(self, admin: ResilientRedis, *, batch: int = 500, max_scan_calls: int = 10_000) -> PurgeReport:
        """UNLINK the service's data keys written under any version older than the current one.

        Runs as `admin`: SCAN is not filtered by key pattern, so a service user may not
        run it (it would list every service's keys). Old entries also expire by their TTL."""
        current = self.current()
        pattern = service_pattern(self.service)
        cursor, scanned, deleted, calls = 0, 0, 0, 0
        while calls < max_scan_calls:
            cursor, keys = admin.call(lambda r, c=cursor: r.scan(cursor=c, match=pattern, count=batch))
            calls += 1
            scanned += len(keys)
            stale = [k for k in keys if _version_of(k) < current]
            if stale:
                deleted += admin.call(lambda r, s=stale: r.unlink(*s))
            if cursor == 0:
                return PurgeReport(current, scanned, deleted, complete=True)
        return PurgeReport(current, scanned, deleted, complete=False)


def _version_of(key: bytes | str) -> int:
    text = key.decode() if isinstance(key, bytes) else key
    try:
        return parse_key(text).version
    except BadKeyPart:
        return 1 << 62  # not ours to delete
