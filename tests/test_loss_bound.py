"""The partition loss bound: what the profile implies, how the writers' losses travel from the workers
to the report, how the report says it, and the durable write's refusals that need no server.
The real partition, with the real bound against the measured loss, is in test_topologies_integration."""

from __future__ import annotations

import re

import pytest
import yaml

from redis_harness.client.connection import RedisSettings, check_durable
from redis_harness.load.recorder import Recorder
from redis_harness.profile.model import profile_from_mapping
from redis_harness.report.analysis import acked_loss
from redis_harness.report.text import fault_lines

from .conftest import REPO


def ha_with(**replication: object):
    raw = yaml.safe_load((REPO / "profiles" / "ha.yaml").read_text())
    raw["replication"] = {**raw["replication"], **replication}
    return profile_from_mapping(raw, REPO / "profiles" / "ha.yaml")


def test_the_ha_profile_bounds_a_partition_at_three_seconds() -> None:
    """1 s of lag, the least Redis takes, plus a second for the replicas' acknowledgement and one for the recount."""
    replication = ha_with().topology.replication
    assert replication.min_replicas_max_lag_s == 1
    assert replication.acked_loss_bound_s == 3.0
    assert ha_with(min_replicas_max_lag="3s").topology.replication.acked_loss_bound_s == 5.0
    assert ha_with(min_replicas_max_lag="500ms").topology.replication.acked_loss_bound_s == 3.0  # Redis: 1 s
    assert ha_with(min_replicas_to_write=0).topology.replication.acked_loss_bound_s is None


def test_losses_travel_from_the_workers_to_the_master_whole() -> None:
    worker_a, worker_b, master = Recorder(), Recorder(), Recorder()
    worker_a.record_loss(False, 10, 100.2, 101.9)
    worker_b.record_loss(False, 4, 100.5, 102.3)
    worker_b.record_loss(True, 1, 101.0, 101.0)
    for worker in (worker_a, worker_b):
        master.merge(worker.export())
    assert worker_a.losses == [] and len(master.losses) == 3
    assert acked_loss(master.losses, fault_at=100.3) == {"count": 14, "first_s": -0.1, "last_s": 2.0}
    assert acked_loss([loss for loss in master.losses if loss["durable"]], fault_at=100.3) is None


def test_the_fault_line_sets_the_measured_loss_beside_the_bound() -> None:
    fault = {
        "kind": "failover (partition)",
        "error_window_s": 7.7,
        "p99_recovery_s": 0.8,
        "hit_ratio_recovery_s": 0.8,
        "acked_writes_lost": 2926,
        "acked_loss": {"count": 2926, "first_s": -0.04, "last_s": 2.55},
        "loss_bound_s": 3.0,
        "durable_acked_writes": 6445,
        "durable_acked_writes_lost": 0,
    }
    text = " ".join(" ".join(fault_lines(fault)).split())
    assert (
        "acked writes lost 2,926 (acknowledged -0.04 to 2.55 s after the fault), bound 3 s, "
        "durable writes lost 0 of 6,445" in text
    )
    assert all(len(line) <= 100 for line in fault_lines(fault))
    unbounded = fault | {"loss_bound_s": None}
    assert "unbounded (min_replicas_to_write 0)" in " ".join(" ".join(fault_lines(unbounded)).split())


@pytest.mark.parametrize(
    ("settings", "timeout_ms", "refusal"),
    [
        (RedisSettings(cluster=True), 100, "not on a Cluster client"),
        (RedisSettings(socket_timeout_s=0.5), 500, "timeout_ms 500 is not shorter than the socket timeout (0.5 s)"),
    ],
)
def test_a_durable_write_that_could_not_mean_what_it_says_is_refused_before_sending(
    settings: RedisSettings, timeout_ms: int, refusal: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(refusal)):
        check_durable(settings, timeout_ms)
    check_durable(settings.replace(cluster=False, socket_timeout_s=1.0), 100)  # the same, fixed, passes


def test_a_kill_may_lose_only_what_the_aof_policy_had_not_written() -> None:
    persistence = ha_with().persistence
    assert (persistence.aof, persistence.appendfsync, persistence.kill_loss_window_s) == (True, "everysec", 2.0)
    for policy, window in (("always", 0.0), ("no", 0.0), ("everysec", 2.0)):
        assert persistence.model_copy(update={"appendfsync": policy}).kill_loss_window_s == window
    assert persistence.model_copy(update={"aof": False}).kill_loss_window_s is None
