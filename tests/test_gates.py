"""Every gate passes on a healthy report and fails on a report that breaks it."""

from __future__ import annotations

import copy

import pytest

from redis_harness.load.sampler import oom_replies
from redis_harness.load.scenarios import SCENARIOS
from redis_harness.profile.model import load_profile
from redis_harness.report.gates import GATES, Gate, evaluate

PROFILE = load_profile("ci")
ALERTS = PROFILE.alerts


def healthy_report() -> dict:
    return {
        "commands": {
            "GET price": {"count": 1000, "errors": 0, "p99_us": 500},
            "SET price": {"count": 100, "errors": 0, "p99_us": 800},
        },
        "hit_ratio": {"client": {"price": 0.95, "all": 0.95}, "server": 0.95},
        "server": {
            "used_memory_max": 10_000_000,
            "maxmemory": PROFILE.memory.maxmemory_bytes,
            "evictions_per_s_max": 0,
            "evicted_keys": 10,
            "oom_killed": False,
            "oom_errors": 5,
        },
        "client": {
            "events": {
                "acked_writes": 500,
                "acked_writes_lost": 0,
                "durable_acked_writes": 200,
                "durable_acked_writes_lost": 0,
            }
        },
        "faults": [
            {
                "kind": "failover",
                "error_window_s": 1.2,
                "old_primary": "redis-0",
                "new_primary": "redis-1",
                "new_primary_s": 4.2,
                "loss_bound_s": 3.0,
                "acked_loss": None,
            }
        ],
        "eviction": {"persistent_written": 100, "persistent_present": 100},
        "generator": {
            "processes": [{"role": "local", "cpu_p50": 60.0, "cpu_max": 95.0, "cpu_over_90_share": 0.05}],
        },
    }


BREAKERS = {
    "error_rate": lambda r: r["commands"]["GET price"].update(errors=100),
    "error_rate_except_oom": lambda r: r["commands"]["GET price"].update(errors=100),
    "oom_refusals_seen": lambda r: r["server"].update(oom_errors=0),
    "slow_updates": lambda r: r["commands"]["SET price"].update(p99_us=250_000),
    "miss_ratio": lambda r: r["hit_ratio"]["client"].update(all=0.5),
    "memory": lambda r: r["server"].update(used_memory_max=int(PROFILE.memory.maxmemory_bytes * 0.95)),
    "eviction_rate": lambda r: r["server"].update(evictions_per_s_max=5000),
    "no_oom_kill": lambda r: r["server"].update(oom_killed=True),
    "maxmemory_respected": lambda r: r["server"].update(used_memory_max=PROFILE.memory.maxmemory_bytes * 2),
    "persistent_keys_survive": lambda r: r["eviction"].update(persistent_present=99),
    "evictions_seen": lambda r: r["server"].update(evicted_keys=0),
    "recovery_window": lambda r: r["faults"][0].update(error_window_s=ALERTS.recovery_s + 1),
    "acked_writes_kept": lambda r: r["client"]["events"].update(acked_writes_lost=1),
    "acked_loss_bounded": lambda r: lossy(r, last_s=3.2),
    "new_primary_elected": lambda r: r["faults"][0].update(new_primary=None),
    "generator_headroom": lambda r: r["generator"]["processes"][0].update(cpu_over_90_share=0.5),
}


def test_every_gate_has_a_breaking_case() -> None:
    assert set(BREAKERS) == set(GATES)


@pytest.mark.parametrize("name", sorted(GATES))
def test_gate_passes_when_healthy_and_fails_when_broken(name: str) -> None:
    (gate,) = evaluate(healthy_report(), ALERTS, (name,))
    assert gate.passed, gate
    broken = copy.deepcopy(healthy_report())
    BREAKERS[name](broken)
    (gate,) = evaluate(broken, ALERTS, (name,))
    assert not gate.passed, gate
    assert gate.name == name


def lossy(report: dict, last_s: float = 1.4) -> dict:
    """A failover that lost 3 acknowledged writes, the last acknowledged `last_s` after the fault."""
    report["client"]["events"]["acked_writes_lost"] = 3
    report["faults"][0]["acked_loss"] = {"count": 3, "first_s": 0.1, "last_s": last_s}
    return report


@pytest.mark.parametrize(
    "break_it",
    [
        pytest.param(lambda r: r["faults"][0]["acked_loss"].update(last_s=3.01), id="lost-beyond-the-bound"),
        pytest.param(lambda r: r["client"]["events"].update(durable_acked_writes_lost=1), id="one-durable-lost"),
        pytest.param(lambda r: r["faults"][0].update(loss_bound_s=None), id="no-bound-and-a-loss"),
        pytest.param(lambda r: r["client"]["events"].update(acked_writes_unverified=5), id="not-read-back"),
        pytest.param(lambda r: r["client"]["events"].update(acked_writes=0), id="nothing-written"),
    ],
)
def test_acked_loss_bounded_fails_each_way_the_loss_escapes_the_bound(break_it) -> None:
    report = lossy(healthy_report())
    (gate,) = evaluate(report, ALERTS, ("acked_loss_bounded",))
    assert gate.passed, gate
    break_it(report)
    (gate,) = evaluate(report, ALERTS, ("acked_loss_bounded",))
    assert not gate.passed, gate


def test_acked_loss_bounded_says_bound_measured_and_durable_side_by_side() -> None:
    (gate,) = evaluate(lossy(healthy_report()), ALERTS, ("acked_loss_bounded",))
    assert (gate.value, gate.threshold) == (1.4, 3.0)
    assert gate.detail == (
        "3 of 500 acknowledged writes lost, the last acknowledged 1.4 s after the fault; bound 3 s; "
        "durable writes lost: 0 of 200"
    )
    unbounded = healthy_report()
    unbounded["faults"][0].update(loss_bound_s=None, acked_loss=None)
    unbounded["client"]["events"]["acked_writes_lost"] = 0
    (gate,) = evaluate(unbounded, ALERTS, ("acked_loss_bounded",))
    assert gate.passed and "no bound (min_replicas_to_write 0" in gate.detail, gate


def test_acked_writes_kept_allows_only_what_everysec_lets_a_kill_lose() -> None:
    """With appendfsync everysec a killed Redis may lose writes it acknowledged up to 2 s before the kill
    (its AOF write postponed behind a slow fsync); one acknowledged earlier, or after, fails the gate."""
    report = healthy_report()
    report["faults"] = [{"kind": "kill", "error_window_s": 1.2, "kill_loss_window_s": 2.0, "acked_loss": None}]
    report["client"]["events"]["acked_writes_lost"] = 4
    report["faults"][0]["acked_loss"] = {"count": 4, "first_s": -1.9, "last_s": -0.2}
    (gate,) = evaluate(report, ALERTS, ("acked_writes_kept",))
    assert gate.passed and gate.value == 0 and "all acknowledged within the 2 s before the kill" in gate.detail
    for first_s, last_s in ((-2.5, -0.2), (-1.0, 0.3)):
        report["faults"][0]["acked_loss"] = {"count": 4, "first_s": first_s, "last_s": last_s}
        (gate,) = evaluate(report, ALERTS, ("acked_writes_kept",))
        assert not gate.passed and gate.value == 4 and "not all acknowledged" in gate.detail, (first_s, gate)
    report["faults"][0]["kill_loss_window_s"] = 0.0  # appendfsync always: nothing may be lost
    report["faults"][0]["acked_loss"] = {"count": 4, "first_s": -0.1, "last_s": -0.05}
    (gate,) = evaluate(report, ALERTS, ("acked_writes_kept",))
    assert not gate.passed and gate.detail == "4 of 500 acknowledged writes lost"


def test_no_work_is_no_pass() -> None:
    empty = healthy_report() | {"commands": {}}
    (gate,) = evaluate(empty, ALERTS, ("error_rate",))
    assert not gate.passed
    (gate,) = evaluate(healthy_report() | {"faults": []}, ALERTS, ("recovery_window",))
    assert not gate.passed


def test_every_scenario_names_known_gates() -> None:
    for scenario in SCENARIOS.values():
        assert set(scenario.gates) <= set(GATES), scenario.name


def test_error_rate_fails_when_one_request_never_succeeded_however_few_its_calls() -> None:
    """A workload whose every call failed (a wrong service password) fails the gate even when the
    other workloads' volume keeps the overall ratio under the threshold."""
    report = healthy_report()
    name = next(iter(report["commands"]))
    report["commands"]["cache.get price"] = {**report["commands"][name], "count": 3, "errors": 3}
    (gate,) = evaluate(report, ALERTS, ("error_rate",))
    assert gate.value is not None and gate.value <= ALERTS.error_ratio
    assert not gate.passed and "every call failed: cache.get price" in gate.detail


def test_new_primary_elected_says_what_happened_whether_or_not_one_was_elected() -> None:
    """Its detail reads as a sentence both ways (it said `no new primary (s from the kill)`)."""
    (elected,) = evaluate(healthy_report(), ALERTS, ("new_primary_elected",))
    assert elected.detail == "time from the kill until redis-1 replaced redis-0"
    none = copy.deepcopy(healthy_report())
    BREAKERS["new_primary_elected"](none)
    (gate,) = evaluate(none, ALERTS, ("new_primary_elected",))
    assert gate.detail == "no new primary was elected after the kill" and gate.value is None
    second = copy.deepcopy(healthy_report())
    second["faults"].append({"kind": "failover", "old_primary": "redis-1", "new_primary": None})
    (gate,) = evaluate(second, ALERTS, ("new_primary_elected",))
    assert not gate.passed
    assert gate.detail == "time from the kill until redis-1 replaced redis-0; 1 of 2 kills elected no new primary"
    (gate,) = evaluate(healthy_report() | {"faults": []}, ALERTS, ("new_primary_elected",))
    assert gate.detail == "no fault was injected"


def _unbounded_error_rate_except_oom(report: dict, alerts) -> Gate:
    """The formula before the bound: errors less every -OOM refusal counted, over the calls."""
    total = sum(c["count"] for c in report["commands"].values())
    errors = sum(c["errors"] for c in report["commands"].values()) - report["server"]["oom_errors"]
    return Gate("error_rate_except_oom", errors / total <= alerts.error_ratio, errors / total, alerts.error_ratio, "")


def check_error_rate_except_oom_is_bounded(gate_fn) -> None:
    """More -OOM refusals counted than calls failed (a pipeline's refused call is one failed call but
    several -OOM replies): the ratio stays at 0 and the detail names both counts."""
    report = healthy_report()
    report["commands"]["SET price"].update(errors=3)
    report["server"].update(oom_errors=8, oom_replies=40)
    gate = gate_fn(report, ALERTS)
    assert gate.value == 0.0 and gate.passed
    assert "bounded at 0 %" in gate.detail and "8" in gate.detail and "3 failed calls" in gate.detail
    assert "40 by the server's count" in gate.detail
    # Past one: more errors besides -OOM than calls (a damaged report) is still at most 100 %.
    report["commands"]["SET price"].update(errors=5000)
    report["server"].update(oom_errors=0)
    gate = gate_fn(report, ALERTS)
    assert gate.value == 1.0 and not gate.passed and "bounded at 100 %" in gate.detail


def test_error_rate_except_oom_is_bounded_and_says_why() -> None:
    check_error_rate_except_oom_is_bounded(GATES["error_rate_except_oom"])


def test_the_unbounded_formula_fails_the_bound_check() -> None:
    with pytest.raises(AssertionError):
        check_error_rate_except_oom_is_bounded(_unbounded_error_rate_except_oom)


def test_error_rate_except_oom_counts_other_errors_without_a_bound_note() -> None:
    report = healthy_report()
    report["commands"]["SET price"].update(errors=25)
    report["server"].update(oom_errors=5, oom_replies=5)
    (gate,) = evaluate(report, ALERTS, ("error_rate_except_oom",))
    assert gate.value == pytest.approx(20 / 1100)
    assert gate.detail == "20 of 1,100 commands failed, besides 5 refused with -OOM"


def test_the_servers_oom_count_is_read_from_errorstats_per_node_and_summed() -> None:
    # redis-py's parse of INFO errorstats, and RedisCluster's answer keyed by node.
    standalone = {"errorstat_OOM": {"count": 7}, "errorstat_NOPERM": {"count": 2}}
    assert oom_replies(standalone) == 7
    assert oom_replies({"errorstat_NOPERM": {"count": 2}}) == 0 and oom_replies({}) == 0
    assert oom_replies({"127.0.0.1:6391": standalone, "127.0.0.1:6392": {"errorstat_OOM": {"count": 3}}}) == 10
