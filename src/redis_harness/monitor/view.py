"""The deployment's figures and alerts as rich tables (the live view) and as one JSON object (`--once --json`)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from redis_harness.monitor.alerts import AlertState
from redis_harness.profile.units import format_size

TTL_NOTE = (
    "keys without TTL: exact from INFO keyspace; their memory share estimated from {n} random keys "
    "(RANDOMKEY, TTL, MEMORY USAGE) per primary"
)


def as_json(figures: dict[str, Any], states: list[AlertState]) -> dict[str, Any]:
    """The object `monitor --once --json` prints: the figures plus each alert's state."""
    return {**figures, "alerts": [s.as_json() for s in states]}


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _num(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _size(value: int | None) -> str:
    return "–" if value is None else format_size(value)


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def _role(node: dict[str, Any]) -> str:
    role = {"master": "primary", "slave": "replica"}.get(node["role"] or "", node["role"] or "?")
    replication = node.get("replication") or {}
    if "link" in replication:
        return f"{role} of {replication['primary']} ({replication['link']})"
    if "cluster" in node:
        return f"{role}, cluster {node['cluster']['state']}"
    return role


def nodes_table(figures: dict[str, Any]) -> Table:
    table = Table(title="data nodes", title_justify="left", expand=False)
    columns = (
        "node",
        "role",
        "ops/s",
        "hit",
        "miss",
        "used",
        "maxmem",
        "limit",
        "evict/s",
        "exp/s",
        "clients",
        "blocked",
        "rejected",
    )
    for column in columns:
        table.add_column(column, justify="left" if column in ("node", "role") else "right", no_wrap=True)
    for node in figures["nodes"]:
        if not node["up"]:
            table.add_row(node["service"], Text(f"DOWN: {node['error']}", style="bold red"), *[""] * 11)
            continue
        table.add_row(
            node["service"],
            _role(node),
            _num(node["ops_per_s"]),
            _pct(node["hit_ratio"]),
            _pct(node["miss_ratio"]),
            f"{_size(node['used_memory'])} ({_pct(node['memory_ratio'])})",
            _size(node["maxmemory"]),
            _size(node["memory_limit"]),
            _num(node["evictions_per_s"], 1),
            _num(node["expirations_per_s"], 1),
            _num(node["connected_clients"]),
            _num(node["blocked_clients"]),
            _num(node["rejected_connections"]),
        )
    return table


def deployment_table(figures: dict[str, Any]) -> Table:
    table = Table(title="deployment", title_justify="left", show_header=False, expand=False)
    table.add_column("figure")
    table.add_column("value")
    memory = figures["memory"]
    table.add_row("ops/s", _num(figures["ops_per_s"]))
    table.add_row("hit / miss ratio (last interval)", f"{_pct(figures['hit_ratio'])} / {_pct(figures['miss_ratio'])}")
    table.add_row(
        "memory (fullest node)",
        f"{_size(memory['used'])} of maxmemory {_size(memory['maxmemory'])} ({_pct(memory['ratio'])}), "
        f"container {_size(memory['container_used'])} of {_size(memory['limit'])}",
    )
    table.add_row(
        "evictions/s, expirations/s", f"{_num(figures['evictions_per_s'], 1)}, {_num(figures['expirations_per_s'], 1)}"
    )
    table.add_row("rejected connections (total)", _num(figures["rejected_connections"]))
    table.add_row("policy", str(figures["policy"]))
    if figures["ttl_sampled_keys"] is not None:
        table.add_row(
            "without TTL: keys / memory (est.)",
            f"{_pct(figures['keys_without_ttl_ratio'])} / {_pct(figures['memory_without_ttl_ratio'])}",
        )
    if len(figures["nodes"]) > 1:
        table.add_row("primaries", ", ".join(figures["primaries"]) or "none")
        for node in figures["nodes"]:
            replication = node.get("replication") or {}
            if "lag_bytes" in replication:
                lags = ", ".join(
                    f"{addr} {lag} B / {replication['lag_s'][addr]} s" for addr, lag in replication["lag_bytes"].items()
                )
                table.add_row(f"replication lag from {node['service']}", lags)
    return table


def clients_table(figures: dict[str, Any]) -> Table:
    table = Table(title="clients per ACL user (CLIENT LIST)", title_justify="left", expand=False)
    table.add_column("user")
    table.add_column("connected", justify="right")
    table.add_column("blocked", justify="right")
    for user, counts in figures["clients"].items():
        table.add_row(user, str(counts["connected"]), str(counts["blocked"]))
    return table


def slow_table(figures: dict[str, Any]) -> Table:
    table = Table(title="slowest recent commands (SLOWLOG)", title_justify="left", expand=False)
    for column in ("node", "took", "command", "update"):
        table.add_column(column, justify="right" if column == "took" else "left")
    for entry in figures["slowest"]:
        table.add_row(entry["node"], _seconds(entry["duration_s"]), entry["command"], "yes" if entry["update"] else "")
    latency = [(n["service"], e) for n in figures["nodes"] if n["up"] for e in n["latency"]]
    for service, event in latency:
        table.add_row(
            service, f"{event['max_ms']} ms", f"LATENCY {event['event']} (latest {event['latest_ms']} ms)", ""
        )
    return table


def alerts_table(states: list[AlertState], firing_for: dict[str, float | None]) -> Table:
    table = Table(title="alerts (profile thresholds)", title_justify="left", expand=False)
    for column in ("alert", "state", "value", "threshold", "for", "meaning"):
        table.add_column(column, justify="right" if column in ("value", "threshold", "for") else "left")
    for state in states:
        since = firing_for.get(state.name)
        table.add_row(
            state.name,
            Text("FIRING", style="bold red") if state.firing else Text("ok", style="green"),
            "–" if state.value is None else f"{state.value:.4g}",
            f"{state.threshold:.4g}",
            "" if since is None else f"{since:.0f} s",
            state.meaning,
        )
    return table


def render(title: str, figures: dict[str, Any], states: list[AlertState], firing_for: dict[str, float | None]) -> Group:
    """Everything the live view shows for one refresh."""
    parts: list[Any] = [
        Text(title, style="bold"),
        alerts_table(states, firing_for),
        nodes_table(figures),
        deployment_table(figures),
        clients_table(figures),
        slow_table(figures),
    ]
    if figures["ttl_sampled_keys"] is not None:
        parts.append(Text(TTL_NOTE.format(n=figures["ttl_sampled_keys"]), style="dim"))
    return Group(*parts)
