"""`redis-harness fault PROFILE failover --how …` on a real Sentinel deployment (a copy of ha):
the primary goes away, another node is promoted, the old one is given back as a replica, and
the deliberate fault is noted in the deployment's fault journal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from redis_harness.deploy.readiness import current_primary, wait_until_settled
from redis_harness.faults import journal

from .conftest import REPO, Deployment, deployed, variant_profile

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rpha(tmp_path_factory: pytest.TempPathFactory, secret_env: dict[str, str]) -> Iterator[Deployment]:
    profile = variant_profile(
        "ha", tmp_path_factory.mktemp("rpha"), "rpha", network={"port": 6555}, sentinel={"port": 6560}
    )
    with deployed(profile, secret_env) as deployment:
        yield deployment


def fault(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "redis_harness.cli", "fault", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "REDIS_HARNESS_ENV_FILE": "/nonexistent/.env"},
        cwd=REPO,
        timeout=180,
    )
    print(result.stdout[-2000:], result.stderr[-2000:])
    return result


@pytest.mark.parametrize(
    "how",
    ["pause", "kill"],
)
def test_failover_command_promotes_another_node(rpha: Deployment, cli_env: dict[str, str], how: str) -> None:
    profile = rpha.profile
    wait_until_settled(profile, rpha.secrets, timeout_s=60)
    before = current_primary(profile, rpha.secrets)
    result = fault(cli_env, str(profile.source), "failover", "--how", how, "--json")
    assert result.returncode == 0
    (done,) = json.loads(result.stdout)
    assert done["how"] == how and done["old_primary"] == before
    assert done["new_primary"] not in (None, before)
    assert current_primary(profile, rpha.secrets) == done["new_primary"]
    assert 0 < done["new_primary_s"] < profile.alerts.recovery_s
    assert done["record"]["held_s"] is not None  # the old primary was given back
    wait_until_settled(profile, rpha.secrets, timeout_s=60)  # and rejoined as a replica
    noted = [e for e in journal.read(profile.name) if e["kind"] == ("kill" if how == "kill" else "pause")]
    assert noted and noted[-1]["container"].endswith(f"{before}-1")


def test_failover_refuses_a_deployment_without_sentinel_or_cluster(cli_env: dict[str, str], tmp_path: Path) -> None:
    single = variant_profile("ci", tmp_path, "rpsingle", network={"port": 6556})
    result = fault(cli_env, str(single.source), "failover")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "redis-harness: failover: profile 'rpsingle' has nothing that promotes a replica; "
        "use a Sentinel or Cluster profile (ha, cluster)"
    ]
