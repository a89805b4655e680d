"""raw: GET and SET 1:1 over 10,000 keys with 3-byte values.

The mix `redis-benchmark -t get,set -r 10000 -d 3` runs, so the harness's
figures can be set beside redis-benchmark's in one run (`redis-harness bench`).
On the lean user: every command is encoded once, at import, so a call is a
send, a read and a timing.
"""

from __future__ import annotations

import random

from locust import task
from redis.crc import key_slot

from loadtests.lean import LeanRedisUser, encode
from redis_harness.load.scenarios import RAW_KEYSPACE, RAW_USER, raw_key

VALUE = b"xxx"
PAIRS_PER_TASK = 10
# No TTL, as redis-benchmark's SET has none: the run removes these keys when it ends (Scenario.scratch_keys).
SETS = [encode("SET", raw_key(n), VALUE) for n in range(RAW_KEYSPACE)]
GETS = [encode("GET", raw_key(n)) for n in range(RAW_KEYSPACE)]
SLOTS = [key_slot(raw_key(n).encode()) for n in range(RAW_KEYSPACE)]  # on a Cluster: whose primary gets it


class RawGetSet(LeanRedisUser):
    # A service user on its own prefix: `default` may be off, and no user may touch every key.
    acl_user = RAW_USER

    @task
    def set_then_get(self) -> None:
        # Several pairs per task: Locust's scheduling between tasks costs as much as a call.
        for _ in range(PAIRS_PER_TASK):
            n, m = random.randrange(RAW_KEYSPACE), random.randrange(RAW_KEYSPACE)
            self.call("SET raw", SETS[n], slot=SLOTS[n])
            self.call("GET raw", GETS[m], slot=SLOTS[m])
