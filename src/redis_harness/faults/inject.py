"""Faults injected into the Redis container of a running deployment (Docker SDK).

Each function returns once the fault is in place and says when, so a test can
line its own measurements up with it:

- kill        SIGKILL to the container's main process from the host: a crash.
              Docker then applies the restart policy. (`docker kill` would not do:
              it counts as a manual stop, and the restart policy ignores it.)
- stop/start  SIGTERM (Redis writes its AOF) and a manual stop the policy leaves alone.
- restart     stop and start again.
- pause       the cgroup freezer: the process stops, its TCP stack still accepts,
              so clients hang unless they have socket timeouts.
- disconnect  off one compose network; `edge` (the node's own) carries its published port, so
              host clients are cut off; `internal` cuts off other containers.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from redis_harness.deploy.containers import NETWORK_LABEL, PROJECT_LABEL, SERVICE_LABEL, service_container
from redis_harness.deploy.engine import docker_client
from redis_harness.errors import BadInput, HarnessError
from redis_harness.faults import journal
from redis_harness.paths import profile_argument
from redis_harness.profile.model import Profile

REDIS_SERVICE = "redis"
POLL_S = 0.02


@dataclass
class FaultRecord:
    kind: str
    container: str
    requested_at: float  # time.time()
    in_place_at: float
    requested_mono: float  # time.monotonic(), to line up with a client's own timings
    in_place_mono: float
    reverted_at: float | None = None
    reverted_mono: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def in_place_after_s(self) -> float:
        return self.in_place_mono - self.requested_mono

    @property
    def held_s(self) -> float | None:
        return None if self.reverted_mono is None else self.reverted_mono - self.in_place_mono

    def mark_reverted(self) -> None:
        self.reverted_at, self.reverted_mono = time.time(), time.monotonic()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "in_place_after_s": self.in_place_after_s, "held_s": self.held_s}


def _wait(container: Any, done: Callable[[dict[str, Any]], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        container.reload()
        if done(container.attrs):
            return
        if time.monotonic() > deadline:
            state = container.attrs["State"].get("Status")
            raise HarnessError(f"{container.name}: not {what} after {timeout_s:g} s (state {state})")
        time.sleep(POLL_S)


def _record(profile: Profile, kind: str, container: Any, requested: tuple[float, float], **detail: Any) -> FaultRecord:
    """The fault as this process saw it, and an entry in the deployment's fault journal (so
    verify can tell this deliberate act from a crash)."""
    record = FaultRecord(kind, container.name, requested[0], time.time(), requested[1], time.monotonic(), detail=detail)
    journal.append(
        profile.name,
        {"kind": kind, "container": container.name, "container_id": container.id, "at": record.in_place_at, **detail},
    )
    return record


def _now() -> tuple[float, float]:
    return time.time(), time.monotonic()


def _require_running(container: Any) -> dict[str, Any]:
    container.reload()
    state = container.attrs["State"]
    if state.get("Status") != "running" or state.get("Paused"):
        paused = " (paused)" if state.get("Paused") else ""
        raise BadInput(f"{container.name}: is {state.get('Status')}{paused}, not running; a fault needs a running one")
    return state


def kill(profile: Profile, *, node: str | None = None, timeout_s: float = 10.0) -> FaultRecord:
    """SIGKILL the main process from the host; in place when the container has seen it die."""
    container = service_container(profile, node)
    state = _require_running(container)
    pid, restarts = state["Pid"], container.attrs.get("RestartCount", 0)
    requested = _now()
    os.kill(pid, signal.SIGKILL)
    # The pid may linger as a zombie until the shim reaps it, so ask Docker rather than the kernel.
    _wait(
        container,
        lambda a: a["State"].get("Pid") != pid or a["State"].get("Status") != "running",
        timeout_s,
        "seen dead",
    )
    return _record(
        profile, "kill", container, requested, pid=pid, restart_count_before=restarts, restart_policy=profile.restart
    )


def wait_running(profile: Profile, *, node: str | None = None, healthy: bool = True, timeout_s: float = 60.0) -> float:
    """Seconds until the container runs again (and its healthcheck passes, if asked)."""
    container = service_container(profile, node)
    started = time.monotonic()

    def up(attrs: dict[str, Any]) -> bool:
        state = attrs["State"]
        if state.get("Status") != "running" or state.get("Paused"):
            return False
        return not healthy or (state.get("Health") or {}).get("Status", "healthy") == "healthy"

    _wait(container, up, timeout_s, "running and healthy" if healthy else "running")
    return time.monotonic() - started


def stop(profile: Profile, *, node: str | None = None, grace_s: int = 30) -> FaultRecord:
    container = service_container(profile, node)
    _require_running(container)
    requested = _now()
    container.stop(timeout=grace_s)  # returns once the container has exited
    return _record(profile, "stop", container, requested, grace_s=grace_s)


def start(profile: Profile, *, node: str | None = None) -> FaultRecord:
    container = service_container(profile, node)
    requested = _now()
    container.start()
    return _record(profile, "start", container, requested)


def restart(profile: Profile, *, node: str | None = None, grace_s: int = 30) -> FaultRecord:
    container = service_container(profile, node)
    _require_running(container)
    requested = _now()
    container.restart(timeout=grace_s)  # returns once started again
    container.reload()
    return _record(profile, "restart", container, requested, restart_count=container.attrs.get("RestartCount", 0))


def pause(profile: Profile, *, node: str | None = None, timeout_s: float = 10.0) -> FaultRecord:
    container = service_container(profile, node)
    _require_running(container)
    requested = _now()
    container.pause()
    _wait(container, lambda a: a["State"].get("Paused", False), timeout_s, "paused")
    return _record(profile, "pause", container, requested)


def unpause(profile: Profile, *, node: str | None = None, timeout_s: float = 10.0) -> FaultRecord:
    container = service_container(profile, node)
    container.reload()
    if not container.attrs["State"].get("Paused", False):
        # Docker would answer 409 Conflict; say what the state is instead.
        raise BadInput(f"{container.name}: is {container.attrs['State'].get('Status')}, not paused; nothing to unpause")
    requested = _now()
    container.unpause()
    _wait(container, lambda a: not a["State"].get("Paused", False), timeout_s, "unpaused")
    return _record(profile, "unpause", container, requested)


def compose_network(profile: Profile, network: str, node: str | None = None) -> Any:
    """`internal`, or `edge`: the network that carries the node's own published port."""
    if network == "edge":
        network = f"edge-{node or profile.data_nodes[0].service}"
    found = docker_client().networks.list(
        filters={"label": [f"{PROJECT_LABEL}={profile.project}", f"{NETWORK_LABEL}={network}"]}
    )
    if not found:
        raise BadInput(f"network: '{network}' is not a network of {profile.project}; use edge or internal")
    return found[0]


def _attached(network_name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda attrs: network_name in (attrs["NetworkSettings"].get("Networks") or {})


def disconnect(
    profile: Profile, network: str = "edge", *, node: str | None = None, timeout_s: float = 10.0
) -> FaultRecord:
    container = service_container(profile, node)
    _require_running(container)
    net = compose_network(profile, network, node)
    if not _attached(net.name)(container.attrs):
        raise BadInput(
            f"{container.name}: is not on {net.name} (disconnected already); "
            f"`redis-harness fault {profile_argument(profile.name, profile.source)} reconnect"
            + (f" --network {network}" if network != "edge" else "")
            + (f" --node {node}" if node else "")
            + "` puts it back"
        )
    requested = _now()
    net.disconnect(container)
    _wait(container, lambda a: not _attached(net.name)(a), timeout_s, f"off {net.name}")
    return _record(profile, "disconnect", container, requested, network=net.name)


def reconnect(
    profile: Profile, network: str = "edge", *, node: str | None = None, timeout_s: float = 10.0
) -> FaultRecord:
    container = service_container(profile, node)
    net = compose_network(profile, network, node)
    requested = _now()
    if not _attached(net.name)(container.attrs):
        # The aliases Compose gives: other containers keep finding it as `redis`.
        net.connect(container, aliases=[container.labels.get(SERVICE_LABEL, REDIS_SERVICE), container.name])
    _wait(container, _attached(net.name), timeout_s, f"on {net.name}")
    return _record(profile, "reconnect", container, requested, network=net.name)


FAULTS: dict[str, Callable[..., FaultRecord]] = {
    "kill": kill,
    "stop": stop,
    "start": start,
    "restart": restart,
    "pause": pause,
    "unpause": unpause,
    "disconnect": disconnect,
    "reconnect": reconnect,
}
# Faults that stay until undone, and what undoes them.
UNDO: dict[str, Callable[..., FaultRecord]] = {"pause": unpause, "disconnect": reconnect, "stop": start}


@contextmanager
def injected(profile: Profile, kind: str, **options: Any) -> Iterator[FaultRecord]:
    """The fault in place for the body of a `with`, undone on the way out (also on errors)."""
    if kind not in UNDO:
        raise BadInput(f"fault: '{kind}' cannot be held and undone; use one of {', '.join(UNDO)}")
    record = FAULTS[kind](profile, **options)
    try:
        yield record
    finally:
        UNDO[kind](profile, **options)
        record.mark_reverted()
