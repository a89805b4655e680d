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
from redis_harness.deploy.tls_client import client_ssl_context
from redis_harness.load.recorder import new_histogram
from redis_harness.load.resp import RedisReplyError, RespConnection, encode
from redis_harness.profile.credentials import Secrets
from redis_harness.profile.model import Profile

CALLS = 300  # of each command
INTERVAL_S = 0.002  # 500 calls/s: low enough to leave both sides idle
KEY = "calibration:harness"


def _timed(connection: RespConnection, payload: bytes) -> float:
    start = time.perf_counter()
    connection.execute(payload)
    return (time.perf_counter() - start) * 1e6


def calibrate(profile: Profile, secrets: Secrets) -> dict[str, float | int] | None:
    """{ping_p50_us, ping_p99_us, get_p50_us, get_p99_us, calls}; None when the deployment did not answer."""
    host, port = endpoint(profile)
    tls = client_ssl_context(profile, "admin")
    connection = RespConnection(host, port, "admin", secrets.admin.password, timeout_s=1.0, tls=tls)
    ping, get = new_histogram(), new_histogram()
    try:
        connection.execute(encode("SET", KEY, "xxx", "EX", 60))
        for histogram, payload in ((ping, encode("PING")), (get, encode("GET", KEY))):
            for _ in range(CALLS):
                histogram.record_value(max(1, int(_timed(connection, payload))))
                time.sleep(INTERVAL_S)
        connection.execute(encode("DEL", KEY))
    except RedisReplyError:
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
