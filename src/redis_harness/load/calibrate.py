"""The latency floor of a run: one connection, a low rate, before the load starts.

A few hundred PINGs and GETs of a small key, paced so neither Redis nor the
generator is busy; their p50/p99 are what this machine, this network path
and this Redis give with nothing else going on. A report sets each command's
p50 beside them, so a reader sees how far the load moved latency. Measured
on the lean RESP connection (not redis-py), so the floor is not the client's.
"""

from __future__ import annotations

import time

from redis_harness.deploy.connect import endpoint
from redis_harness.load.recorder import new_histogram
from redis_harness.load.resp import RedisReplyError, RespConnection, encode
from redis_harness.profile.credentials import AnySecrets, TargetSecrets
from redis_harness.profile.model import Profile

CALLS = 300  # of each command
INTERVAL_S = 0.002  # 500 calls/s: low enough to leave both sides idle
KEY = "calibration:harness"


def _timed(connection: RespConnection, payload: bytes) -> float:
    start = time.perf_counter()
    connection.execute(payload)
    return (time.perf_counter() - start) * 1e6


def calibrate(profile: Profile, secrets: AnySecrets) -> dict[str, float | int] | None:
    """{ping_p50_us, ping_p99_us, get_p50_us, get_p99_us, calls}; None when the deployment did not answer.

    On a target: as its first service user, on a key under that service's prefix (a Redis the harness did
    not deploy is written only where its services' keys go); not over TLS (the lean connection is plaintext)."""
    host, port = endpoint(profile)
    key = KEY
    if isinstance(secrets, TargetSecrets):
        if profile.target is None or profile.target.tls is not None or profile.target.kind != "standalone":
            return None
        service = secrets.services[0].user
        user, password = secrets.login(service)
        key = f"{service}:harness:calibration"
    else:
        user, password = "admin", secrets.admin.password
    connection = RespConnection(host, port, user, password, timeout_s=1.0)
    ping, get = new_histogram(), new_histogram()
    try:
        connection.execute(encode("SET", key, "xxx", "EX", 60))
        for histogram, payload in ((ping, encode("PING")), (get, encode("GET", key))):
            for _ in range(CALLS):
                histogram.record_value(max(1, int(_timed(connection, payload))))
                time.sleep(INTERVAL_S)
        connection.execute(encode("DEL", key))
    except (RedisReplyError, OSError):
        return None
    finally:
        connection.close()
    return {
        "ping_p50_us": ping.get_value_at_percentile(50),
        "ping_p99_us": ping.get_value_at_percentile(99),
        "get_p50_us": get.get_value_at_percentile(50),
        "get_p99_us": get.get_value_at_percentile(99),
        "calls": CALLS * 2,
    }
