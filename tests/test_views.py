"""Every terminal view fits 100 columns, and 80 where it can: --help, plan, status, verify, monitor.

Pure layout on figures and results built by hand (no containers); tests/test_views_integration.py
runs the same commands against a real deployment.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from rich.cells import cell_len
from rich.console import Console

from redis_harness.cli import build_parser
from redis_harness.cli.plan import acl_difference, format_plan
from redis_harness.deploy.plan import Change, Plan
from redis_harness.deploy.status import format_status
from redis_harness.monitor.alerts import evaluate
from redis_harness.monitor.figures import Reading, TtlSample, deployment_figures
from redis_harness.monitor.view import NODE_COLUMNS, nodes_table, render
from redis_harness.profile.model import load_profile
from redis_harness.terminal import plain_text
from redis_harness.verify.table import CheckResult, format_report

from .conftest import REPO, generated_env
from .test_cli_help import parsers

WIDTHS = (100, 80)


def too_wide(text: str, width: int) -> list[str]:
    """The lines of `text` wider than `width` display cells (µ, …, – are one cell; a CJK character two)."""
    return [line for line in text.splitlines() if cell_len(line) > width]


def test_too_wide_counts_cells_not_bytes() -> None:
    assert too_wide("µ–…" * 30, 90) == [] and too_wide("x" * 101, 100) == ["x" * 101]
    assert too_wide("表" * 51, 100)  # 51 characters, 102 cells


# --------------------------------------------------------------------------- --help


@pytest.mark.parametrize("width", WIDTHS)
def test_every_help_fits(monkeypatch: pytest.MonkeyPatch, width: int) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    wide = {p.prog: too_wide(p.format_help(), width) for p in parsers(build_parser())}
    assert {prog: lines for prog, lines in wide.items() if lines} == {}
    assert len(wide) > 20  # every command and subcommand was looked at


def test_helps_filled_at_a_fixed_88_columns_did_not_fit_80(monkeypatch: pytest.MonkeyPatch) -> None:
    """The broken variant: descriptions filled once at 88 columns, whatever the terminal."""
    monkeypatch.setenv("COLUMNS", "80")
    wide = []
    for parser in parsers(build_parser()):
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        parser.description = textwrap.fill(" ".join((parser.description or "").split()), 88)
        wide += too_wide(parser.format_help(), 80)
    assert wide


def test_a_listed_item_wraps_under_its_own_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    text = build_parser()._subparsers._group_actions[0].choices["load"].format_help()  # type: ignore[union-attr]
    lines = text.splitlines()
    smoke = lines.index(next(line for line in lines if line.startswith("  smoke ")))
    column = lines[smoke].index("10 s")
    assert lines[smoke + 1].startswith(" " * column) and lines[smoke + 1][column] != " "


# --------------------------------------------------------------------------- plan

ACL_NOW = "hash abccdcb3; on ~price:* resetchannels &price:* -@all " + " ".join(f"+cmd{i}" for i in range(200))
ACL_WANTED = ACL_NOW.replace("+cmd7 ", "").replace("-@all", "-@all +keys")


def drifted_plan() -> Plan:
    plan = Plan()
    plan.add(Change("redis", "ACL user price", ACL_NOW, ACL_WANTED, "live"))
    plan.add(Change("redis", "maxmemory", "104857600", "93952409", "live"))
    plan.add(Change("redis", "memory limit", "128.0 MiB", "40.0 MiB", "recreate", "yes: 120.0 MiB of data"))
    plan.add(Change("(all)", "secret file replication.conf", "sha256 0123456789ab", "sha256 ba9876543210", "live"))
    return plan


@pytest.mark.parametrize("width", WIDTHS)
def test_plan_fits_and_shows_sizes_in_binary_units(width: int) -> None:
    text = format_plan("/some/rather/long/path/to/a/profile/named/views.yaml", drifted_plan(), width)
    assert too_wide(text, width) == []
    row = next(line for line in text.splitlines() if "maxmemory" in line)
    assert "100.0 MiB" in row and "89.6 MiB" in row and "104857600" not in row
    assert "memory limit" in text  # a setting's name is never broken
    verdict = "4 changes pending; `redis-harness up /some/rather/long/path/to/a/profile/named/views.yaml` applies them"
    assert text.replace("\n", " ").endswith(verdict)


def test_plan_shows_an_acl_change_as_its_difference() -> None:
    assert acl_difference(ACL_NOW, ACL_WANTED) == ("hash abccdcb3; extra: +cmd7", "hash abccdcb3; missing: +keys")
    assert acl_difference("absent", ACL_WANTED) == ("absent", ACL_WANTED)
    text = format_plan("views", drifted_plan(), 100)
    assert "+cmd100" not in text and len(text.splitlines()) < 12


def test_plan_laid_out_at_its_values_natural_widths_did_not_fit() -> None:
    """The broken variant: columns as wide as their values (up to 48), whatever the terminal."""
    rows = [c.as_dict() for c in drifted_plan().sorted_changes()]
    widths = [min(max(len(str(r[k])) for r in rows), 48) for k in rows[0]]
    assert sum(widths) + 2 * (len(widths) - 1) > 100


# --------------------------------------------------------------------------- status


@pytest.mark.parametrize("width", WIDTHS)
def test_status_wraps_a_long_line_under_its_value(width: int) -> None:
    container = {"name": "redis-harness-views-redis-1", "state": "running", "health": "unhealthy"}
    container |= {"restart_count": 3, "oom_killed": True}
    status = {
        "profile": "views",
        "project": "redis-harness-views",
        "profile_argument": "views",
        "endpoint": {"host": "127.0.0.1", "port": 6650},
        "containers": [container],
        "memory_used": 10 << 20,
        "memory_limit": 128 << 20,
        "maxmemory": None,
        "policy": None,
        "redis": {"reachable": False},
        "healthy": False,
        "problems": ["redis-harness-views-redis-1: OOM-killed since the last up"] * 3,
        "monitoring": None,
    }
    text = format_status(status, width)
    assert too_wide(text, width) == []
    healthy = text.split("healthy    NO: ", 1)[1].splitlines()
    assert len(healthy) > 1 and all(line.startswith(" " * len("healthy    ")) for line in healthy[1:])
    # publish: host: the endpoint line names the allowed networks, wrapped like any other value.
    status["endpoint"] = {"host": "198.18.0.1", "port": 6650, "allow": [f"10.{i}.0.0/16" for i in range(12)]}
    text = format_status(status, width)
    assert too_wide(text, width) == []
    assert "endpoint   198.18.0.1:6650 (allow 10.0.0.0/16 10.1.0.0/16" in " ".join(text.split("\n"))


# --------------------------------------------------------------------------- verify

LONG = "on, hash 1b123f82, keys ~price:* ~price:v1:*, channels &price:*, commands -@all +get +set +hset " * 6


def verify_results() -> list[CheckResult]:
    return [
        CheckResult("runs_as_non_root", "pass", "uid != 0", "999", node="redis-0"),
        CheckResult(
            "config_matches_profile[client-output-buffer-limit]", "fail", "normal 0 0 0", "normal 1 1 1", node="redis-0"
        ),  # fmt: skip
        CheckResult(
            "acl_user_matches_profile[acquisition]", "fail", LONG, LONG.replace("+hset", "+hdel"), node="redis-1"
        ),  # fmt: skip
        CheckResult("aof_receives_writes", "error", "", "", "ConnectionError: " + "refused " * 40, node="redis-1"),
        CheckResult("host_overcommit_memory", "warn", "vm.overcommit_memory = 1", "0", node="redis-0"),
    ]


@pytest.mark.parametrize("verbose", [False, True])
@pytest.mark.parametrize("width", WIDTHS)
def test_verify_report_fits_and_keeps_failed_names_whole(width: int, verbose: bool) -> None:
    results = verify_results()
    runs = [("redis-0", results[:2] + results[4:]), ("redis-1", results[2:4])]
    hint = "`redis-harness plan x` shows the drift; `up x` restores it"
    heading = "verify redis-harness-x (2 data nodes)"
    text = format_report(heading, runs, 3.0, source="profiles/x.yaml", verbose=verbose, drift_hint=hint, width=width)
    assert too_wide(text, width) == []
    lines = text.splitlines()
    first = text.split("\nFAIL ", 1)[0].replace("\n", " ")
    assert first == "verify redis-harness-x (2 data nodes): 3 failed, 1 warning (profile profiles/x.yaml)"
    assert lines[-1].startswith("`redis-harness plan x`")
    # `grep -E 'FAIL|ERROR|WARN'` gives each whole name and its node, failures before warnings.
    flagged = [line for line in lines if line.startswith(("FAIL ", "ERROR ", "WARN "))]
    assert flagged == [
        "FAIL  config_matches_profile[client-output-buffer-limit]  on redis-0",
        "FAIL  acl_user_matches_profile[acquisition]  on redis-1",
        "ERROR aof_receives_writes  on redis-1",
        "WARN  host_overcommit_memory  on redis-0",
    ]
    assert ("runs_as_non_root" in text) is verbose  # passing checks only in the -v table


def test_a_passing_verify_says_so_in_two_lines() -> None:
    results = [CheckResult(f"check_{i}", "pass", "x", "x", node="redis") for i in range(90)]
    text = format_report("verify redis-harness-x", [("redis", results)], 2.0, source="x.yaml", drift_hint="hint")
    assert text.splitlines() == ["verify redis-harness-x: passed (profile x.yaml)",
                                 "90 checks: 90 passed, 0 failed, 0 warnings, 0 skipped in 2.0 s"]  # fmt: skip


def test_the_old_table_wrapped_a_failed_checks_name() -> None:
    """The broken variant: the table gave check names 45 % of the row, so a long name broke over lines
    and `grep FAIL` found half of it."""
    from redis_harness.verify import table

    results = verify_results()
    old = table.format_table(results, 80)
    name = "config_matches_profile[client-output-buffer-limit]"
    assert not any(name in line and "FAIL" in line for line in old.splitlines())


# --------------------------------------------------------------------------- monitor

PROFILE = load_profile("cluster")


def reading(service: str, t: float, role: str = "master", **info: Any) -> Reading:
    base = {"role": role, "maxmemory": 93952409, "used_memory": 85_000_000, "maxmemory_policy": "volatile-lru",
            "total_commands_processed": 0, "keyspace_hits": 0, "keyspace_misses": 0, "evicted_keys": 0,
            "expired_keys": 0, "rejected_connections": 0, "connected_clients": 12, "blocked_clients": 1}  # fmt: skip
    if role == "slave":
        base |= {"master_host": "redis-0", "master_port": 6379, "master_link_status": "up"}
    node = Reading(service=service, port=6500, t=t, up=True, info=base | info, container={"memory_limit": 128 << 20})
    node.clients = {"price": {"connected": 10, "blocked": 1}, "admin": {"connected": 2, "blocked": 0}}
    node.cluster = {"cluster_state": "ok", "cluster_slots_ok": 16384, "cluster_known_nodes": 6}
    if role == "master":
        node.ttl = TtlSample(keys=100_000, keys_without_ttl=80_000, sampled=200, sampled_bytes=1000,
                             sampled_bytes_without_ttl=800)  # fmt: skip
    node.slowlog = [{"command": "SET price:v1:price:{BTC-USDT} " + "x" * 40, "name": "set", "duration_s": 0.25,
                     "start_time": t - 5, "update": True, "client": ""}]  # fmt: skip
    return node


def busy_cluster() -> dict[str, Any]:
    """Six nodes under load, the memory and keys_without_ttl alerts firing, one node down."""
    roles = ["master", "master", "master", "slave", "slave", "slave"]
    before = [reading(f"redis-{i}", 10.0, role) for i, role in enumerate(roles)]
    now = [
        reading(
            f"redis-{i}",
            11.0,
            role,
            total_commands_processed=123_456,
            keyspace_hits=90_000,
            keyspace_misses=10_000,
            evicted_keys=1234,
            expired_keys=56,
        )  # fmt: skip
        for i, role in enumerate(roles)
    ]
    now[5] = Reading(service="redis-5", port=6505, t=11.0, up=False, error="container exited")
    return deployment_figures(now, before)


def rendered(width: int, height: int = 200) -> list[str]:
    figures = busy_cluster()
    states = evaluate(figures, PROFILE.alerts)
    view = render("monitor redis-harness-cluster  12:00:00  every 1 s, Ctrl-C stops", figures, states, {"memory": 12.0})
    console = Console(width=width, height=height, record=True, color_system=None, file=io.StringIO())
    console.print(view)
    return console.export_text().splitlines()


@pytest.mark.parametrize("width", WIDTHS)
def test_monitor_fits_and_its_node_rows_are_whole(width: int) -> None:
    lines = rendered(width)
    assert too_wide("\n".join(lines), width) == []
    header = next(line for line in lines if line.startswith("node "))
    assert header.split() == ["node", "role", "ops/s", "miss", "%", "used", "%", "max", "evict/s", "exp/s", "clients"]
    rows = [line for line in lines if line.startswith("redis-")]
    assert len(rows) == 6 and not any("…" in row for row in rows)
    assert rows[0].split()[:4] == ["redis-0", "primary", "123,456", "10.0"]


def test_the_live_view_at_80x24_shows_the_nodes_and_the_firing_alerts_first() -> None:
    screen = rendered(80)[:24]
    firing = [line.split()[1] for line in screen if line.startswith("FIRING")]
    assert set(firing) >= {"memory", "keys_without_ttl", "down", "evictions"}
    assert screen.index(next(line for line in screen if line.startswith("FIRING  memory"))) == 1
    assert "for 12 s" in next(line for line in screen if line.startswith("FIRING  memory"))
    assert sum(line.startswith("redis-") for line in screen) == 6
    assert any(line.startswith("memory ") for line in screen)


def test_a_node_table_too_narrow_for_its_columns_would_ellipsize() -> None:
    """The broken variant the row check above guards against: rows squeezed into too few columns."""
    squeezed = plain_text(nodes_table(busy_cluster()), 50)
    assert "…" in squeezed and len(NODE_COLUMNS) == 9


# --------------------------------------------------------------------------- which checks verify lists


def collected(profile: str, node: str | None = None) -> set[str]:
    """The checks verify would run on a node of `profile` (pytest's collection, nothing run): file::name."""
    args = [sys.executable, "-m", "pytest", str(REPO / "infra_tests"), "--collect-only", "-q", "-p", "no:cacheprovider",
            "-o", "addopts=", f"--redis-profile={profile}"] + ([f"--redis-node={node}"] if node else [])  # fmt: skip
    result = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **generated_env()}, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    return {line.removeprefix("infra_tests/") for line in result.stdout.splitlines() if "::" in line}


def test_a_standalone_deployment_lists_no_checks_of_parts_it_has_not() -> None:
    """No Sentinel, Cluster, replication or monitoring check, not even as skipped."""
    names = collected("ci")
    assert "test_security.py::test_runs_as_non_root" in names
    assert [n for n in names if n.startswith(("test_topology.py", "test_monitoring.py"))] == []


def test_sentinel_checks_are_listed_once_on_a_sentinel_deployment() -> None:
    """The other side of the deselection: where the part exists its checks are there, with the first node."""
    first, second = collected("ha"), collected("ha", "redis-1")
    assert {
        "test_topology.py::test_sentinels_agree_on_the_primary",
        "test_topology.py::test_replication_links_up",
    } <= first
    assert not [n for n in first if "cluster" in n or n.startswith("test_monitoring.py")]
    assert (
        not [n for n in second if n.startswith("test_topology.py")]
        and "test_security.py::test_runs_as_non_root" in second
    )
