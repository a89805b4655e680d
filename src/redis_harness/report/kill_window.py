"""A fault's window, fault -> first acknowledged write, split into its parts: a SIGKILL's by owner (see
faults.restart), a Sentinel failover's by step (see faults.sentinel_steps).

Pure functions of what the fault recorded (Docker's events, Redis's and the Sentinels' logs) and the
writers' own recoveries (load.recorder), so a report rebuilt from a run folder gives the same parts.
"""

from __future__ import annotations

from typing import Any

# (key, label, owner): in the order they happen; the labels fit the text summary's lines.
PARTS = (
    ("dead_s", "process seen dead (die event)", "Docker"),
    ("docker_restart_s", "restart policy (100 ms delay) + container start", "Docker"),
    ("redis_start_s", "Redis start + AOF load", "Redis"),
    ("network_s", "published port reachable after Redis ready", "Docker"),
    ("client_s", "reconnect: port open -> first acked write", "client"),
)


def _span(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(b - a, 3)


def kill_window(restart: dict[str, Any], recoveries: list[dict[str, float]]) -> dict[str, Any]:
    """Seconds of each part, their total (kill -> first acknowledged write) and the figures behind them.

    The writers' recoveries that count are those acknowledged after the kill whose failures began by
    the time Redis was ready again (a later hiccup is not this fault's)."""
    killed = restart["killed_at"]
    starting = restart.get("redis_starting_at") or restart.get("started_at")
    ready = restart.get("redis_ready_at")
    port = restart.get("port_open_at")
    # Redis listens before it loads, so the port may open first; the client can write once both are true.
    reachable = max(ready, port) if ready is not None and port is not None else ready
    cutoff = ready if ready is not None else float("inf")
    ours = [r for r in recoveries if r["acked_at"] > killed and r["failed_since"] <= cutoff]
    first_ack = min((r["acked_at"] for r in ours), default=None)
    if reachable is not None and first_ack is not None and first_ack < reachable:
        reachable = max(ready or first_ack, first_ack)  # a writer got through before the probe's next try
    return {
        "dead_s": _span(killed, restart.get("died_at")),
        "docker_restart_s": _span(restart.get("died_at"), starting),
        "redis_start_s": _span(starting, ready),
        "aof_load_s": restart.get("aof_load_s"),
        "network_s": _span(ready, reachable) if port is not None else None,
        "client_s": _span(reachable, first_ack),
        "kill_to_first_ack_s": _span(killed, first_ack),
        "failed_attempts": sum(int(r["failed_attempts"]) for r in ours),
        "longest_failed_attempt_s": max((r["longest_failed_attempt_s"] for r in ours), default=None),
        "health_checks": restart.get("health_checks", 0),
        "healthy_after_s": _span(killed, restart.get("healthy_at")),
    }


def _s(x: float | None) -> str:
    return "?" if x is None else f"{x:.2f} s"


def window_lines(window: dict[str, Any]) -> list[str]:
    """The text summary's lines under the fault: the total, each part with its owner, the healthcheck."""
    total, healthy = window["kill_to_first_ack_s"], window["healthy_after_s"]
    lines = [f"kill -> first acknowledged write {_s(total)}:"]
    for key, label, owner in PARTS:
        extra = ""
        if key == "redis_start_s" and window.get("aof_load_s") is not None:
            extra = f" (AOF load {window['aof_load_s'] * 1000:.0f} ms by its own count)"
        elif key == "client_s":
            longest = window.get("longest_failed_attempt_s")
            extra = f", {window['failed_attempts']:,} failed writes" + (
                f", longest {longest:.2f} s" if longest is not None else ""
            )
        lines.append(f"  {_s(window[key]):>8}  {owner:<6}  {label}{extra}")
    waited = total is not None and healthy is not None and healthy > total
    lines.append(
        f"  healthcheck: {window['health_checks']} run(s) until Redis was ready, healthy after {_s(healthy)}"
        + (": not waited for" if waited else "")
    )
    return lines


# (key, label): a Sentinel failover's steps in the order they happen (faults.sentinel_steps).
FAILOVER_PARTS = (
    ("detection_s", "detection: down_after, then a quorum (+odown)"),
    ("election_s", "election of a leader Sentinel"),
    ("promotion_s", "promotion, as the leader's next INFO shows it"),
    ("switch_s", "first Sentinel to give clients the new address"),
    ("client_s", "client: that address -> first acknowledged write"),
)


def failover_window(fault_at: float, steps: dict[str, Any], recoveries: list[dict[str, float]]) -> dict[str, Any]:
    """Seconds of each step from the fault (requested) to the writers' first acknowledged write after it."""
    first_ack = min((r["acked_at"] for r in recoveries if r["acked_at"] > fault_at), default=None)
    return {
        "detection_s": _span(fault_at, steps.get("odown_at")),
        "election_s": _span(steps.get("odown_at"), steps.get("elected_at")),
        "promotion_s": _span(steps.get("elected_at"), steps.get("promoted_at")),
        "switch_s": _span(steps.get("promoted_at"), steps.get("switched_at")),
        "client_s": _span(steps.get("switched_at"), first_ack),
        "fault_to_first_ack_s": _span(fault_at, first_ack),
        "sdown_after_s": _span(fault_at, steps.get("sdown_at")),
    }


def failover_window_lines(window: dict[str, Any]) -> list[str]:
    """The text summary's lines under a failover: the total and each step."""
    lines = [f"fault -> first acknowledged write {_s(window['fault_to_first_ack_s'])}:"]
    for key, label in FAILOVER_PARTS:
        extra = f" (first +sdown after {_s(window['sdown_after_s'])})" if key == "detection_s" else ""
        lines.append(f"  {_s(window[key]):>8}  {label}{extra}")
    return lines
