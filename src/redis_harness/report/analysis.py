"""A load run's figures and verdict: report.json for machines, report.html for people, JUnit XML for CI.

Built only from the run folder (run.json, raw.json, post.json), so
`redis-harness report DIR` re-renders it at any time with the same verdict.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from redis_harness.errors import BadInput
from redis_harness.load.generator import saturated
from redis_harness.load.recorder import Recorder, error_windows, split_part
from redis_harness.load.run import POST_FILE, RAW_FILE, RUN_FILE
from redis_harness.load.sampler import with_rates
from redis_harness.profile.model import Alerts
from redis_harness.report.charts import png
from redis_harness.report.gates import Gate, evaluate, unjudgeable, verdict
from redis_harness.report.html import to_html
from redis_harness.report.junit import junit
from redis_harness.report.kill_window import failover_window, kill_window
from redis_harness.report.timeline import timeline

P99_RECOVERY_TOLERANCE = 1.20  # "back within 20 % of its pre-fault value"


def split_parts(
    commands: dict[str, dict[str, Any]],
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, dict[str, Any]]]]:
    """(requests, parts per library call): the parts are not requests of their own, so they
    stay out of counts, error ratios and gates."""
    requests: dict[str, dict[str, Any]] = {}
    parts: dict[str, dict[str, dict[str, Any]]] = {}
    for name, summary in commands.items():
        call, part = split_part(name)
        if part is not None:
            parts.setdefault(call, {})[part] = summary
        else:
            requests[name] = summary
    return requests, {call: {"total": requests[call], **p} for call, p in parts.items() if call in requests}


def json_file(path: Path, command: str) -> Any:
    """A run folder's JSON file; BadInput naming the command and the file when it is damaged."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(
            f"{command}: {path} is not valid JSON ({exc.__class__.__name__}); the run's data are damaged"
        ) from None


def read_run(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """run.json, raw.json and post.json of a run folder; BadInput naming the problem when one is unusable."""
    files = []
    for name in (RUN_FILE, RAW_FILE, POST_FILE):
        path = run_dir / name
        if not path.is_file():
            if name == POST_FILE:
                files.append({})  # the run was cut short before the post-run facts were read
                continue
            raise BadInput(f"report: {run_dir} has no {name}; give a folder made by `redis-harness load`")
        data = json_file(path, "report")
        if not isinstance(data, dict):
            raise BadInput(
                f"report: {path} holds a {type(data).__name__}, not a run's data; the run's data are damaged"
            )
        files.append(data)
    snapshot, raw, post = files
    missing = [k for k in ("scenario", "gates", "thresholds") if k not in snapshot] + [
        k for k in ("scenario", "profile_name", "started", "ended", "recorder", "settings") if k not in raw
    ]
    if missing:
        raise BadInput(f"report: {run_dir} lacks {', '.join(missing)}; the run's data are damaged or from another tool")
    return snapshot, raw, post


LOCUST_HISTORY = "locust_stats_history.csv"
LOCUST_FAILURES = "locust_failures.csv"
MAX_ERROR_TYPES = 20


def _csv_rows(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []  # Locust wrote none (a run cut short): the report goes without


def client_series(run_dir: Path) -> list[dict[str, float]]:
    """Client calls/s and errors/s per interval, from Locust's running totals (its per-second
    history, all requests together): differences of totals, not Locust's smoothed rates."""
    rows = []
    for row in _csv_rows(run_dir / LOCUST_HISTORY):
        if row.get("Name") != "Aggregated":
            continue
        try:
            rows.append((float(row["Timestamp"]), int(row["Total Request Count"]), int(row["Total Failure Count"])))
        except (KeyError, TypeError, ValueError):
            continue
    series = []
    for (t0, calls0, fails0), (t1, calls1, fails1) in zip(rows, rows[1:], strict=False):
        if t1 > t0:
            series.append(
                {
                    "t": t1,
                    "ops_per_s": max(0, calls1 - calls0) / (t1 - t0),
                    "errors_per_s": max(0, fails1 - fails0) / (t1 - t0),
                }
            )
    return series


def error_types(run_dir: Path) -> list[dict[str, Any]]:
    """Each kind of error the run met, with the request it failed and how often (Locust's failures)."""
    found = []
    for row in _csv_rows(run_dir / LOCUST_FAILURES):
        try:
            found.append({"request": row["Name"], "error": row["Error"], "count": int(row["Occurrences"])})
        except (KeyError, TypeError, ValueError):
            continue
    return sorted(found, key=lambda e: -e["count"])[:MAX_ERROR_TYPES]


# The server summary's figures that come from INFO.
INFO_FIGURES = ("evicted_keys", "expired_keys", "used_memory_max", "maxmemory", "evictions_per_s_max", "hit_ratio")


def _server_summary(series: list[dict[str, Any]], post: dict[str, Any]) -> dict[str, Any]:
    up = [row for row in series if row.get("up")]
    first, last = (up[0], up[-1]) if up else ({}, {})
    rated = with_rates(series)
    delta_hits = (last.get("keyspace_hits") or 0) - (first.get("keyspace_hits") or 0)
    delta_misses = (last.get("keyspace_misses") or 0) - (first.get("keyspace_misses") or 0)
    summary = {
        "series": rated,
        "evicted_keys": max(0, (last.get("evicted_keys") or 0) - (first.get("evicted_keys") or 0)),
        "expired_keys": max(0, (last.get("expired_keys") or 0) - (first.get("expired_keys") or 0)),
        # The server's -OOM count (one per refused command); runs sampled before it was kept have none.
        "oom_replies": (
            max(0, last["oom_replies"] - first["oom_replies"])
            if "oom_replies" in first and "oom_replies" in last
            else None
        ),
        "used_memory_max": max((r.get("used_memory") or 0 for r in up), default=0),
        "maxmemory": last.get("maxmemory") or 0,
        "container_memory_max": max((r.get("container_memory") or 0 for r in series), default=0),
        "container_memory_limit": next(
            (r["container_memory_limit"] for r in series if r.get("container_memory_limit")), None
        ),
        "evictions_per_s_max": max((r.get("evictions_per_s", 0) for r in rated), default=0),
        "hit_ratio": delta_hits / (delta_hits + delta_misses) if delta_hits + delta_misses > 0 else None,
        # None: not known (a target: the harness sees no container of it).
        "oom_killed": None if post.get("oom_killed", False) is None else bool(post.get("oom_killed")),
        "restart_count": post.get("restart_count", 0),
        "restarts_during_run": post.get("restarts_during_run", 0),
    }
    if up and not any("used_memory" in row for row in up):
        # No INFO was read (a target without admin credentials): not available, which is not zero.
        summary.update(dict.fromkeys(INFO_FIGURES))
    return summary


def _p99_recovery_s(latency_series: list[dict[str, Any]], fault_at: float, name: str | None) -> float | None:
    """Seconds from the fault until the p99 is back within 20 % of its pre-fault value."""
    if not name:
        return None
    before = [p[name]["p99_us"] for p in latency_series if p["t"] < fault_at and name in p]
    if not before:
        return None
    baseline = sorted(before)[len(before) // 2]
    for point in latency_series:
        if point["t"] > fault_at and name in point and point[name]["p99_us"] <= baseline * P99_RECOVERY_TOLERANCE:
            return round(point["t"] - fault_at, 2)
    return None


def _hit_ratio_recovery_s(series: list[dict[str, Any]], fault_at: float) -> float | None:
    before = [r["hit_ratio"] for r in series if r["t"] < fault_at and r.get("hit_ratio") is not None]
    if not before:
        return None
    baseline = sorted(before)[len(before) // 2]
    for row in series:
        if row["t"] > fault_at and row.get("hit_ratio") is not None and row["hit_ratio"] >= baseline * 0.95:
            return round(row["t"] - fault_at, 2)
    return None


def acked_loss(losses: list[dict[str, Any]], fault_at: float) -> dict[str, Any] | None:
    """The plain writers' lost acknowledged writes: how many, and when Redis acknowledged the first and
    the last of them, in s after the fault (negative: before it). None when none was lost."""
    plain = [loss for loss in losses if not loss["durable"]]
    if not plain:
        return None
    return {
        "count": sum(loss["count"] for loss in plain),
        "first_s": round(min(loss["first_acked_at"] for loss in plain) - fault_at, 2),
        "last_s": round(max(loss["last_acked_at"] for loss in plain) - fault_at, 2),
    }


def _faults(
    raw: dict[str, Any], recorder: Recorder, server_series: list[dict[str, Any]], commands: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    windows = error_windows(sorted(recorder.outcomes))
    busiest = max(commands, key=lambda n: commands[n]["count"], default=None)
    result = []
    for fault in raw.get("faults", []):
        at = fault["at"]
        after = [w for w in windows if w["to"] >= at - 1]
        result.append(
            {
                **fault,
                "error_window_s": after[0]["seconds"] if after else 0.0,
                "p99_recovery_s": _p99_recovery_s(raw.get("latency_series", []), fault.get("until", at), busiest),
                "hit_ratio_recovery_s": _hit_ratio_recovery_s(server_series, fault.get("until", at)),
                "acked_writes_lost": recorder.events.values.get("acked_writes_lost", 0),
                "acked_loss": acked_loss(recorder.losses, at),
                **{
                    key: recorder.events.values[key]
                    for key in ("durable_acked_writes", "durable_acked_writes_lost")
                    if key in recorder.events.values
                },
                **(
                    {"failover_window": failover_window(fault["record"]["requested_at"], steps, recorder.recoveries)}
                    if (steps := fault.get("sentinel_steps")) and "record" in fault
                    else {}
                ),
                # A kill's window split by owner (Docker, Redis, the client), from the run's own events.
                **({"kill_window": kill_window(fault["restart"], recorder.recoveries)} if "restart" in fault else {}),
            }
        )
    return result


def build(run_dir: Path) -> dict[str, Any]:
    """report.json, report.html, charts and gates.xml from the run folder alone (see load.run)."""
    snapshot, raw, post = read_run(run_dir)
    recorder = Recorder()
    recorder.merge(raw["recorder"])
    commands, library_calls = split_parts(recorder.commands())
    duration = max(1e-3, (raw["ended"] or 0) - (raw["started"] or raw["ended"] or 0))
    total_calls = sum(c["count"] for c in commands.values())
    server = _server_summary(raw.get("server_series", []), post)
    events = dict(recorder.events.values)
    generator = raw.get("generator") or {"processes": []}
    report: dict[str, Any] = {
        "scenario": raw["scenario"],
        "profile": raw["profile_name"],
        "started": raw["started"],
        "duration_s": round(duration, 2),
        "settings": raw["settings"],
        "throughput_ops_s": round(total_calls / duration, 1),
        "commands": commands,
        "library_calls": library_calls,
        "hit_ratio": {"client": recorder.hit_ratios(), "server": server["hit_ratio"]},
        "server": {**server, "oom_errors": events.get("oom_errors", 0)},
        "client": {"events": events, "error_windows": error_windows(sorted(recorder.outcomes))},
        "faults": _faults(raw, recorder, server["series"], commands),
        "marks": raw.get("marks", []),
        "latency_series": raw.get("latency_series", []),
        # The calls' own clocks when the run recorded them; Locust's master-side history (a worker's
        # calls counted when its report arrives, every 3 s: a sawtooth) only for older runs.
        "client_series": recorder.calls_series() or client_series(run_dir),
        "error_types": error_types(run_dir),
        "findings": raw.get("findings", {}),
        # Generator CPU per process, how late it woke paced calls (open loop), and the latency floor:
        # what limited the figures, what the generator added to them, and where they start.
        "generator": {
            **generator,
            "saturated": saturated(generator["processes"]),
            "late_start": recorder.late_starts(),
        },
        "calibration": raw.get("calibration"),
        "interrupted": bool(raw.get("interrupted")),
        **({"interrupted_by": raw["interrupted_by"]} if raw.get("interrupted_by") else {}),
    }
    if "persistent_written" in events:
        report["eviction"] = {
            key: events.get(key, 0)
            for key in ("persistent_written", "persistent_present", "volatile_written", "volatile_present")
        }
        report["eviction"]["oom_errors"] = events.get("oom_errors", 0)
    if "prometheus_alerts" in post:  # monitoring.enabled: what Prometheus's own rules said meanwhile
        report["prometheus_alerts"] = post["prometheus_alerts"]
    names = tuple(snapshot["gates"])
    not_judged = unjudgeable(names, info=snapshot.get("server_figures", True), container=not snapshot.get("target"))
    if snapshot.get("target"):
        report["target"] = snapshot["target"]
        report["server_figures"] = snapshot.get("server_figures", True)
    gates = evaluate(report, Alerts(**snapshot["thresholds"]), names, not_judged)
    report["gates"] = [g.as_dict() for g in gates]
    report["passed"] = verdict(gates)
    write(run_dir, report, gates)
    return report


def write(run_dir: Path, report: dict[str, Any], gates: list[Gate]) -> None:
    (run_dir / "report.json").write_text(json.dumps(report, indent=2, default=str))
    (run_dir / "gates.xml").write_text(junit(report, gates))
    (run_dir / "charts.png").write_bytes(png(timeline(report)))
    (run_dir / "report.html").write_text(to_html(report, has_locust_html=(run_dir / "locust.html").is_file()))
