"""A SIGKILL's window split by owner: Docker's events and Redis's log lines as this host gave them
(a standalone kill with a writer running), and the writers' own recoveries."""

from __future__ import annotations

import pytest

from redis_harness.faults.restart import RestartTimeline, log_time, parse_events, parse_log
from redis_harness.faults.sentinel_steps import parse_steps
from redis_harness.report.kill_window import (
    FAILOVER_PARTS,
    PARTS,
    failover_window,
    failover_window_lines,
    kill_window,
    window_lines,
)

KILLED = log_time("2026-12-04T11:13:53.361623000Z")
# `docker logs --timestamps` of the restarted container (Redis 7.0.15, AOF with an RDB base).
LOG = """\
2026-12-04T11:13:40.100000000Z 1:M 04 Dec 2026 11:13:40.100 * Ready to accept connections
2026-12-04T11:13:53.946872712Z 1:C 04 Dec 2026 11:13:53.946 # oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo
2026-12-04T11:13:53.954540844Z 1:C 04 Dec 2026 11:13:53.954 # Configuration loaded
2026-12-04T11:13:53.964925675Z 1:M 04 Dec 2026 11:13:53.962 * DB loaded from base file a.1.base.rdb: 0.000 seconds
2026-12-04T11:13:54.038476354Z 1:M 04 Dec 2026 11:13:54.038 * DB loaded from incr file a.1.incr.aof: 0.075 seconds
2026-12-04T11:13:54.038602231Z 1:M 04 Dec 2026 11:13:54.038 * DB loaded from append only file: 0.076 seconds
2026-12-04T11:13:54.038723041Z 1:M 04 Dec 2026 11:13:54.038 * Ready to accept connections
"""
HEALTHCHECK = "exec_start: /bin/sh -c redis-cli --user healthcheck ping | grep -qx PONG"
EVENTS = [  # docker events of the container (decoded), out of order as a stream may give them
    {"status": "start", "timeNano": 1796382833957046389},
    {"status": "die", "timeNano": 1796382833389288717},
    {"status": "start", "timeNano": 1796382812895961360},  # the first start, before the kill
    {"status": HEALTHCHECK, "timeNano": 1796382836027626074},  # after Redis was ready
    {"status": "health_status: healthy", "timeNano": 1796382837027626074},
]


def timeline() -> RestartTimeline:
    found = RestartTimeline(KILLED)
    parse_log(LOG, KILLED, found)
    parse_events(EVENTS, found)
    found.port_open_at = found.redis_ready_at + 0.655  # the host's ARP retry came 0.655 s after Redis was ready
    return found


def test_the_steps_come_from_dockers_events_and_redis_own_lines_after_the_kill() -> None:
    found = timeline()
    assert found.died_at == pytest.approx(1796382833.389288717)
    assert found.started_at == pytest.approx(1796382833.957046389), "the restart, not the first start"
    assert found.redis_starting_at == pytest.approx(log_time("2026-12-04T11:13:53.946872712Z"))
    assert found.redis_ready_at == pytest.approx(log_time("2026-12-04T11:13:54.038723041Z")), "not the old line"
    assert found.aof_load_s == 0.076, "the whole AOF, as Redis says it, not its base file"
    assert found.healthy_at == pytest.approx(1796382837.027626074)
    assert found.health_checks == 0, "the one healthcheck ran after Redis was ready"


RECOVERIES = [  # per writer: its run of failures from the kill, and its first acknowledged write
    {
        "failed_since": KILLED + 0.004,
        "acked_at": KILLED + 1.344,
        "failed_attempts": 300,
        "longest_failed_attempt_s": 1.0,
    },
    {
        "failed_since": KILLED + 0.010,
        "acked_at": KILLED + 1.351,
        "failed_attempts": 200,
        "longest_failed_attempt_s": 1.0,
    },
    {
        "failed_since": KILLED + 8.000,
        "acked_at": KILLED + 8.020,
        "failed_attempts": 1,
        "longest_failed_attempt_s": 0.02,
    },
]


def check_parts(window: dict) -> None:
    """Each part its owner's: the network's wait is Docker's, not the client's, and the parts add up."""
    assert window["kill_to_first_ack_s"] == pytest.approx(1.344, abs=0.002)
    assert all(window[key] is not None and window[key] >= 0 for key, _, _ in PARTS), window
    assert sum(window[key] for key, _, _ in PARTS) == pytest.approx(window["kill_to_first_ack_s"], abs=0.005)
    assert window["network_s"] == pytest.approx(0.655, abs=0.002) and window["client_s"] < 0.02
    assert window["failed_attempts"] == 500, "the later hiccup is not this kill's"


def test_kill_window_gives_each_part_to_its_owner() -> None:
    window = kill_window(timeline().to_dict(), RECOVERIES)
    check_parts(window)
    assert window["docker_restart_s"] == pytest.approx(0.558, abs=0.002)
    assert window["redis_start_s"] == pytest.approx(0.092, abs=0.002) and window["aof_load_s"] == 0.076
    lines = window_lines(window)
    assert lines[0] == "kill -> first acknowledged write 1.34 s:"
    assert "0.66 s  Docker  published port reachable after Redis ready" in lines[4]
    assert lines[-1].endswith("healthy after 3.67 s: not waited for")
    assert all(len("  " + line) <= 100 for line in lines)


def _from_redis_ready(restart: dict, recoveries: list[dict]) -> dict:
    """The split without the port probe: everything after Redis's ready line counted as the client's."""
    return kill_window({**restart, "port_open_at": None}, recoveries) | {"network_s": 0.0}


def test_without_the_port_probe_the_network_wait_is_blamed_on_the_client() -> None:
    with pytest.raises(AssertionError):
        check_parts(_from_redis_ready(timeline().to_dict(), RECOVERIES))


def test_a_writer_through_before_the_probe_noticed_moves_the_open_port_back() -> None:
    late_probe = {**timeline().to_dict()}
    late_probe["port_open_at"] = KILLED + 1.38  # the probe's next try came after the writers got in
    window = kill_window(late_probe, RECOVERIES)
    assert window["client_s"] == 0.0 and window["network_s"] == pytest.approx(1.344 - 0.677, abs=0.002)


SENTINEL_LOGS = [
    # sentinel-0, then the leader, as `docker logs --timestamps` prints them (Redis's own stamp after Docker's)
    "2026-12-04T19:03:15.367000000Z 1:X 04 Dec 2026 19:03:15.367 # +sdown master primary redis-1 6379\n"
    "2026-12-04T19:03:15.458000000Z 1:X 04 Dec 2026 19:03:15.458 # +odown master primary redis-1 6379 #quorum 3/2\n"
    "2026-12-04T19:03:16.486000000Z 1:X 04 Dec 2026 19:03:16.486 # +switch-master primary redis-1 6379 redis-0 6379\n",
    "2026-12-04T19:02:50.000000000Z 1:X 04 Dec 2026 19:02:50.000 # +sdown master primary redis-0 6379\n"
    "2026-12-04T19:03:15.345000000Z 1:X 04 Dec 2026 19:03:15.345 # +sdown master primary redis-1 6379\n"
    "2026-12-04T19:03:15.412000000Z 1:X 04 Dec 2026 19:03:15.412 # +odown master primary redis-1 6379 #quorum 2/2\n"
    "2026-12-04T19:03:15.479000000Z 1:X 04 Dec 2026 19:03:15.479 # +elected-leader master primary redis-1 6379\n"
    "2026-12-04T19:03:16.419000000Z 1:X 04 Dec 2026 19:03:16.419 # +promoted-slave slave redis-0:6379 redis-0 6379\n"
    "2026-12-04T19:03:17.375000000Z 1:X 04 Dec 2026 19:03:17.375 # +switch-master primary redis-1 6379 redis-0 6379\n",
]


def test_a_failovers_steps_are_the_first_sentinel_to_log_each_after_the_fault() -> None:
    fault_at = log_time("2026-12-04T19:03:13.030000000Z")
    steps = parse_steps(SENTINEL_LOGS, after=fault_at)
    assert steps.sdown_at == log_time("2026-12-04T19:03:15.345000000Z")  # the leader's, before sentinel-0's
    assert steps.odown_at == log_time("2026-12-04T19:03:15.412000000Z")
    assert steps.switched_at == log_time("2026-12-04T19:03:16.486000000Z")  # not the leader's own, later
    window = failover_window(fault_at, steps.to_dict(), [{"acked_at": fault_at + 3.55, "failed_since": fault_at}])
    assert window == {
        "detection_s": 2.382,
        "election_s": 0.067,
        "promotion_s": 0.94,
        "switch_s": 0.067,
        "client_s": 0.094,
        "fault_to_first_ack_s": 3.55,
        "sdown_after_s": 2.315,
    }
    parts = sum(window[key] for key, _ in FAILOVER_PARTS)
    assert abs(parts - window["fault_to_first_ack_s"]) < 0.005  # the steps tile the window
    lines = failover_window_lines(window)
    assert lines[0] == "fault -> first acknowledged write 3.55 s:" and "0.94 s  promotion" in lines[3]
    assert all(len(line) <= 90 for line in lines)


def test_a_step_no_sentinel_logged_is_unknown_not_zero() -> None:
    fault_at = log_time("2026-12-04T19:03:13.030000000Z")
    steps = parse_steps([SENTINEL_LOGS[0]], after=fault_at).to_dict()  # the leader's log unread
    window = failover_window(fault_at, steps, [])
    assert window["election_s"] is None and window["promotion_s"] is None and window["fault_to_first_ack_s"] is None
    assert "?" in failover_window_lines(window)[2]
