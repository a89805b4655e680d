"""raw: GET and SET 1:1 over 10,000 keys with 3-byte values.

The mix `redis-benchmark -t get,set -r 10000 -d 3` runs, so the harness's
figures can be set beside redis-benchmark's in one run (`redis-harness bench`).
"""

from __future__ import annotations

import random

from locust import task

from loadtests.harness import RedisUser

KEYSPACE = 10_000
VALUE = b"xxx"


class RawGetSet(RedisUser):
    # A service user on its own prefix: `default` may be off, and no user may touch every key.
    acl_user = "price"

    @task
    def set_then_get(self) -> None:
        # redis-benchmark's key shape (key:__rand_int__ zero-padded to 12 digits) under price's prefix
        self.call("SET raw", self.redis.set, f"price:raw:key:{random.randrange(KEYSPACE):012d}", VALUE)
        self.call("GET raw", self.redis.get, f"price:raw:key:{random.randrange(KEYSPACE):012d}")
