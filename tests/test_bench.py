"""`redis-harness bench`: parsing redis-benchmark's output (pure), and one short real run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis
import yaml

from redis_harness import paths
from redis_harness.bench import measure as bench
from redis_harness.client.connection import TlsSettings
from redis_harness.errors import BadInput, HarnessError
from redis_harness.load.scenarios import RAW_KEYSPACE, raw_key
from redis_harness.profile.model import Profile

from .conftest import REPO, Deployment, deployed, variant_profile

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


def _process(role: str, p50: float, share: float) -> dict:
    return {"role": role, "cpu_p50": p50, "cpu_max": p50 + 9.0, "cpu_over_90_share": share, "samples": 5}


def bench_result(*, saturated: bool) -> dict:
    """bench.json as `bench verdict1` wrote it on this host (5 s per run), the generator busy or not."""
    busy = 1.0 if saturated else 0.0

    def side(ops: float, get_p50: float) -> dict:
        tests = {name: {"p50_us": get_p50, "p99_us": get_p50 * 1.7} for name in ("GET", "SET")}
        return {"ops_s": ops, "tests": tests}

    def run(ops: float, p50: float, processes: list[dict]) -> dict:
        latency = {name: {"p50_us": p50, "p99_us": p50 * 3, "count": 1, "errors": 0} for name in ("GET", "SET")}
        busiest = max(p["cpu_over_90_share"] for p in processes)
        return {"ops_s": ops, "latency": latency, "generator": {"processes": processes, "saturated": busiest > 0.1}}

    workers = [_process(f"worker vm_{i}478b7d8524c4651a3332a22636cf6a1", 69.0, busy * 0.8) for i in (5, 6)]
    return {
        "profile": "verdict1", "endpoint": "127.0.0.1:6630", "mix": "GET+SET 1:1, 10,000 keys, 3-byte values",
        "duration_s": 5.0,
        "redis_benchmark": {"closed_loop": side(55_303.2, 471.0), "one_connection": side(10_086.8, 95.0)},
        "harness": {
            "closed_loop_1_process": run(18_815.0, 2_319, [_process("local", 94.8, busy)]),
            "closed_loop_2_workers": run(29_540.3, 1_351, [_process("master", 1.0, 0.0), *workers]),
            "one_connection": run(8_022.8, 106, [_process("local", 49.2, 0.0)]),
        },
        "ratios": {"one_connection_vs_redis_benchmark": 0.795},
    }  # fmt: skip


def test_bench_table_fits_100_columns_with_the_busy_share_in_percent() -> None:
    lines = bench.format_table(bench_result(saturated=True)).splitlines()
    assert max(len(line) for line in lines) <= 100
    header = next(i for i, line in enumerate(lines) if line.startswith("harness run"))
    assert lines[header].endswith("busy above 90 %") and "share of the run" in lines[header - 1]
    rows = [line.split() for line in lines[header + 1 : header + 6]]
    # the share of the run is a percentage, not a fraction: 1.0 -> 100 %, 0.8 -> 80 %
    assert rows[0][:2] == ["closed_loop_1_process", "the"] and rows[0][-2:] == ["100", "%"]
    assert rows[2][:3] == ["closed_loop_2_workers", "worker", "vm_5478b7d8"] and rows[2][-2:] == ["80", "%"]
    assert all(len(line) == len(lines[header]) for line in lines[header + 1 : header + 6])  # aligned
    said = " ".join(" ".join(lines[header + 6 :]).split())
    assert said.startswith("saturated generator in closed_loop_1_process, closed_loop_2_workers: the latency")
    # one connection: harness / redis-benchmark for ops/s, then under each latency (GET p50 106 µs / 95 µs)
    assert f"harness / redis-benchmark 0.80 {106 / 95:.2f}" in " ".join(" ".join(lines).split())


def test_bench_table_claims_no_saturation_when_the_generator_kept_up() -> None:
    text = bench.format_table(bench_result(saturated=False))
    assert "saturated" not in text and "generator's" not in text
    assert max(len(line) for line in bench.format_table(bench_result(saturated=True), 80).splitlines()) <= 80


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


def test_bench_user_rules_open_only_its_keys_and_three_commands() -> None:
    rules = bench.bench_user_rules("s3cret-s3cret-s3cret")
    assert "s3cret-s3cret-s3cret" not in " ".join(rules)  # only its hash goes to Redis
    assert rules[:2] == ["reset", "on"] and rules[2].startswith("#") and len(rules[2]) == 65
    assert rules[3:] == ["~key:*", "resetchannels", "-@all", "+get", "+set", "+ping"]
    # On a Cluster, one more: the CLUSTER NODES redis-benchmark --cluster finds the primaries with.
    assert bench.bench_user_rules("s3cret-s3cret-s3cret", cluster=True)[len(rules) :] == ["+cluster|nodes"]


@pytest.fixture(scope="module")
def lgbench(tmp_path_factory: pytest.TempPathFactory, secret_env: dict[str, str]) -> Iterator[Deployment]:
    profile = variant_profile("ci", tmp_path_factory.mktemp("lgbench"), "lgbench", network={"port": 6532})
    with deployed(profile, secret_env) as deployment:
        yield deployment


def _monitor_once(deployment: Deployment) -> tuple[int, dict]:
    result = subprocess.run(
        [sys.executable, "-m", "redis_harness.cli", "monitor", str(deployment.profile.source), "--once", "--json"],
        capture_output=True,
        text=True,
        env={**deployment.env, "REDIS_HARNESS_ENV_FILE": "/nonexistent/.env"},
        cwd=REPO,
        timeout=60,
    )
    return result.returncode, json.loads(result.stdout)


def _assert_no_mess_left(deployment: Deployment) -> None:
    """bench ran redis-benchmark (key:*) and three raw runs (price:raw:*), keys without a TTL: all removed,
    so `monitor --once` finds no keys_without_ttl to fire on."""
    admin = redis.Redis(
        port=deployment.profile.network.port, username="admin", password=deployment.secrets.admin.password
    )
    try:
        assert admin.dbsize() == 0, admin.scan(0, count=20)
        code, report = _monitor_once(deployment)
        assert code == 0, [a for a in report["alerts"] if a["firing"]]
        # Broken variant: the 10,000 raw keys the run used to leave (no TTL, as redis-benchmark's SET) fire the alert.
        admin.mset({raw_key(n): "xxx" for n in range(RAW_KEYSPACE)})
        code, report = _monitor_once(deployment)
        assert code == 1 and [a["name"] for a in report["alerts"] if a["firing"]] == ["keys_without_ttl"]
    finally:
        admin.flushall()
        admin.close()


def _benchmark_cmdlines() -> list[list[str]]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        # runs, not `redis-benchmark --version`
        if process.info["name"] == "redis-benchmark" and "-t" in (process.info["cmdline"] or []):
            found.append(process.info["cmdline"])
    return found


@pytest.mark.integration
def test_bench_runs_redis_benchmark_as_a_temporary_user(
    lgbench: Deployment, secret_env: dict[str, str], tmp_path: Path
) -> None:
    """No long-lived password on any redis-benchmark command line; the one there opens key:* only, for one run."""
    cmd = [sys.executable, "-m", "redis_harness.cli", "bench", str(lgbench.profile.source), "--duration", "1s"]
    proc = subprocess.Popen(
        [*cmd, "--report", str(tmp_path)],
        env={**lgbench.env, "REDIS_HARNESS_ENV_FILE": "/nonexistent/.env"},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[list[str]] = []
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline:
        seen += [c for c in _benchmark_cmdlines() if c not in seen]
        time.sleep(0.05)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert seen, "no redis-benchmark process was seen"
    _assert_no_mess_left(lgbench)
    for cmdline in seen:
        joined = " ".join(cmdline)
        for name, value in secret_env.items():
            assert value not in joined, f"{name} on a redis-benchmark command line"
        user = cmdline[cmdline.index("--user") + 1]
        assert user.startswith("bench-")
    cmdline = seen[0]
    user, password = cmdline[cmdline.index("--user") + 1], cmdline[cmdline.index("-a") + 1]
    host, port = lgbench.profile.network.host, lgbench.profile.network.port
    admin = redis.Redis(host, port, username="admin", password=lgbench.secrets.admin.password)
    # Gone after the run: the password read from the command line opens nothing any more.
    assert not [u for u in admin.acl_users() if str(u).startswith("bench-")]
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host, port, username=user, password=password).ping()
    # While it lived, it could do no more than its rules say: recreate it and try.
    admin.execute_command("ACL", "SETUSER", user, *bench.bench_user_rules(password))
    try:
        probe = redis.Redis(host, port, username=user, password=password)
        probe.set("key:000000000001", "xxx")
        for forbidden in (lambda: probe.get("price:v1:price:{BTC-USDT}"), lambda: probe.config_get("masterauth")):
            with pytest.raises(redis.exceptions.NoPermissionError):
                forbidden()
    finally:
        admin.acl_deluser(user)
        admin.close()


# ----------------------------------------------------------------------------- over TLS


def test_tls_arguments_give_redis_benchmark_the_ca_and_the_client_pair() -> None:
    assert bench.tls_arguments(None) == []
    assert bench.tls_arguments(TlsSettings(ca_file="/s/ca.crt")) == ["--tls", "--cacert", "/s/ca.crt"]
    mutual = TlsSettings(ca_file="/s/ca.crt", cert_file="/s/c.crt", key_file="/s/c.key")
    assert bench.tls_arguments(mutual) == ["--tls", "--cacert", "/s/ca.crt", "--cert", "/s/c.crt", "--key", "/s/c.key"]


def _tls_variant(tmp_path: Path, name: str, client_auth: str = "required", **overrides: object) -> Profile:
    security = yaml.safe_load((REPO / "profiles" / "ci.yaml").read_text())["security"]
    tls = {"tls": {"enabled": True, "client_auth": client_auth}}
    return variant_profile("ci", tmp_path, name, security={**security, **tls}, **overrides)


def test_benchmark_command_speaks_tls_with_the_harness_certificate(tmp_path: Path) -> None:
    user = bench.BenchUser("bench-1234abcd", "pw")
    at = bench.Endpoint("127.0.0.1", 6380)
    plain = bench.benchmark_command("redis-benchmark", variant_profile("ci", tmp_path, "bplain"), at, user, 50, 1000)
    assert "--tls" not in plain and "--cluster" not in plain and plain[1:5] == ["-h", "127.0.0.1", "-p", "6380"]
    cmd = bench.benchmark_command("redis-benchmark", _tls_variant(tmp_path, "btls"), at, user, 50, 1000)
    state = paths.state_dir("btls")
    assert cmd[cmd.index("--tls") :] == [
        "--tls", "--cacert", str(state / "tls-ca.crt"),
        "--cert", str(state / "tls-client-admin.crt"), "--key", str(state / "tls-client-admin.key"),
    ]  # fmt: skip
    assert cmd[: cmd.index("--tls")] == plain  # everything else as in plaintext
    # client_auth none: the CA only (a client certificate the server does not ask for is not shown)
    no_auth = bench.benchmark_command("redis-benchmark", _tls_variant(tmp_path, "bnone", "none"), at, user, 50, 1000)
    assert no_auth[no_auth.index("--tls") :] == ["--tls", "--cacert", str(paths.state_dir("bnone") / "tls-ca.crt")]
    # A Cluster: redis-benchmark asks the node it is given for the others.
    seed = bench.Endpoint("127.0.0.1", 6708, cluster=True)
    ci_variant = variant_profile("ci", tmp_path, "bcl")
    on_cluster = bench.benchmark_command("redis-benchmark", ci_variant, seed, user, 50, 1000)
    assert on_cluster[1:6] == ["-h", "127.0.0.1", "-p", "6708", "--cluster"]


def test_plaintext_twin_must_be_the_same_shape_with_tls_off(tmp_path: Path) -> None:
    tls, plain = _tls_variant(tmp_path, "shapetls"), variant_profile("ci", tmp_path, "shapeplain")
    bench.check_twin(tls, plain)  # same shape: accepted
    refusals = [
        (plain, tls, "--plaintext: shapeplain has security.tls off; give the TLS deployment as PROFILE"),
        (tls, _tls_variant(tmp_path, "shapetls2"), "--plaintext: shapetls2 has security.tls on"),
        (tls, variant_profile("ci", tmp_path, "shapetls"), "--plaintext: shapetls is PROFILE itself"),
        (tls, variant_profile("ci", tmp_path, "big", resources={"memory": "256mb"}), "differs from shapetls in res"),
        (tls, variant_profile("ha", tmp_path, "ha2"), "differs from shapetls in topology_kind"),
    ]  # fmt: skip
    for profile, twin, says in refusals:
        with pytest.raises(BadInput, match=re.escape(says)) as raised:
            bench.check_twin(profile, twin)
        assert "\n" not in str(raised.value)


def test_tls_cost_sets_each_run_beside_its_plaintext_twin() -> None:
    over_tls, plain = bench_result(saturated=True), bench_result(saturated=False)
    over_tls["redis_benchmark"]["closed_loop"]["ops_s"] = 41_000.0
    cost = bench.tls_cost(over_tls, plain)
    assert list(cost) == [label for label, _, _ in bench.COST_RUNS]
    rb = cost["redis-benchmark -c 50"]
    assert (rb["plaintext_ops_s"], rb["tls_ops_s"], rb["tls_vs_plaintext"]) == (55_303.2, 41_000.0, 0.741)
    assert rb["get_p50_us"] == {"plaintext": 471.0, "tls": 471.0}
    assert cost["harness raw, 1 user"]["get_p99_us"] == {"plaintext": 318, "tls": 318}  # the harness's own figures


def _tls_bench_result() -> dict:
    result = bench_result(saturated=False)
    result.update(profile="tlsci", tls="TLS, client certificate (required)")
    result["ratios"]["best_closed_loop_vs_redis_benchmark"] = 0.534
    twin = bench_result(saturated=True)
    twin.update(profile="ci", endpoint="127.0.0.1:6381", tls=None)
    twin["ratios"]["best_closed_loop_vs_redis_benchmark"] = 0.612
    result["plaintext"] = twin
    result["tls_cost"] = bench.tls_cost(result, twin)
    return result


def test_bench_table_over_tls_shows_the_cost_the_floor_and_a_saturated_twin() -> None:
    text = bench.format_table(_tls_bench_result())
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100
    flat = " ".join(text.split())
    assert flat.startswith("bench tlsci (127.0.0.1:6630, TLS, client certificate (required)):")
    assert (
        "over TLS, client certificate (required): harness / redis-benchmark 0.53 (the lean user's floor 0.60: below it)"
        in flat
    )
    assert "in plaintext: harness / redis-benchmark 0.61 (the lean user's floor 0.60: kept)" in flat
    assert "TLS cost: tlsci (TLS, client certificate (required)) against its plaintext twin ci (127.0.0.1:6381)" in flat
    cost_at = next(i for i, line in enumerate(lines) if line.startswith("TLS cost"))
    row = next(line for line in lines[cost_at:] if line.startswith("redis-benchmark -c 50 "))
    assert row.split()[-7:] == ["55,303", "55,303", "1.00", "471", "471", "801", "801"]
    # the generator limited the twin's closed-loop runs: said, with their names
    assert "saturated generator in plaintext closed_loop_1_process, plaintext closed_loop_2_workers:" in flat
    assert max(len(line) for line in bench.format_table(_tls_bench_result(), 80).splitlines()) <= 80
    # Broken variant: a result with no twin shows no cost, and no floor line without the best ratio.
    alone = _tls_bench_result()
    del alone["plaintext"], alone["tls_cost"], alone["ratios"]["best_closed_loop_vs_redis_benchmark"]
    assert "TLS cost" not in bench.format_table(alone) and "floor" not in bench.format_table(alone)


def _target(tmp_path: Path, **target: object) -> tuple[Profile, object]:
    from redis_harness.profile.credentials import target_secrets
    from redis_harness.profile.model import profile_from_mapping

    raw = {"name": "benchtarget", "target": {"services": {"price": {"password_env": "P"}}, **target}}
    profile = profile_from_mapping(raw, tmp_path / "benchtarget.yaml")
    return profile, target_secrets(profile, {"P": "p" * 16, "A": "a" * 16})


@pytest.mark.parametrize(
    ("target", "refusal"),
    [
        ({"address": "127.0.0.1:6390"}, "target.admin: bench creates a temporary ACL user"),
        ({"sentinels": ["127.0.0.1:26390"], "master_name": "m"}, "target.admin: bench creates a temporary ACL user"),
    ],
)  # fmt: skip
def test_bench_on_a_target_refuses_what_it_cannot_measure(tmp_path: Path, target: dict, refusal: str) -> None:
    """Refused before anything connects or is written: no admin to create redis-benchmark's user with."""
    profile, secrets = _target(tmp_path, **target)
    with pytest.raises(BadInput, match=re.escape(refusal)):
        bench.check_ready(profile, secrets)  # type: ignore[arg-type]


def test_bench_refuses_a_deployed_cluster_whose_names_the_host_cannot_reach(tmp_path: Path) -> None:
    """A deployed Cluster announces container names: redis-benchmark --cluster would follow them and fail;
    refused in one line naming the way on, before anything connects."""
    profile = variant_profile("cluster", tmp_path, "benchcl")
    with pytest.raises(BadInput, match=re.escape("bench: benchcl's Cluster nodes announce their container names")):
        bench.check_ready(profile, None)  # type: ignore[arg-type]
