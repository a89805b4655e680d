"""Every view of a real deployment fits COLUMNS=100 (and 80 where it can): plan, status, up, render,
env init --service, verify, verify -v, monitor --once, the live monitor, --help. Run on the session's
`ci` deployment, in sync and with drift."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
import redis
from rich.cells import cell_len

from .conftest import REPO, Deployment

pytestmark = pytest.mark.integration

# (arguments, the widths it must fit); every view fits 80 columns too.
IN_SYNC = [
    ("plan", "ci"),
    ("status", "ci"),
    ("monitor", "ci", "--once"),
    ("monitor", "ci", "--count", "1"),
    ("up", "ci"),  # in sync: its verdict line, the image and the status block
    ("render", "ci"),
    ("env", "init", "ci", "--service", "price"),
]
HELPS = [("--help",), ("plan", "--help"), ("verify", "--help"), ("monitor", "--help"), ("load", "--help")]


def run(deployment: Deployment, columns: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "redis_harness.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **deployment.env, "COLUMNS": str(columns), "REDIS_HARNESS_ENV_FILE": "/nonexistent/.env"},
        cwd=REPO,
        timeout=180,
    )


def too_wide(text: str, width: int) -> list[str]:
    return [line for line in text.splitlines() if cell_len(line) > width]


@pytest.fixture
def drifted(ci_deployment: Deployment) -> Iterator[Deployment]:
    """ci with maxmemory and the price user changed at run time; put back afterwards (and checked)."""
    admin = redis.Redis(
        port=ci_deployment.profile.network.port, username="admin", password=ci_deployment.secrets.admin.password
    )
    maxmemory = admin.config_get("maxmemory")["maxmemory"]
    admin.config_set("maxmemory", 100 * 1024 * 1024)
    admin.execute_command("ACL", "SETUSER", "price", "+keys")
    try:
        yield ci_deployment
    finally:
        admin.config_set("maxmemory", maxmemory)
        admin.execute_command("ACL", "LOAD")
        admin.close()
    assert run(ci_deployment, 100, "plan", "ci").returncode == 0, "ci is back in sync for the tests after this"


@pytest.mark.parametrize("columns", [100, 80])
def test_views_of_a_deployment_in_sync_fit(ci_deployment: Deployment, columns: int) -> None:
    for args in IN_SYNC + HELPS:
        result = run(ci_deployment, columns, *args)
        # monitor exits 1 when an alert fires: what earlier tests left on ci is not this test's concern
        assert result.returncode in ((0, 1) if args[0] == "monitor" else (0,)), (args, result.stdout, result.stderr)
        assert result.stdout.strip(), args
        assert too_wide(result.stdout, columns) == [], args


def test_views_of_a_drifted_deployment_fit_and_put_failures_first(drifted: Deployment) -> None:
    for columns in (100, 80):
        plan = run(drifted, columns, "plan", "ci")
        assert plan.returncode == 1 and too_wide(plan.stdout, columns) == [], plan.stdout
        row = next(line for line in plan.stdout.splitlines() if "maxmemory" in line)
        assert "100.0 MiB" in row and "89.6 MiB" in row, row  # --json keeps the bytes
    assert "104857600" in run(drifted, 100, "plan", "ci", "--json").stdout

    verify = run(drifted, 100, "verify", "ci")
    assert verify.returncode == 1 and too_wide(verify.stdout, 100) == [], verify.stdout
    lines = verify.stdout.splitlines()
    heading = verify.stdout.split("\nFAIL ", 1)[0].replace("\n", " ")
    assert re.match(r"verify redis-harness-ci: \d+ failed", heading), heading
    failed = [line for line in lines if line.startswith("FAIL ")]
    assert "FAIL  config_matches_profile[maxmemory]  on redis" in failed
    assert any("acl_user_matches_profile[price]" in line for line in failed)
    assert "PASS" not in verify.stdout  # passing checks only with -v
    assert lines[-1] == "`redis-harness plan ci` shows the drift; `up ci` restores it"
    print(f"\n[views] verify, default: {len(lines)} lines")

    verbose = run(drifted, 80, "verify", "ci", "-v")
    assert verbose.returncode == 1 and too_wide(verbose.stdout, 80) == [], verbose.stdout
    assert "PASS" in verbose.stdout and verbose.stdout.index("FAIL ") < verbose.stdout.index("CHECK ")
