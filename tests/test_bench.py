"""`redis-harness bench`: parsing redis-benchmark's output (pure), and one short real run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from redis_harness.bench import measure as bench
from redis_harness.errors import HarnessError

from .conftest import REPO, Deployment

# What redis-benchmark 7.0.15 printed for `-t get,set -r 10000 -d 3 -c 1 --csv` as the default
# user: the warning comes first because that user may not run CONFIG GET.
CSV_7_0 = """WARNING: Could not fetch server CONFIG
"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","37313.43","0.022","0.016","0.023","0.031","0.047","0.511"
"GET","39682.54","0.021","0.016","0.023","0.023","0.039","0.135"
"""


def test_parse_csv_reads_every_test_in_microseconds() -> None:
    tests = bench.parse_csv(CSV_7_0)
    assert set(tests) == {"SET", "GET"}
    get = tests["GET"]
    assert get.rps == 39682.54
    assert (get.avg_us, get.min_us, get.p50_us, get.p95_us, get.p99_us, get.max_us) == (21, 16, 23, 23, 39, 135)
    assert tests["SET"].p99_us == 47


def test_parse_csv_without_header_names_what_redis_benchmark_said() -> None:
    with pytest.raises(HarnessError, match="WRONGPASS"):
        bench.parse_csv("Node 127.0.0.1:6380 replied with error:\nWRONGPASS invalid username-password pair\n")


def test_parse_csv_rejects_a_malformed_row() -> None:
    text = '"test","rps","avg_latency_ms"\n"GET","fast","0.1"\n'
    with pytest.raises(HarnessError, match="unexpected redis-benchmark CSV row"):
        bench.parse_csv(text)


def test_parse_csv_with_header_only_is_an_error() -> None:
    with pytest.raises(HarnessError, match="no results"):
        bench.parse_csv(CSV_7_0.splitlines()[1] + "\n")


def test_mix_throughput_is_total_requests_over_total_time() -> None:
    # Same request count per test: 1 s at 40k + 2 s at 20k = 80k requests in 3 s.
    tests = bench.parse_csv(
        '"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms",'
        '"max_latency_ms"\n"SET","20000","1","1","1","1","1","1"\n"GET","40000","1","1","1","1","1","1"\n'
    )
    assert bench.mix_throughput(tests) == pytest.approx(80_000 / 3)
    assert bench.mix_throughput({}) == 0.0


def test_requests_for_sizes_both_tests_to_the_duration_within_bounds() -> None:
    assert bench.requests_for(40_000, 5) == 100_000
    assert bench.requests_for(10, 5) == bench.MIN_REQUESTS
    assert bench.requests_for(1e9, 60) == bench.MAX_REQUESTS


def test_ratio_is_none_without_both_figures() -> None:
    assert bench.ratio(20_000, 40_000) == 0.5
    assert bench.ratio(None, 40_000) is None
    assert bench.ratio(20_000, 0) is None


def test_harness_latency_keys_commands_like_redis_benchmark_tests() -> None:
    report = {"commands": {"GET raw": {"p50_us": 30, "p99_us": 90, "count": 10, "errors": 0}}}
    assert bench.harness_latency(report) == {"GET": {"p50_us": 30, "p99_us": 90, "count": 10, "errors": 0}}


@pytest.mark.integration
def test_bench_measures_both_sides(ci_deployment: Deployment, tmp_path: Path) -> None:
    cmd = ["bench", str(ci_deployment.profile.source), "--duration", "2s", "--report", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, "-m", "redis_harness.cli", *cmd],
        capture_output=True,
        text=True,
        env={**os.environ, **ci_deployment.env, "REDIS_HARNESS_ENV_FILE": "/nonexistent/.env"},
        cwd=REPO,
        timeout=300,
    )
    print(result.stdout[-3000:], result.stderr[-3000:])
    assert result.returncode == 0
    assert "harness / redis-benchmark" in result.stdout
    figures = json.loads((tmp_path / "bench.json").read_text())
    for shape in ("closed_loop", "one_connection"):
        side = figures["redis_benchmark"][shape]
        assert side["ops_s"] > 0
        assert all(t["rps"] > 0 and 0 < t["p50_us"] <= t["p99_us"] for t in side["tests"].values())
    for run in figures["harness"].values():
        assert run["ops_s"] > 0
        # every generator process sampled its CPU; the latency floor was measured before the load
        assert run["generator"]["processes"] and all(p["samples"] > 0 for p in run["generator"]["processes"])
        assert 0 < run["calibration"]["ping_p50_us"] <= run["calibration"]["ping_p99_us"]
        assert all(0 < c["p50_us"] <= c["p99_us"] and c["count"] > 0 for c in run["latency"].values())
    roles = {p["role"].split()[0] for p in figures["harness"]["closed_loop_2_workers"]["generator"]["processes"]}
    assert roles == {"master", "worker"}
    assert all(value > 0 for value in figures["ratios"].values())
