"""Real faults on a real deployment: the client must survive them without being restarted.

Figures (outage windows, writes lost, call durations) are reported, not
asserted; what is asserted is what Redis and the client promise: no call hangs
past its bound, the breaker opens and closes, reads are served, writes are not
lost beyond what appendfsync everysec allows.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import gevent
import pytest
import redis

from redis_harness.client.breaker import BreakerOpen, State
from redis_harness.client.connection import ResilientRedis
from redis_harness.client.keys import build_key
from redis_harness.deploy.connect import endpoint, service_cache, settings_for
from redis_harness.deploy.containers import service_container
from redis_harness.deploy.neighbours import NEIGH_DIR, RETRANS_TIME_MS
from redis_harness.faults import inject as faults
from redis_harness.faults.restart import read_timeline
from redis_harness.load.resp import CallWatchdog, ConnectionFailed, RespConnection, encode
from redis_harness.origin.store import OriginStore, Quote
from redis_harness.render.networks import bridge_names

from .conftest import Deployment, emit

pytestmark = pytest.mark.integration

# Short timeouts so a fault shows within seconds; one retry so a call's bound stays small.
FAST = {"connect_timeout_s": 0.5, "socket_timeout_s": 0.5, "retries": 1, "backoff_cap_s": 0.2}
BREAKER = {"fail_max": 3, "reset_timeout_s": 1.0}
SLACK_S = 1.0  # scheduling noise on a busy 2-core machine


@pytest.fixture(scope="module")
def deployment(fault_deployment: Deployment) -> Deployment:
    return fault_deployment


@pytest.fixture
def healthy(deployment: Deployment) -> Iterator[Deployment]:
    """Every test starts and ends with the container running and healthy, whatever the test did."""
    faults.wait_running(deployment.profile, timeout_s=60)
    yield deployment
    container = service_container(deployment.profile)
    container.reload()
    if container.attrs["State"].get("Paused"):
        faults.unpause(deployment.profile)
    faults.reconnect(deployment.profile, "edge")
    if container.attrs["State"].get("Status") == "exited":
        faults.start(deployment.profile)
    faults.wait_running(deployment.profile, timeout_s=60)


def test_kill_during_steady_writes(healthy: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    """SIGKILL while a sequence writer runs: the restart policy brings Redis back, the same client
    recovers, and only writes acknowledged in the last fsync second may be lost (appendfsync everysec)."""
    profile = healthy.profile
    assert profile.persistence.aof and profile.persistence.appendfsync == "everysec"
    settings = settings_for(profile, "processing", healthy.secrets.service("processing").password, **FAST)
    client = ResilientRedis(settings, fail_max=3, reset_timeout_s=0.5)
    key = build_key("processing", 1, "sequence", "kill-run")
    client.call(lambda r: r.delete(key))
    acked: list[tuple[int, float]] = []  # (value, when Redis acknowledged it)
    failed: list[float] = []
    stop = threading.Event()

    def writer() -> None:
        value = 0
        deadline = time.monotonic() + 40  # bounded whatever happens
        while not stop.is_set() and time.monotonic() < deadline:
            value += 1
            try:
                client.call(lambda r, v=value: r.rpush(key, v))
                acked.append((value, time.monotonic()))
            except (BreakerOpen, redis.RedisError):
                failed.append(time.monotonic())
                time.sleep(0.005)

    container = service_container(profile)
    restarts_before = container.attrs.get("RestartCount", 0)
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(2.0)
        record = faults.kill(profile)
        back_after_s = record.in_place_after_s + faults.wait_running(profile, healthy=False, timeout_s=30)
        # Keep writing until the client has written for a while after the kill (bounded).
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(t > record.in_place_mono + 1.0 for _, t in acked[-1:]):
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(30)
    present = {int(v) for v in client.call(lambda r: r.lrange(key, 0, -1))}
    client.close()

    before = [t for _, t in acked if t <= record.in_place_mono]
    after = [t for _, t in acked if t > record.in_place_mono]
    assert after, "the client never wrote again after the kill"
    lost = [(v, t) for v, t in acked if v not in present]
    container.reload()
    assert container.attrs["State"]["Status"] == "running"
    assert container.attrs.get("RestartCount", 0) == restarts_before + 1  # the restart policy, not us
    # Redis's promise for everysec: at most the last second or so before the crash (2 s if an fsync
    # was slow); anything acknowledged by the restarted server is in memory and must all be there
    # (the margin keeps a late-stamped reply of the old process out of that set).
    assert all(t >= record.requested_mono - 2.0 for _, t in lost)
    assert all(v in present for v, t in acked if t > record.in_place_mono + 0.5)
    emit(
        capsys,
        "kill_during_writes",
        {
            "acknowledged": len(acked),
            "failed_attempts": len(failed),
            "lost_acknowledged": len(lost),
            "outage_window_s": round(after[0] - before[-1], 3),
            "container_running_again_after_s": round(back_after_s, 3),
            "breaker_transitions": [f"{t.old.value}->{t.new.value}" for t in client.breaker.transitions],
        },
    )


def test_kill_timeline_reads_each_step_of_the_way_back(healthy: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    """A real kill: Docker's die and start events, Redis's start, AOF load and ready lines, the published
    port's first handshake and the healthcheck's verdict are all found, in the order they happen; `up`
    set ARP's retry interval on the deployment's bridges. Figures reported, never asserted."""
    profile = healthy.profile
    for bridge in set(bridge_names(profile).values()):
        assert (NEIGH_DIR / bridge / "retrans_time_ms").read_text().strip() == str(RETRANS_TIME_MS), bridge
    record = faults.kill(profile)
    found = read_timeline(service_container(profile), record.requested_at, endpoint(profile))
    steps = [found.killed_at, found.died_at, found.redis_starting_at, found.redis_ready_at, found.healthy_at]
    assert None not in steps and steps == sorted(steps), found
    assert found.started_at is not None and found.died_at < found.started_at < found.redis_ready_at
    assert found.aof_load_s is not None and found.port_open_at is not None and found.port_open_at > found.died_at
    emit(capsys, "kill_timeline", {k: round(v - found.killed_at, 3) if k.endswith("_at") and v else v
                                   for k, v in found.to_dict().items()})  # fmt: skip


def _outage_round(deployment: Deployment, origin: OriginStore, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Hold a fault longer than the socket timeout: calls fail within their bound, the breaker opens,
    reads come from the origin, writes land in the origin, and all recovers after the fault ends."""
    cache = service_cache(
        deployment.profile, deployment.secrets, "price", origin, settings=FAST, breaker=BREAKER, version_refresh_s=600
    )
    bound_s = cache.client.settings.worst_case_call_s + SLACK_S
    symbols = origin.hottest(8)
    for symbol in symbols:
        cache.get("price", symbol)  # cached before the fault
    target = symbols[0]
    venue = next(iter(origin.read("price", target)["venues"]))
    durations: list[float] = []
    opened_after_s = None
    with faults.injected(deployment.profile, kind) as record:
        for symbol in symbols:
            started = time.monotonic()
            value = cache.get("price", symbol)
            durations.append(time.monotonic() - started)
            assert value == origin.read("price", symbol)  # served, from the origin
            if opened_after_s is None and cache.client.breaker.state is State.OPEN:
                opened_after_s = time.monotonic() - record.in_place_mono
        assert max(durations) <= bound_s, f"a call hung: {max(durations):.2f} s > {bound_s:.2f} s"
        assert cache.client.breaker.state is State.OPEN
        assert cache.client.breaker.snapshot()["rejected"] > 0  # later calls failed fast, Redis untouched
        # A write during the outage lands in the origin; the cache key is journaled, not trusted.
        mid = origin.read("price", target)["venues"][venue] * 1.03
        prices = cache.write_quotes([Quote(target, venue, mid - 0.01, mid + 0.01, 1e6)])
        assert origin.read("price", target) == prices[target]
        assert cache.key("price", target) in cache.pending()
        assert cache.get("price", target) == prices[target]
        held_for = time.monotonic() - record.in_place_mono
    reverted = time.monotonic()
    deadline = reverted + 20
    while time.monotonic() < deadline:
        cache.get("price", symbols[1])
        if cache.client.breaker.state is State.CLOSED and not cache.pending():
            break
        time.sleep(0.1)
    recovered_after_s = time.monotonic() - reverted
    assert cache.client.breaker.state is State.CLOSED and cache.pending() == []
    states = [t.new for t in cache.client.breaker.transitions]
    assert states[0] is State.OPEN and states[-2:] == [State.HALF_OPEN, State.CLOSED]
    # After recovery the cache serves the value written during the outage, never the old one.
    assert cache.get("price", target) == prices[target]
    raw = cache.client.call(lambda r: r.get(cache.key("price", target)))
    assert cache.codec.decode(raw) == prices[target]
    figures: dict[str, Any] = {
        "fault": kind,
        "fault_in_place_after_s": round(record.in_place_after_s, 3),
        "held_s": round(held_for, 2),
        "call_bound_s": round(bound_s, 2),
        "read_durations_s": [round(d, 3) for d in durations],
        "breaker_open_after_s": round(opened_after_s, 3) if opened_after_s is not None else None,
        "recovered_after_revert_s": round(recovered_after_s, 3),
        "breaker_transitions": [f"{t.old.value}->{t.new.value}" for t in cache.client.breaker.transitions],
        "stats": {k: v for k, v in cache.stats.snapshot().items() if k != "latency"},
    }
    cache.close()
    emit(capsys, f"{kind}_outage", figures)


def test_pause_longer_than_the_socket_timeout(
    healthy: Deployment, origin: OriginStore, capsys: pytest.CaptureFixture[str]
) -> None:
    _outage_round(healthy, origin, "pause", capsys)


def test_lean_calls_in_a_pause_fail_at_their_bound_and_the_next_ones_succeed(
    healthy: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    """The lean load user's connections (cooperative sockets, no socket timeout, one CallWatchdog) through
    a 2.5 s pause: no call outlives its 1 s bound by more than the watchdog's period and the host's
    scheduling, the calls the pause caught fail as timeouts on every connection, and every connection
    is answering again after the unpause."""
    profile = healthy.profile
    host, port = endpoint(profile)
    password = healthy.secrets.service("price").password
    watchdog = CallWatchdog(period_s=0.1)
    connections = [RespConnection(host, port, "price", password, 1.0, watchdog=watchdog) for _ in range(10)]
    get = encode("GET", "price:lean-pause")
    calls: list[list[tuple[float, float, str | None]]] = [[] for _ in connections]  # (began, took, error)
    running = True

    def loop(n: int) -> None:
        while running:
            began = time.monotonic()
            try:
                connections[n].execute(get)
                error = None
            except ConnectionFailed as exc:
                error = str(exc)
            calls[n].append((began, time.monotonic() - began, error))
            gevent.sleep(0.01)

    threads = gevent.get_hub().threadpool  # the Docker calls block; the greenlets go on meanwhile
    users = [gevent.spawn(loop, n) for n in range(len(connections))]
    gevent.sleep(0.5)
    threads.spawn(faults.pause, profile).get()
    paused_at = time.monotonic()
    gevent.sleep(2.5)
    threads.spawn(faults.unpause, profile).get()
    resumed_at = time.monotonic()
    gevent.sleep(1.5)
    running = False
    gevent.joinall(users, timeout=5)
    for connection in connections:
        connection.close()
    longest = max(took for calls_of in calls for _, took, _ in calls_of)
    emit(capsys, "lean_pause", {"longest_call_s": round(longest, 3), "calls": sum(map(len, calls))})
    assert longest < 1.0 + 0.1 + SLACK_S, longest
    for calls_of in calls:
        timeouts = [began for began, _, error in calls_of if error and "no reply within 1 s" in error]
        assert timeouts and all(paused_at - 1.1 <= began <= resumed_at for began in timeouts), calls_of
        assert calls_of[-1][2] is None and calls_of[-1][0] > resumed_at, calls_of[-3:]


def test_network_disconnect_and_reconnect(
    healthy: Deployment, origin: OriginStore, capsys: pytest.CaptureFixture[str]
) -> None:
    _outage_round(healthy, origin, "disconnect", capsys)


def test_stop_is_not_undone_by_the_restart_policy_and_start_recovers(healthy: Deployment) -> None:
    profile = healthy.profile
    client = ResilientRedis(settings_for(profile, None, healthy.secrets.default.password, **FAST))
    key = build_key("price", 1, "marker", "stop")  # the default user has price's rights (profiles/ci.yaml)
    assert client.call(lambda r: r.set(key, b"kept"))
    faults.stop(profile)  # SIGTERM: Redis flushes its AOF and exits
    time.sleep(1.5)
    container = service_container(profile)
    container.reload()
    assert container.attrs["State"]["Status"] == "exited"  # a manual stop stays stopped
    with pytest.raises((redis.ConnectionError, BreakerOpen)):
        client.call(lambda r: r.get(key))
    faults.start(profile)
    faults.wait_running(profile, timeout_s=60)
    assert client.call(lambda r: r.get(key)) == b"kept"  # same client, data from the AOF
    faults.restart(profile)
    faults.wait_running(profile, timeout_s=60)
    assert client.call(lambda r: r.get(key)) == b"kept"
    client.close()


def test_fault_command_for_people_and_scripts(healthy: Deployment) -> None:
    cli = [sys.executable, "-m", "redis_harness.cli", "fault", str(healthy.profile.source)]
    done = subprocess.run([*cli, "pause", "--for", "1", "--json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (record,) = json.loads(done.stdout)
    assert record["kind"] == "pause" and record["held_s"] >= 1.0 and record["reverted_at"] > record["in_place_at"]
    container = service_container(healthy.profile)
    container.reload()
    assert container.attrs["State"]["Status"] == "running" and not container.attrs["State"]["Paused"]
    refused = subprocess.run([*cli, "kill", "--for", "1"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "--for" in refused.stderr
    done = subprocess.run([*cli, "kill"], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    assert "running and healthy again" in done.stdout
