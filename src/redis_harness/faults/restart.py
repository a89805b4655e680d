"""What a crashed data node's way back is made of, read from the events that mark each step.

After a SIGKILL (faults.inject.kill) the window until the next acknowledged write has parts that
belong to different owners, each read from its own source:

- Docker: the process seen dead (the `die` event) and started again by the restart policy (the
  `start` event; the engine waits 100 ms before a first restart), from `docker events`, ns precise;
- Redis: its start and AOF load, from its own log lines ("Redis is starting", "DB loaded from append
  only file: X seconds", "Ready to accept connections") as Docker timestamped them. INFO cannot say
  it afterwards: its `loading_*` fields exist only while a load runs (milliseconds here), and INFO
  server's uptime counts whole seconds;
- the network path: when the published port first completes a TCP handshake from the host (probed
  every 20 ms with a 20 ms connect timeout). Redis listens before it loads the AOF, yet measured
  here the port stayed unreachable (SYNs dropped, no refusal) until about Redis's ready line, up to
  0.2 s after it: Docker's networking of the new container, which no client setting shortens;
- the client: from Redis ready and the port reachable to its first acknowledged write (its reconnect
  attempts), which the writer records itself (load.recorder's recoveries).

Also read: healthcheck runs (`exec_start` events) and when Docker called the container healthy, so
the report can show that nothing in the window waits for the healthcheck.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from redis_harness.deploy.engine import docker_client

STARTING = "Redis is starting"
READY = "Ready to accept connections"
AOF_LOADED = re.compile(r"DB loaded from append only file: ([0-9.]+) seconds")
POLL_S = 0.05
PROBE_S = 0.02  # the port probe's interval and connect timeout


@dataclass
class RestartTimeline:
    """Unix times (s) of each step after a kill; None for a step that was not seen."""

    killed_at: float
    died_at: float | None = None  # Docker's `die` event
    started_at: float | None = None  # Docker's `start` event (the restart policy)
    redis_starting_at: float | None = None  # Redis's first log line
    redis_ready_at: float | None = None  # "Ready to accept connections"
    aof_load_s: float | None = None  # as Redis reports it
    port_open_at: float | None = None  # the published port's first completed handshake from the host
    healthy_at: float | None = None  # Docker's `health_status: healthy` event
    health_checks: int = 0  # healthcheck runs from the kill until Redis was ready

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def log_time(stamp: str) -> float:
    """Docker's RFC 3339 log timestamp (nanoseconds, `Z`) as unix seconds."""
    head, _, fraction = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(fraction + '000000')[:6]}").replace(tzinfo=UTC).timestamp()


def stamped_lines(text: str, after: float) -> Iterator[tuple[float, str]]:
    """(unix time, message) of each line of `docker logs --timestamps` output from `after` on."""
    for line in text.splitlines():
        stamp, _, message = line.partition(" ")
        try:
            at = log_time(stamp)
        except ValueError:
            continue
        if at >= after:
            yield at, message


def parse_log(text: str, after: float, timeline: RestartTimeline) -> None:
    """The Redis steps from `docker logs --timestamps` output, the first of each after `after`."""
    for at, message in stamped_lines(text, after):
        if STARTING in message and timeline.redis_starting_at is None:
            timeline.redis_starting_at = at
        elif (loaded := AOF_LOADED.search(message)) and timeline.aof_load_s is None:
            timeline.aof_load_s = float(loaded.group(1))
        elif READY in message and timeline.redis_ready_at is None and timeline.redis_starting_at is not None:
            timeline.redis_ready_at = at


def parse_events(events: list[dict[str, Any]], timeline: RestartTimeline) -> None:
    """Docker's die, start, healthcheck and health events of the container, the first of each after the kill."""
    for event in sorted(events, key=lambda e: e.get("timeNano", 0)):
        at = event.get("timeNano", 0) / 1e9
        status = event.get("status") or event.get("Action") or ""
        if at < timeline.killed_at:
            continue
        if status == "die" and timeline.died_at is None:
            timeline.died_at = at
        elif status == "start" and timeline.died_at is not None and timeline.started_at is None:
            timeline.started_at = at
        elif status.startswith("exec_start") and (timeline.redis_ready_at is None or at <= timeline.redis_ready_at):
            timeline.health_checks += 1
        elif status == "health_status: healthy" and timeline.started_at is not None and timeline.healthy_at is None:
            timeline.healthy_at = at


def port_open(address: tuple[str, int]) -> bool:
    """One TCP handshake with the published port (closed at once: Redis sees a client come and go)."""
    try:
        with socket.create_connection(address, timeout=PROBE_S):
            return True
    except OSError:
        return False


def read_timeline(
    container: Any, killed_at: float, address: tuple[str, int] | None = None, timeout_s: float = 30.0
) -> RestartTimeline:
    """The steps of `container`'s way back from a kill at `killed_at`, probing `address` (the published
    port) meanwhile; call it at once after the kill. Waits (bounded) for Redis to say it is ready and the
    port to answer, and a little longer for the healthcheck's verdict."""
    timeline = RestartTimeline(killed_at)
    deadline = time.monotonic() + timeout_s
    next_log = 0.0
    while time.monotonic() < deadline:
        if address is not None and timeline.port_open_at is None and port_open(address):
            timeline.port_open_at = time.time()
        if time.monotonic() >= next_log:
            logs = container.logs(stdout=True, stderr=True, timestamps=True, since=int(killed_at))
            parse_log(logs.decode("utf-8", "replace"), killed_at, timeline)
            next_log = time.monotonic() + POLL_S
        if timeline.redis_ready_at is not None and (address is None or timeline.port_open_at is not None):
            break
        time.sleep(PROBE_S)
    while time.monotonic() < deadline:  # the healthcheck's verdict, so its event is among those read
        container.reload()
        if (container.attrs["State"].get("Health") or {}).get("Status", "healthy") == "healthy":
            break
        time.sleep(POLL_S)
    # `until` a second ahead: the stream ends by itself once that time has passed.
    events = docker_client().events(
        since=int(killed_at) - 1, until=int(time.time()) + 1, filters={"container": container.id}, decode=True
    )
    parse_events(list(events), timeline)
    return timeline
