"""The deployment's figures and alerts as one compact view (live and `--once`), or one JSON object (`--once --json`).

Laid out for 80 columns and 24 lines, at most 100 columns: firing alerts first
(one line each), the ok ones on one line, a row per data node, then the
deployment's figures a line each, the slowest commands last (the part a short
terminal crops first).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from redis_harness.monitor.alerts import AlertState
from redis_harness.profile.units import format_size


def as_json(figures: dict[str, Any], states: list[AlertState]) -> dict[str, Any]:
    """The object `monitor --once --json` prints: the figures plus each alert's state."""
    return {**figures, "alerts": [s.as_json() for s in states]}


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _pct_number(value: float | None) -> str:
    """A share as a number for a column headed "%"."""
    return "–" if value is None else f"{value * 100:.1f}"


def _num(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _size(value: int | None) -> str:
    return "–" if value is None else format_size(value)


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def _per_s(value: float | None) -> str:
    return "–" if value is None else f"{value:,.{0 if value >= 100 else 1}f}/s"


def _nodes(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} node(s)"


# How each alert's value and threshold read, with their unit.
ALERT_FORMAT: dict[str, Callable[[float | None], str]] = {
    "miss_ratio": _pct,
    "memory": _pct,
    "slow_updates": _seconds,
    "evictions": _per_s,
    "keys_without_ttl": _pct,
    "down": _nodes,
    "cert_expiry": lambda v: "–" if v is None else f"{v:.1f} d",
}


def _line(*parts: str | tuple[str, str]) -> Text:
    """One line that never wraps: what does not fit the width ends in "…" (a meaning, a command)."""
    return Text.assemble(*parts, no_wrap=True, overflow="ellipsis")


def alerts_view(states: list[AlertState], firing_for: dict[str, float | None]) -> Group:
    """A line per firing alert (value > threshold, for how long, what it means), then the ok ones in one line."""
    lines = []
    firing = [s for s in states if s.firing]
    values = {}
    for state in firing:
        shown = ALERT_FORMAT.get(state.name, lambda v: "–" if v is None else f"{v:.4g}")
        since = firing_for.get(state.name)
        values[state.name] = f"{shown(state.value)} {state.comparison} {shown(state.threshold)}" + (
            "" if since is None else f" for {since:.0f} s"
        )
    name_width = max((len(s.name) for s in firing), default=0)
    value_width = max((len(v) for v in values.values()), default=0)
    for state in firing:
        lines.append(
            _line(
                ("FIRING", "bold red"),
                f"  {state.name:<{name_width}}  {values[state.name]:<{value_width}}  ",
                (state.meaning, "dim"),
            )
        )
    ok = [s.name for s in states if not s.firing and s.available]
    if ok:
        lines.append(Text.assemble(("ok", "green"), " " * (len("FIRING") - len("ok") + 2), ", ".join(ok)))
    unknown = [s.name for s in states if not s.available]
    if unknown:
        lines.append(Text.assemble(("n/a", "yellow"), "     ", ", ".join(unknown), ("  (not available)", "dim")))
    return Group(*lines)


def _role(node: dict[str, Any]) -> Text:
    if not node["up"]:
        return Text("DOWN", style="bold red")
    role = {"master": "primary", "slave": "replica"}.get(node["role"] or "", node["role"] or "?")
    link = (node.get("replication") or {}).get("link")
    if link not in (None, "up"):
        return Text(f"{role}, link {link}", style="bold red")
    return Text(role)


NODE_COLUMNS = ("node", "role", "ops/s", "miss %", "used", "% max", "evict/s", "exp/s", "clients")


def nodes_table(figures: dict[str, Any]) -> Table:
    """A row per data node; short headers carry the units, so the rows fit 80 columns unshortened."""
    table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold")
    for column in NODE_COLUMNS:
        table.add_column(column, justify="left" if column in ("node", "role") else "right", no_wrap=column != "role")
    for node in figures["nodes"]:
        if not node["up"]:
            table.add_row(node["service"], _role(node), *[""] * (len(NODE_COLUMNS) - 2))
            continue
        table.add_row(
            node["service"],
            _role(node),
            _num(node["ops_per_s"]),
            _pct_number(node["miss_ratio"]),
            _size(node["used_memory"]),
            _pct_number(node["memory_ratio"]),
            _num(node["evictions_per_s"], 1),
            _num(node["expirations_per_s"], 1),
            _num(node["connected_clients"]),
        )
    return table


def _clients(figures: dict[str, Any]) -> str:
    users = [
        f"{user} {counts['connected']}" + (f" ({counts['blocked']} blocked)" if counts["blocked"] else "")
        for user, counts in figures["clients"].items()
    ]
    return ", ".join(users) or "none"


def _replication(figures: dict[str, Any]) -> str | None:
    parts = []
    for node in figures["nodes"]:
        replication = node.get("replication") or {}
        if "lag_bytes" in replication:
            lags = ", ".join(
                f"{addr} {lag} B / {replication['lag_s'][addr]} s" for addr, lag in replication["lag_bytes"].items()
            )
            parts.append(f"lag behind {node['service']}: {lags}")
    return "; ".join(parts) or None


def _cluster(figures: dict[str, Any]) -> str | None:
    states = [n["cluster"] for n in figures["nodes"] if n.get("cluster")]
    if not states:
        return None
    ok = sum(1 for s in states if s["state"] == "ok")
    slots = min(int(s["slots_ok"] or 0) for s in states)
    return f"state ok on {ok} of {len(figures['nodes'])} nodes, {slots:,} slots ok"


def _certs(figures: dict[str, Any]) -> str | None:
    expiry = figures.get("cert_expiry")
    if not expiry:
        return None
    return (
        f"soonest served certificate expires in {expiry['days']:.1f} d ({expiry['node']}, "
        f"{expiry['not_after'][:10]}, serial {expiry['serial']})"
    )


def deployment_lines(figures: dict[str, Any]) -> Table:
    """The deployment's figures, one labelled line each (a long one wraps under its value)."""
    grid = Table.grid(padding=(0, 2, 0, 0))
    grid.add_column(no_wrap=True, style="bold")
    grid.add_column(overflow="fold", ratio=1)
    memory = figures["memory"]
    grid.add_row(
        "traffic",
        f"{_num(figures['ops_per_s'])} ops/s, hit {_pct(figures['hit_ratio'])}, miss {_pct(figures['miss_ratio'])}, "
        f"evicted {_per_s(figures['evictions_per_s'])}, expired {_per_s(figures['expirations_per_s'])}",
    )
    grid.add_row(
        "memory",
        f"{_size(memory['used'])} of maxmemory {_size(memory['maxmemory'])} ({_pct(memory['ratio'])}) on "
        f"{memory['node'] or '–'}"
        + (
            ""
            if not figures.get("container_figures", True)
            else f"; container {_size(memory['container_used'])} of {_size(memory['limit'])}"
        ),
    )
    keys = f"policy {figures['policy']}"
    if figures.get("keys") == 0:
        keys = "none; " + keys
    elif figures["ttl_sampled_keys"] is not None:
        keys = (
            f"{_num(figures.get('keys'))}, {_pct(figures['keys_without_ttl_ratio'])} without TTL (about "
            f"{_pct(figures['memory_without_ttl_ratio'])} of memory, {figures['ttl_sampled_keys']} sampled); " + keys
        )
    grid.add_row("keys", keys)
    denied = figures.get("not_available") or ()
    clients = "not available" if "client list" in denied else _clients(figures)
    grid.add_row("clients", f"{clients}; {_num(figures['rejected_connections'])} rejected since start")
    for label, line in (
        ("replicas", _replication(figures)),
        ("cluster", _cluster(figures)),
        ("certs", _certs(figures)),
    ):
        if line:
            grid.add_row(label, line)
    for node in figures["nodes"]:
        if not node["up"]:
            grid.add_row(Text("down", style="bold red"), f"{node['service']}: {node['error']}")
    if figures.get("not_available"):
        grid.add_row(
            Text("n/a", style="yellow"),
            f"not available to this user: {', '.join(figures['not_available']).upper()} "
            "(a – above is not available, not zero; give the admin's password)",
        )
    return grid


def slowest_lines(figures: dict[str, Any]) -> Group:
    """The slowest commands in SLOWLOG and the latency monitor's events, one line each."""
    rows = [
        (_seconds(e["duration_s"]), e["node"] + (", update" if e["update"] else ""), e["command"])
        for e in figures["slowest"]
    ]
    rows += [
        (f"{event['max_ms']} ms", node["service"], f"LATENCY {event['event']} (max)")
        for node in figures["nodes"]
        if node["up"]
        for event in node["latency"]
    ]
    if not rows:
        empty = "SLOWLOG not available" if "slowlog" in (figures.get("not_available") or ()) else "nothing in SLOWLOG"
        return Group(_line(("slowest", "bold"), f"  {empty}"))
    took = max(len(r[0]) for r in rows)
    where = max(len(r[1]) for r in rows)
    labels = ["slowest"] + [""] * (len(rows) - 1)
    return Group(
        *(
            _line((f"{label:<7}", "bold"), f"  {t:>{took}}  {w:<{where}}  {command}")
            for label, (t, w, command) in zip(labels, rows, strict=True)
        )
    )


def render(title: str, figures: dict[str, Any], states: list[AlertState], firing_for: dict[str, float | None]) -> Group:
    """Everything the view shows for one refresh, most urgent first."""
    return Group(
        Text(title, style="bold"),
        alerts_view(states, firing_for),
        Text(""),
        nodes_table(figures),
        Text(""),
        deployment_lines(figures),
        slowest_lines(figures),
    )
