"""Load runs against a real deployment: signals, failed logins, open-loop rate, generator saturation.

One deployment (`lgload`, the ci profile on port 6531) for the module; every
run goes through the command line as a user would start it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from redis_harness.load.recorder import Recorder, new_histogram, split_part
from tests.conftest import REPO, Deployment, deployed, variant_profile

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lgload(tmp_path_factory: pytest.TempPathFactory, secret_env: dict[str, str]) -> Iterator[Deployment]:
    profile = variant_profile("ci", tmp_path_factory.mktemp("lgload"), "lgload", network={"port": 6531})
    with deployed(profile, secret_env) as deployment:
        yield deployment


def _command(deployment: Deployment, run_dir: Path, *args: str) -> list[str]:
    profile = str(deployment.profile.source)
    return [sys.executable, "-m", "redis_harness.cli", "load", profile, "--report", str(run_dir), *args]


def _env(deployment: Deployment, **overrides: str) -> dict[str, str]:
    return {**deployment.env, "REDIS_HARNESS_ENV_FILE": "/nonexistent/.env", **overrides}


def _load(deployment: Deployment, run_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        _command(deployment, run_dir, *args),
        capture_output=True,
        text=True,
        env=_env(deployment, **env),
        cwd=REPO,
        timeout=240,
    )
    print(result.stdout[-3000:], result.stderr[-2000:])
    return result


def _report(run_dir: Path) -> dict:
    return json.loads((run_dir / "report.json").read_text())


def _gate(report: dict, name: str) -> dict:
    return next(g for g in report["gates"] if g["name"] == name)


def _processes_of(run_dir: Path) -> list[str]:
    """Processes whose command line names the run folder (Locust's master and workers do)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(run_dir) in cmdline and "locust" in cmdline:
            found.append(cmdline)
    return found


@pytest.mark.parametrize(("signum", "workers"), [(signal.SIGINT, "0"), (signal.SIGTERM, "2")])
def test_a_signal_ends_the_run_with_a_report_and_no_locust_left(
    lgload: Deployment, tmp_path: Path, signum: int, workers: str
) -> None:
    run_dir = tmp_path / "run"
    # Its own session, like a command in a terminal: Ctrl-C goes to the foreground group.
    proc = subprocess.Popen(
        _command(lgload, run_dir, "--scenario", "raw", "--users", "5", "--duration", "120s", "--workers", workers),
        env=_env(lgload),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not _processes_of(run_dir) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _processes_of(run_dir), "Locust never started"
    time.sleep(6)  # some load, and (with workers) a report from each worker
    if signum == signal.SIGINT:
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    else:
        proc.send_signal(signal.SIGTERM)  # what a CI runner or `kill` does
    out, err = proc.communicate(timeout=120)
    print(out[-2000:], err[-2000:])
    assert proc.returncode == 128 + signum
    for name in ("raw.json", "report.json", "report.html", "gates.xml"):
        assert (run_dir / name).is_file(), name
    report = _report(run_dir)
    assert report["interrupted"] is True
    assert report["interrupted_by"] == signal.Signals(signum).name
    assert json.loads((run_dir / "raw.json").read_text())["interrupted"] is True
    assert sum(c["count"] for c in report["commands"].values()) > 0
    assert report["duration_s"] < 60  # ended at the signal, not at --duration
    time.sleep(1)
    assert _processes_of(run_dir) == []


@pytest.mark.parametrize(("scenario", "wrong"), [("raw", "REDIS_PRICE_PASSWORD"), ("smoke", "REDIS_PRICE_PASSWORD")])
def test_a_wrong_password_fails_the_error_gate(lgload: Deployment, tmp_path: Path, scenario: str, wrong: str) -> None:
    result = _load(
        lgload, tmp_path, "--scenario", scenario, "--duration", "3s", **{wrong: "not-the-password-0123456789"}
    )
    assert result.returncode == 1
    report = _report(tmp_path)
    gate = _gate(report, "error_rate")
    assert not gate["passed"], gate
    assert gate["value"] > 0


def test_a_right_password_passes_the_error_gate(lgload: Deployment, tmp_path: Path) -> None:
    """The same smoke run with the deployment's own passwords: the gate above fails for the password alone."""
    result = _load(lgload, tmp_path, "--scenario", "smoke", "--duration", "3s")
    report = _report(tmp_path)
    assert _gate(report, "error_rate")["passed"], result.stdout


def test_rate_counts_redis_operations_and_fills_latency_from_intended_start(lgload: Deployment, tmp_path: Path) -> None:
    """--rate 2000 on raw (a SET and a GET per iteration): 2,000 operations per second, not iterations."""
    _load(lgload, tmp_path, "--scenario", "raw", "--rate", "2000", "--users", "10", "--duration", "10s")
    report = _report(tmp_path)
    assert 1_800 <= report["throughput_ops_s"] <= 2_200, report["throughput_ops_s"]
    for name, command in report["commands"].items():
        assert command["intended"]["count"] == command["count"], name
        assert command["intended"]["p50_us"] >= command["p50_us"] * 0.9, name


def test_rate_paces_the_service_scenarios_too(lgload: Deployment, tmp_path: Path) -> None:
    """smoke runs the client library; --rate reaches its calls (it was silently closed loop):
    at most 600 requests/s, each with an intended start, and the generator has headroom.

    And the latency from the intended start is honest: beyond Redis's service time it holds only what
    the generator says it added (how late it woke the calls, in the summary). It held 60-90 ms more at
    p99 (service p99 9-14 ms) while the summary said the generator kept up: the harness's per-second
    bookkeeping, Python's full garbage collections and Locust's stop stalled the event loop. A light
    rate, so that a user rarely waits for its own previous call: a call's latency from its intended
    start is then its service time plus how late the generator woke it."""
    result = _load(lgload, tmp_path, "--scenario", "smoke", "--rate", "600", "--duration", "6s")
    report = _report(tmp_path)
    # --rate is Redis commands as the server counts them (a transaction's MULTI and EXEC too), so the
    # server runs about 600 commands/s and the client makes fewer requests. On top: the lock release's
    # Lua GET and DEL (~60/s in this mix), the sampler's INFO. Counting pipelines as one slot, or a
    # transaction's commands without MULTI and EXEC, made it 750-880.
    busy = [row["ops_per_s"] for row in report["server"]["series"][1:-1] if row.get("ops_per_s") is not None]
    assert busy and 480 <= sum(busy) / len(busy) <= 720, busy
    assert report["throughput_ops_s"] <= 660, report["throughput_ops_s"]
    for name, command in report["commands"].items():
        assert command["intended"]["count"] == command["count"], name
    generator = report["generator"]
    assert generator["saturated"] is False, generator
    late = generator["late_start"]
    assert late["count"] > 0 and late["p50_us"] <= late["p99_us"] <= late["max_us"], late
    service, intended = _all_requests_p99(tmp_path)
    assert intended <= 2 * service + late["max_us"] + 2_000, (intended, service, late)
    assert "generator timing: paced calls woke p50 " in result.stdout


def _all_requests_p99(run_dir: Path) -> tuple[int, int]:
    """(service time, latency from the intended start) p99 in µs of every request together, from raw.json."""
    recorder = Recorder()
    recorder.merge(json.loads((run_dir / "raw.json").read_text())["recorder"])
    p99 = []
    for histograms in (recorder.service, recorder.intended):
        together = new_histogram()
        for name, histogram in histograms.items():
            if split_part(name)[1] is None:
                together.add(histogram)
        p99.append(together.get_value_at_percentile(99))
    return p99[0], p99[1]


def test_generator_headroom_fails_on_a_saturated_generator_and_passes_on_a_light_run(
    lgload: Deployment, tmp_path: Path
) -> None:
    # 50 closed-loop users in one process: the generator runs flat out (Redis has a core to itself).
    busy_run = _load(lgload, tmp_path / "busy", "--scenario", "raw", "--users", "50", "--duration", "6s")
    busy = _report(tmp_path / "busy")
    assert busy["generator"]["saturated"] is True
    assert busy["generator"]["late_start"] is None  # closed loop: no call waited for a slot
    gate = _gate(busy, "generator_headroom")
    assert not gate["passed"] and "latency figures are the generator's" in gate["detail"], gate
    assert busy["calibration"]["get_p50_us"] > 0
    # The summary says so under the verdict, before any latency, and fits the terminal.
    lines = busy_run.stdout.splitlines()
    assert lines[1].startswith("generator saturated: the Locust process busy above 90 % for "), lines[:3]
    assert all(len(line) <= 100 for line in lines), busy_run.stdout

    light_run = _load(
        lgload, tmp_path / "light", "--scenario", "raw", "--users", "5", "--rate", "500", "--duration", "6s"
    )
    light = _report(tmp_path / "light")
    assert light["generator"]["saturated"] is False
    assert _gate(light, "generator_headroom")["passed"]
    (local,) = light["generator"]["processes"]
    assert local["role"] == "local" and local["samples"] >= 5
    assert "saturated" not in light_run.stdout and "from intended start" in light_run.stdout
    assert light["generator"]["late_start"]["count"] > 0 and "generator timing: " in light_run.stdout


def test_a_master_and_two_workers_started_separately_make_one_report(lgload: Deployment, tmp_path: Path) -> None:
    """Locust's distributed mode over TCP, each side its own `redis-harness` command, as on separate hosts."""
    run_dir = tmp_path / "run"
    profile = str(lgload.profile.source)
    master = subprocess.Popen(
        _command(lgload, run_dir, "--scenario", "raw", "--users", "10", "--rate", "3000", "--duration", "8s")
        + ["--master", "--expect-workers", "2", "--master-bind-host", "127.0.0.1", "--master-port", "6540"],
        env=_env(lgload),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    worker_cmd = [sys.executable, "-m", "redis_harness.cli", "worker", profile, "--master-host", "127.0.0.1"]
    workers = [
        subprocess.Popen(
            [*worker_cmd, "--master-port", "6540"],
            env=_env(lgload),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    out, err = master.communicate(timeout=240)
    print(out[-3000:], err[-2000:])
    worker_results = [w.communicate(timeout=60) for w in workers]
    assert master.returncode == 0, f"{err}\nworkers: {worker_results}"
    assert [w.returncode for w in workers] == [0, 0], worker_results
    raw = json.loads((run_dir / "raw.json").read_text())
    report = _report(run_dir)
    assert raw["settings"]["workers"] == 2
    roles = sorted(p["role"].split()[0] for p in report["generator"]["processes"])
    assert roles == ["master", "worker", "worker"]
    assert all(p["samples"] > 0 for p in report["generator"]["processes"])
    # Both workers' histograms merged: the µs figures count every request Locust counted.
    total = sum(c["count"] for c in report["commands"].values())
    assert total == raw["locust"]["num_requests"] > 0
    # The rate came from the master: 3,000 operations/s across both workers, not per worker.
    assert 2_700 <= report["throughput_ops_s"] <= 3_300, report["throughput_ops_s"]
