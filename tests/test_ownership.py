"""A deployment belongs to the checkout that made it: a second checkout on the same host (same
engine, same profile name) may look at it but not change it, unless it takes it over on purpose.

Checkout A is this repository; checkout B is a copy of what a clone holds (profiles, templates,
checks, load tests), run with REDIS_HARNESS_HOME pointing at it, as a second clone's commands
would. Both have the same secrets (the environment), so every difference they see is ownership.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from redis_harness.deploy import ownership
from redis_harness.deploy.containers import PROJECT_LABEL
from redis_harness.deploy.engine import docker_client
from redis_harness.profile.model import Profile, load_profile

from .conftest import REPO, Deployment, generated_env, variant_profile

pytestmark = pytest.mark.integration

PORT = 6612
CHANGING = [
    ("up",),
    ("down",),
    ("down", "--volumes"),
    ("fault", "{profile}", "kill"),
    ("load", "{profile}", "--scenario", "smoke", "--duration", "2s"),
    ("bench", "{profile}", "--duration", "1s"),
    ("cert", "rotate", "{profile}"),
]


class Checkouts:
    def __init__(self, profile: Profile, a: Path, b: Path, env: dict[str, str]) -> None:
        self.profile, self.a, self.b, self.env = profile, a, b, env

    def run(self, checkout: Path, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [a.replace("{profile}", str(self.profile.source)) for a in args]
        if "{profile}" not in args and argv[0] in ("up", "down", "status", "plan", "rollback"):
            argv.insert(1, str(self.profile.source))
        env = {**self.env}
        if checkout != REPO:
            env["REDIS_HARNESS_HOME"] = str(checkout)
        return subprocess.run(
            [sys.executable, "-m", "redis_harness.cli", *argv],
            capture_output=True,
            text=True,
            env=env,
            cwd=checkout,
            timeout=300,
        )

    def container(self) -> dict[str, Any]:
        (found,) = docker_client().containers.list(all=True, filters={"name": f"{self.profile.project}-redis-1"})
        return {"id": found.id, "started": found.attrs["State"]["StartedAt"], "restarts": found.attrs["RestartCount"]}


def second_checkout(root: Path) -> Path:
    for folder in ("profiles", "templates", "infra_tests", "loadtests", "image"):
        shutil.copytree(REPO / folder, root / folder)
    shutil.copy(REPO / ".env.example", root / ".env.example")
    return root


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Checkouts]:
    profile = variant_profile("ci", tmp_path_factory.mktemp("ownership"), "ownpair", network={"port": PORT})
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
    env |= generated_env() | {"REDIS_HARNESS_ENV_FILE": "/nonexistent/.env", "COLUMNS": "100"}
    pair = Checkouts(profile, REPO, second_checkout(tmp_path_factory.mktemp("checkout-b")), env)
    pair.run(REPO, "down", "--volumes", "--take-over")
    up = pair.run(REPO, "up")
    assert up.returncode == 0, up.stderr
    try:
        yield pair
    finally:
        pair.run(REPO, "down", "--volumes", "--take-over")


def one_line_refusal(result: subprocess.CompletedProcess[str], command: str, owner: Path) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    line = lines[0]
    assert line.startswith(f"redis-harness: {command}: redis-harness-ownpair belongs to another checkout"), line
    assert str(owner.resolve()) in line
    return line


@pytest.mark.parametrize("command", CHANGING, ids=" ".join)
def test_a_second_checkout_cannot_change_the_deployment(pair: Checkouts, command: tuple[str, ...]) -> None:
    before = pair.container()
    result = pair.run(pair.b, *command)
    line = one_line_refusal(result, command[0], pair.a)
    assert f"{ownership.TAKE_OVER_FLAG}`" in line and "scripts/run ci" in line
    assert pair.container() == before  # same container, same start, no restart
    assert not (pair.b / "compose" / "ownpair").exists() and not (pair.b / "reports").exists()
    assert pair.run(pair.a, "status").returncode == 0


def test_only_up_and_down_take_over(pair: Checkouts) -> None:
    """rollback, load, fault and bench never move the record (they would run with this checkout's
    passwords against containers set up with the owner's): they name `up --take-over` instead."""
    line = one_line_refusal(pair.run(pair.b, "rollback"), "rollback", pair.a)
    assert f"make this checkout its owner first: `redis-harness up {pair.profile.source} --take-over`" in line
    refused = pair.run(pair.b, "fault", "{profile}", "kill", "--take-over")
    assert refused.returncode == 2 and "unrecognized arguments: --take-over" in refused.stderr


def test_read_only_commands_work_from_anywhere_and_name_the_owner(pair: Checkouts) -> None:
    status = pair.run(pair.b, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    owner_line = next(ln for ln in status.stdout.splitlines() if ln.startswith("owner "))
    assert str(pair.a.resolve()) in owner_line and "another checkout" in owner_line
    document = json.loads(pair.run(pair.b, "status", "--json").stdout)
    assert document["owner"]["checkout"] == str(pair.a.resolve()) and document["owner"]["this_checkout"] is False
    mine = json.loads(pair.run(pair.a, "status", "--json").stdout)
    assert mine["owner"]["this_checkout"] is True
    for command in (("plan",), ("verify", "{profile}"), ("monitor", "{profile}", "--once")):
        result = pair.run(pair.b, *command)
        assert result.returncode in (0, 1), result.stderr  # plan: 1 = changes pending (this checkout's files)
        if command[0] == "verify":  # every check, the ones reading the deployed compose files included
            assert result.returncode == 0, result.stdout
        assert "owner: another checkout (" in result.stderr and str(pair.a.resolve()) in result.stderr
        assert "Traceback" not in result.stderr


def test_status_from_another_checkout_with_other_passwords_says_why_it_cannot_log_in(pair: Checkouts) -> None:
    other = {**pair.env, **{k: v for k, v in generated_env().items()}}
    result = subprocess.run(
        [sys.executable, "-m", "redis_harness.cli", "status", str(pair.profile.source)],
        capture_output=True,
        text=True,
        env={**other, "REDIS_HARNESS_HOME": str(pair.b)},
        timeout=120,
    )
    assert result.returncode == 1
    assert "belongs to another checkout (see owner): its passwords are that checkout's" in result.stdout
    mine = pair.run(pair.a, "status")
    assert mine.returncode == 0 and "another checkout" not in mine.stdout


def test_taking_over_moves_ownership_and_the_first_checkout_is_then_refused(pair: Checkouts) -> None:
    before = pair.container()
    taken = pair.run(pair.b, "up", ownership.TAKE_OVER_FLAG)
    assert taken.returncode == 0, taken.stderr
    assert f"up: took redis-harness-ownpair over from {getpass.getuser()} (uid {os.getuid()}) on " in taken.stdout
    after = pair.container()
    assert after["id"] != before["id"]  # recreated from B's compose/ and .state/
    working_dir = docker_client().containers.get(after["id"]).labels["com.docker.compose.project.working_dir"]
    assert Path(working_dir).is_relative_to(pair.b)
    one_line_refusal(pair.run(pair.a, "up"), "up", pair.b)
    assert pair.container() == after
    back = pair.run(pair.a, "up", ownership.TAKE_OVER_FLAG)
    assert back.returncode == 0, back.stderr
    assert pair.run(pair.b, "status", "--json").returncode == 0
    one_line_refusal(pair.run(pair.b, "down"), "down", pair.a)


def test_ownership_outlives_down_and_ends_with_the_data(pair: Checkouts) -> None:
    """The data volume is the owner's too: after `down` it is still refused elsewhere; after
    `down --volumes` the name is free."""
    assert pair.run(pair.a, "down").returncode == 0
    assert docker_client().volumes.get(ownership.marker_name(pair.profile))
    one_line_refusal(pair.run(pair.b, "up"), "up", pair.a)
    assert pair.run(pair.a, "down", "--volumes").returncode == 0
    assert docker_client().volumes.list(filters={"name": ownership.marker_name(pair.profile)}) == []
    free = pair.run(pair.b, "up")
    assert free.returncode == 0, free.stderr
    assert pair.run(pair.b, "down", "--volumes").returncode == 0
    assert pair.run(pair.a, "up").returncode == 0


def test_an_old_deployment_stays_its_checkouts_after_down(pair: Checkouts) -> None:
    """Made before owners were recorded (no marker): its owner's `down` records it before the
    containers, and compose's label with them, are gone."""
    docker_client().volumes.get(ownership.marker_name(pair.profile)).remove(force=True)
    assert pair.run(pair.a, "down").returncode == 0
    one_line_refusal(pair.run(pair.b, "up"), "up", pair.a)
    assert pair.run(pair.a, "up").returncode == 0


def test_two_first_ups_at_once_leave_one_owner(tmp_path: Path, pair: Checkouts) -> None:
    """Both pass the check (nobody owns it yet); the marker decides: creating a volume that exists
    returns it, so the slower one reads the winner's labels and is refused."""
    race = Checkouts(variant_profile("ci", tmp_path, "ownrace", network={"port": PORT + 1}), pair.a, pair.b, pair.env)
    race.run(REPO, "down", "--volumes", "--take-over")
    try:
        started = [
            subprocess.Popen(
                [sys.executable, "-m", "redis_harness.cli", "up", str(race.profile.source)],
                env={**race.env, **({"REDIS_HARNESS_HOME": str(checkout)} if checkout != REPO else {})},
                cwd=checkout,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for checkout in (race.a, race.b)
        ]
        results = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in started]
        codes = sorted(code for code, _ in results)
        assert codes == [0, 2], results
        winner = race.a if results[0][0] == 0 else race.b
        labels = docker_client().volumes.get(ownership.marker_name(race.profile)).attrs["Labels"]
        assert labels[f"{ownership.LABEL}.checkout"] == str(winner.resolve())
        loser_line = next(err for code, err in results if code == 2).strip()
        assert "belongs to another checkout" in loser_line and str(winner.resolve()) in loser_line
    finally:
        race.run(REPO, "down", "--volumes", "--take-over")
        race.run(race.b, "down", "--volumes", "--take-over")


def test_a_deployment_made_before_owners_were_recorded_is_the_compose_files_checkout(pair: Checkouts) -> None:
    """No marker (an older version made it): compose's working dir names the checkout; its own
    next `up` records it, the other checkout is refused all along."""
    docker_client().volumes.get(ownership.marker_name(pair.profile)).remove(force=True)
    status = json.loads(pair.run(pair.b, "status", "--json").stdout)
    assert status["owner"]["checkout"] == str(pair.a.resolve()) and status["owner"]["user"] == "unknown user"
    one_line_refusal(pair.run(pair.b, "up"), "up", pair.a)
    assert pair.run(pair.a, "up").returncode == 0
    labels = docker_client().volumes.get(ownership.marker_name(pair.profile)).attrs["Labels"]
    assert labels[f"{ownership.LABEL}.checkout"] == str(pair.a.resolve())


def test_scripts_run_ci_works_on_a_host_where_dev_is_anothers(ci_deployment: Deployment, tmp_path: Path) -> None:
    """The README's first command on a host where another checkout owns `dev`: `scripts/run` stops
    at `up` with the one-line refusal and changes nothing; `scripts/run ci` brings up, verifies and
    loads `ci` all the same (here the session's ci deployment, with its secrets)."""
    dev = load_profile("dev")
    if ownership.recorded_owner(dev) is not None:
        pytest.skip("dev exists on this host; this test plays another checkout owning it")
    other = str(tmp_path / "someone-elses-checkout")
    labels = {
        f"{ownership.LABEL}.checkout": other,
        f"{ownership.LABEL}.host": socket.gethostname(),
        f"{ownership.LABEL}.user": "someone (uid 4242)",
        "com.docker.compose.project": dev.project,
    }
    docker_client().volumes.create(name=ownership.marker_name(dev), labels=labels)
    env = {**ci_deployment.env, "REDIS_HARNESS_ENV_FILE": str(tmp_path / "secrets.env"), "COLUMNS": "100"}
    try:
        refused = subprocess.run(["scripts/run"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "up: redis-harness-dev belongs to another checkout (someone (uid 4242) on " in refused.stderr
        assert "`scripts/run ci`" in refused.stderr
        assert docker_client().containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={dev.project}"}) == []
        done = subprocess.run(["scripts/run", "ci"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "verify redis-harness-ci: passed" in done.stdout and "smoke on ci:" in done.stdout
    finally:
        docker_client().volumes.get(ownership.marker_name(dev)).remove(force=True)
