"""Every load scenario headless against a real deployment, and the gates failing on a real run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from redis_harness.profile.model import Profile
from redis_harness.report.kill_window import PARTS as KILL_WINDOW_PARTS

from .conftest import REPO, deployed, variant_profile
from .docs_pictures import keep

pytestmark = pytest.mark.integration
PORT = 6387


@pytest.fixture(scope="module")
def load_target(tmp_path_factory: pytest.TempPathFactory, secret_env: dict[str, str]) -> Iterator[Profile]:
    """A ci-sized deployment of its own: the recovery scenario kills it, which other tests must not see."""
    profile = variant_profile("ci", tmp_path_factory.mktemp("load"), "loadtest", network={"port": PORT})
    with deployed(profile, secret_env):
        yield profile


def run_load(profile: Profile, env: dict[str, str], run_dir: Path, *args: str) -> tuple[int, dict, str]:
    result = subprocess.run(
        [sys.executable, "-m", "redis_harness.cli", "load", str(profile.source), "--report", str(run_dir), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "REDIS_HARNESS_ENV_FILE": "/nonexistent/.env"},
        cwd=REPO,
        timeout=300,
    )
    report_path = run_dir / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    print(result.stdout[-3000:], result.stderr[-3000:])
    return result.returncode, report, result.stdout


def gate(report: dict, name: str) -> dict:
    return next(g for g in report["gates"] if g["name"] == name)


def assert_outputs(run_dir: Path) -> None:
    for name in ("report.json", "report.html", "gates.xml", "charts.png", "raw.json", "locust.html"):
        assert (run_dir / name).is_file(), name
    assert 'id="timeline-data"' in (run_dir / "report.html").read_text()  # the charts' data, drawn by uPlot


def test_smoke_passes_with_microsecond_percentiles(load_target: Profile, cli_env: dict, tmp_path: Path) -> None:
    code, report, stdout = run_load(load_target, cli_env, tmp_path, "--scenario", "smoke", "--duration", "8s")
    assert code == 0, stdout
    assert_outputs(tmp_path)
    get_price = report["commands"]["cache.get price"]  # the client library's cache-aside read, timed whole
    assert get_price["count"] > 100 and 0 < get_price["p50_us"] <= get_price["p99_us"] <= get_price["max_us"]
    # ... and in parts: its Redis round trips and what the library itself spent, each no more than the whole
    parts = report["library_calls"]["cache.get price"]
    assert parts["redis"]["count"] == get_price["count"] and parts["library"]["count"] == get_price["count"]
    assert 0 < parts["redis"]["p50_us"] <= get_price["p50_us"] and 0 < parts["library"]["p50_us"] < get_price["p50_us"]
    assert "cache.get price [redis]" not in report["commands"], "parts are not requests of their own"
    assert {"cache.on_price price", "cache.write_quotes price"} <= set(report["commands"])
    assert report["throughput_ops_s"] > 0 and report["server"]["series"]
    assert all(g["passed"] for g in report["gates"])
    # The summary of the longest request names (PIPELINE ratelimit-sliding …) fits the terminal.
    assert "PIPELINE ratelimit-sliding" in stdout and max(len(line) for line in stdout.splitlines()) <= 100


def test_raw_runs_distributed_and_open_loop(load_target: Profile, cli_env: dict, tmp_path: Path) -> None:
    args = ("--scenario", "raw", "--duration", "6s", "--users", "8", "--workers", "2", "--rate", "2000")
    code, report, stdout = run_load(load_target, cli_env, tmp_path, *args)
    assert code == 0, stdout
    assert report["settings"]["workers"] == 2
    for name in ("GET raw", "SET raw"):
        command = report["commands"][name]
        assert command["count"] > 1000, "both workers' histograms reached the master"
        assert command["intended"]["count"] == command["count"]
    # ~2000 ops/s intended; the generator may fall behind but must not exceed it much.
    assert report["throughput_ops_s"] < 2000 * 2 * 1.3


def test_cache_latency_reports_hit_ratio_per_data_type(load_target: Profile, cli_env: dict, tmp_path: Path) -> None:
    code, report, stdout = run_load(load_target, cli_env, tmp_path, "--scenario", "cache-latency", "--duration", "10s")
    assert code == 0, stdout
    client = report["hit_ratio"]["client"]
    for datatype in ("price", "liquidity", "volume", "historical"):
        assert client[datatype] is not None and client[datatype] > 0.5, datatype
    assert report["hit_ratio"]["server"] > 0.5
    warming = report["findings"]["warming"]  # the library's CacheWarmer, every pair and entity
    assert warming["stopped"] == "done" and warming["planned"] > 0 and warming["batches"] > 0


def test_eviction_evicts_only_volatile_keys(load_target: Profile, cli_env: dict, tmp_path: Path) -> None:
    # Two worker processes: the users, and so the phase marks, are in the workers, not in the master.
    args = ("--scenario", "eviction", "--duration", "25s", "--workers", "2")
    code, report, stdout = run_load(load_target, cli_env, tmp_path, *args)
    assert code == 0, stdout
    eviction = report["eviction"]
    assert eviction["persistent_written"] > 0 and eviction["persistent_present"] == eviction["persistent_written"]
    assert eviction["volatile_present"] < eviction["volatile_written"]
    assert report["server"]["evicted_keys"] > 0 and report["server"]["oom_errors"] > 0
    assert report["server"]["oom_killed"] is False
    # The timeline marks each phase once (though both workers reach it), in order, when the first user
    # began it (-OOM came, so phase 3 did).
    phases = [m["label"].split(":")[0] for m in report["marks"] if m["kind"] == "phase"]
    assert phases[:3] == ["phase 1", "phase 2", "phase 3"] and phases == sorted(set(phases))
    assert [m["t"] for m in report["marks"]] == sorted(m["t"] for m in report["marks"])
    keep("eviction.png", tmp_path / "charts.png")  # docs/load.md shows this run's charts


def test_recovery_after_kill_measures_the_error_window(load_target: Profile, cli_env: dict, tmp_path: Path) -> None:
    code, report, stdout = run_load(load_target, cli_env, tmp_path, "--scenario", "recovery", "--duration", "20s")
    assert code == 0, stdout
    (fault,) = report["faults"]
    assert fault["kind"] == "kill" and fault["error_window_s"] > 0
    assert report["client"]["events"]["acked_writes"] > 0
    assert fault["acked_writes_lost"] == 0  # a process kill with the host up loses no acknowledged write
    assert report["server"]["restarts_during_run"] == 1
    # The chart shades the kill's error window and labels it; the client library rode it out.
    html = (tmp_path / "report.html").read_text()
    assert f"kill: error window {fault['error_window_s']:g} s" in html
    assert report["library_calls"]["cache.get price"]["redis"]["count"] > 0
    # The window split by owner, each part from its own events; they add up to kill -> first acked write.
    window = fault["kill_window"]
    parts = [window[key] for key, _, _ in KILL_WINDOW_PARTS]
    assert None not in parts and min(parts) >= 0 and window["failed_attempts"] > 0, window
    assert sum(parts) == pytest.approx(window["kill_to_first_ack_s"], abs=0.01)
    assert f"kill -> first acknowledged write {window['kill_to_first_ack_s']:.2f} s:" in stdout
    assert 'id="kill-window-parts"' in html


def test_smoke_fails_when_the_deployment_refuses_the_client_library(
    load_target: Profile, cli_env: dict, tmp_path: Path
) -> None:
    """The price service's library with a password the deployment does not know: it serves every
    read from the origin (as a service would), every library call counts as failed with its error
    named, and the run fails. (Which gate fails depends on the mix: the other services' calls
    dilute the error ratio, and each refused call is retried with backoff, so updates are slow.)"""
    env = {**cli_env, "REDIS_PRICE_PASSWORD": "not-the-deployments-" + "5f" * 16}
    code, report, stdout = run_load(load_target, env, tmp_path, "--scenario", "smoke", "--duration", "5s")
    assert code == 1, stdout
    assert report["passed"] is False and {g["name"] for g in report["gates"] if not g["passed"]}
    library = {n: c for n, c in report["commands"].items() if n.startswith("cache.")}
    assert library and all(c["count"] > 0 and c["errors"] == c["count"] for c in library.values())
    assert report["client"]["events"]["fallback_reads"] > 0
    assert any(e["request"] == "cache.get price" and e["count"] > 0 for e in report["error_types"])


def test_gates_fail_a_real_run_and_name_themselves(
    load_target: Profile, cli_env: dict, tmp_path: Path, secret_env: dict[str, str]
) -> None:
    """The same deployment judged by a profile whose thresholds it cannot meet."""
    raw = yaml.safe_load(load_target.source.read_text())
    raw["alerts"].update(miss_ratio=0.0, memory_ratio=0.000001, slow_update="1ms", error_ratio=0.0)
    strict = tmp_path / "loadtest.yaml"
    strict.write_text(yaml.safe_dump(raw))
    profile = variant_profile("ci", tmp_path, "loadtest", network={"port": PORT}, alerts=raw["alerts"])
    run_dir = tmp_path / "run"
    code, report, stdout = run_load(profile, cli_env, run_dir, "--scenario", "cache-latency", "--duration", "6s")
    assert code == 1
    failed = {g["name"] for g in report["gates"] if not g["passed"]}
    assert {"memory", "miss_ratio"} <= failed
    assert "gate memory" in stdout and "FAIL" in stdout
    junit = (run_dir / "gates.xml").read_text()
    assert '<testcase classname="gates.cache-latency" name="memory"><failure' in junit


def test_unreachable_deployment_and_unknown_scenario_exit_2(
    load_target: Profile, cli_env: dict, tmp_path: Path
) -> None:
    code, _, _ = run_load(load_target, cli_env, tmp_path, "--scenario", "nope")
    assert code == 2
    elsewhere = variant_profile("ci", tmp_path, "loadtest-absent", network={"port": PORT + 100})
    code, _, _ = run_load(elsewhere, cli_env, tmp_path / "absent", "--scenario", "smoke")
    assert code == 2
