"""Automatic rollback, `rollback` on request, a truthful `status`, refusals that write nothing,
and one operation at a time: real containers."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from redis_harness import paths
from redis_harness.deploy.containers import PROJECT_LABEL
from redis_harness.deploy.engine import docker_client

from .test_converge import Live, cli, new_live

pytestmark = pytest.mark.integration

VALUE = "x" * 1024


def tree(folder: Path) -> dict[str, str]:
    """Every file under `folder` with a hash of its bytes (and its mode)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() + f" {p.stat().st_mode:o}"
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A ci-sized deployment holding ~40 MiB of keys without TTL."""
    live = new_live(tmp_path_factory.mktemp("rollback"), "cvroll", 6495)
    live.run("down", "--volumes", "--take-over")
    result = live.run("up")
    assert result.returncode == 0, result.stderr
    admin = live.admin()
    for batch in range(40):
        admin.mset({f"price:v1:bulk:{batch}:{i}": VALUE for i in range(1000)})
    live.keys = {f"price:v1:bulk:{b}:7": VALUE for b in range(40)}
    try:
        yield live
    finally:
        live.run("down", "--volumes", "--take-over")


def test_memory_below_the_data_rolls_back_automatically(big: Live) -> None:
    big.raw["resources"]["memory"] = "40mb"
    big.write()
    plan = big.run("plan")
    assert plan.returncode == 1 and "memory limit" in plan.stdout and "yes:" in plan.stdout, plan.stdout
    result = big.run("up")
    assert result.returncode == 1, result.stdout + result.stderr
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("redis-harness:")]
    assert "rolled back to generation 1" in line and "OOM" in line, line
    assert big.container().attrs["HostConfig"]["Memory"] == 128 * 1024 * 1024
    assert big.admin().dbsize() == 40_000
    big.assert_every_key_there()
    status = big.run("status")
    assert status.returncode == 0, status.stdout + status.stderr


def test_rollback_on_request_restores_the_previous_generation(big: Live) -> None:
    big.raw["resources"]["memory"] = "128mb"
    big.raw["memory"]["maxmemory_ratio"] = 0.8
    big.write()
    assert big.run("up").returncode == 0
    assert int(big.admin().config_get("maxmemory")["maxmemory"]) == int(0.8 * 128 * 1024 * 1024)
    result = big.run("rollback")
    assert result.returncode == 0, result.stderr
    assert "generation 1 restored" in result.stdout
    assert int(big.admin().config_get("maxmemory")["maxmemory"]) == int(0.7 * 128 * 1024 * 1024)
    big.assert_every_key_there()
    assert big.run("status").returncode == 0
    assert big.run("plan").returncode == 1, "the profile still says 0.8: plan shows it pending"
    assert big.run("up").returncode == 0


def test_a_refused_up_writes_nothing(big: Live, tmp_path: Path) -> None:
    compose_dir, state_dir = paths.deployment_dir("cvroll"), paths.state_dir("cvroll")
    before = (tree(compose_dir), tree(state_dir))
    taken = socket.socket()
    taken.bind(("127.0.0.1", 6497))
    taken.listen()
    try:
        big.raw["network"]["port"] = 6497
        big.raw["memory"]["maxmemory_ratio"] = 0.6
        big.write()
        result = big.run("up")
        assert result.returncode == 2 and "network.port" in result.stderr, result.stderr
    finally:
        taken.close()
    assert (tree(compose_dir), tree(state_dir)) == before
    big.raw["network"]["port"] = 6495
    for ref, field in (("redis:0.0-no-such-tag", "cannot be pulled"), ("redis-harness/redis:7.0-bookwrom", "only")):
        big.raw["image"]["ref"] = ref
        big.write()
        result = big.run("up")
        assert result.returncode == 2 and field in result.stderr, result.stderr
        assert len([ln for ln in result.stderr.splitlines() if ln.startswith("redis-harness:")]) == 1
        assert (tree(compose_dir), tree(state_dir)) == before
    assert not docker_client().images.list(name="redis-harness/redis:7.0-bookwrom"), "a typo must build nothing"
    big.raw["image"]["ref"] = "redis-harness/redis:7.0-bookworm"
    big.raw["memory"]["maxmemory_ratio"] = 0.8
    big.write()


def test_status_is_healthy_only_when_it_is(big: Live) -> None:
    assert big.run("status").returncode == 0
    wrong = {**os.environ, **big.env, "REDIS_PASSWORD": "wrong-password-0123456789"}
    result = cli("status", str(big.path), env=wrong)
    assert result.returncode == 1 and "AuthenticationError" in result.stderr, result.stdout + result.stderr
    assert "maxmemory  unknown" in result.stdout, "a figure not read live is unknown"
    env = {**os.environ, **big.env}
    assert cli("fault", str(big.path), "disconnect", env=env).returncode == 0
    try:
        result = big.run("status")
        assert result.returncode == 1 and "redis" in result.stderr, result.stdout + result.stderr
    finally:
        assert cli("fault", str(big.path), "reconnect", env=env).returncode == 0
    assert big.run("status").returncode == 0


def test_status_reports_an_oom_kill_since_the_last_up(big: Live) -> None:
    admin = big.admin()
    # Nothing of the fill is persisted: the restart after the kill loads the AOF as it was.
    admin.config_set("appendonly", "no")
    admin.config_set("save", "")
    admin.config_set("maxmemory", 0)
    try:
        for batch in range(1000):  # bounded: the container has 128 MiB
            admin.mset({f"price:v1:fill:{batch}:{i}": VALUE for i in range(1000)})
    except Exception:  # noqa: BLE001 - the kernel kills the server mid-write
        pass
    container = big.container()
    container.reload()
    assert container.attrs["RestartCount"] >= 1 or container.attrs["State"]["OOMKilled"]
    result = big.run("status")
    assert result.returncode == 1 and ("OOM" in result.stderr or "restarted" in result.stderr), result.stderr
    assert big.run("up").returncode == 0
    assert big.run("status").returncode == 0, "a new up is a new baseline"
    big.assert_every_key_there()


def test_three_concurrent_ups_leave_one_deployment(tmp_path: Path) -> None:
    live = new_live(tmp_path, "cvconc", 6498)
    live.run("down", "--volumes", "--take-over")
    env = {**os.environ, **live.env}
    cmd = [str(Path(__file__).resolve().parents[1] / ".venv/bin/redis-harness"), "up", str(live.path)]
    try:
        procs = [
            subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)
        ]
        outcomes = [p.communicate(timeout=300) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], outcomes
        assert sum("waiting for PID" in err for _, err in outcomes) >= 1, "the others waited for the lock"
        networks = docker_client().networks.list(filters={"label": f"{PROJECT_LABEL}={live.profile.project}"})
        assert sorted(n.name for n in networks) == ["redis-harness-cvconc_edge-redis", "redis-harness-cvconc_internal"]
        assert live.run("status").returncode == 0
    finally:
        live.run("down", "--volumes", "--take-over")
