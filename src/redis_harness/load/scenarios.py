"""The load scenarios: what each one runs, for how long by default, and which gates judge it.

The Locust side of each scenario is a file in loadtests/scenarios/; this table
is what the command line and the report need without importing Locust.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis_harness import paths
from redis_harness.errors import BadInput

LOADTESTS_DIR = paths.ROOT / "loadtests"
RAW_KEYSPACE = 10_000


RAW_USER = "price"  # the raw scenario's service user: a service's prefix, as no user may touch every key


def raw_key(n: int) -> str:
    """The raw scenario's n-th key: redis-benchmark's key shape (key:__rand_int__, 12 digits) under price's
    prefix; `raw` is not a version (v<N>), so no service's data key looks like it."""
    return f"price:raw:key:{n:012d}"


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    users: int
    spawn_rate: float
    duration_s: float
    gates: tuple[str, ...]
    # Open loop by default at this many Redis operations/s (0: closed loop). The service
    # scenarios judge latency, so they run paced below what one generator process can
    # drive; a closed loop would report the generator's own queueing (generator_headroom).
    rate: float = 0.0
    # Keys the scenario writes without a TTL, removed (as admin) when the run ends: a benchmark's
    # keys are nobody's data, and left behind they would set off the keys_without_ttl alert.
    scratch_keys: tuple[str, ...] = ()

    @property
    def locustfile(self) -> str:
        return str(LOADTESTS_DIR / "scenarios" / f"{self.name.replace('-', '_')}.py")


SCENARIOS = {
    s.name: s
    for s in (
        Scenario(
            "smoke",
            "10 s of the mixed service workload: is the deployment serving, fast and error-free?",
            users=10,
            spawn_rate=10,
            duration_s=10,
            # The service workloads run the client library (a few hundred µs of Python a call). By
            # default they run closed loop and one generator process is flat out on 2 cores: its
            # saturation is reported (report.json `generator`, a warning in report.html), judged
            # by generator_headroom only where the lean user runs (raw). With --rate they are
            # paced like raw (a library call takes a slot per Redis command it sent).
            gates=("error_rate", "slow_updates", "memory", "no_oom_kill"),
        ),
        Scenario(
            "raw",
            "GET and SET 1:1 over 10,000 keys with 3-byte values, the redis-benchmark -t get,set -r 10000 mix",
            users=50,
            spawn_rate=50,
            duration_s=30,
            gates=("error_rate", "slow_updates", "no_oom_kill", "generator_headroom"),
            scratch_keys=tuple(raw_key(n) for n in range(RAW_KEYSPACE)),
        ),
        Scenario(
            "cache-latency",
            "the three services' workload at steady state: µs percentiles and hit ratio per data type",
            users=20,
            spawn_rate=20,
            duration_s=30,
            gates=(
                "error_rate",
                "slow_updates",
                "miss_ratio",
                "memory",
                "eviction_rate",
                "no_oom_kill",
            ),
        ),
        Scenario(
            "eviction",
            "write past maxmemory with and without TTL, keep reading: volatile-lru at work",
            users=8,
            spawn_rate=8,
            duration_s=40,
            gates=(
                "error_rate_except_oom",
                "no_oom_kill",
                "maxmemory_respected",
                "persistent_keys_survive",
                "evictions_seen",
                "oom_refusals_seen",
                # No latency gate here: writing as fast as the generator can is the point, so its
                # saturation is reported (report.json `generator`) but not judged.
            ),
        ),
        Scenario(
            "recovery",
            "steady load, then a fault (kill by default): error window, p99 and hit-ratio recovery, writes lost",
            users=10,
            spawn_rate=10,
            duration_s=40,
            gates=("recovery_window", "acked_writes_kept", "slow_updates", "no_oom_kill"),
        ),
        Scenario(
            "failover",
            "Sentinel or Cluster: kill the current primary under load; time to a new primary, writes lost",
            users=10,
            spawn_rate=10,
            duration_s=40,
            # Acknowledged writes may be lost on failover, within the bound the profile implies
            # (acked_loss_bounded); durable ones (WAIT) never. No latency gate: the generator's
            # saturation is reported, not judged.
            gates=("recovery_window", "new_primary_elected", "acked_loss_bounded", "no_oom_kill"),
        ),
    )
}


def get_scenario(name: str) -> Scenario:
    if name not in SCENARIOS:
        raise BadInput(f"--scenario: {name!r} is not a scenario; use one of {', '.join(SCENARIOS)}")
    return SCENARIOS[name]
