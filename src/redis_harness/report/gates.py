"""Service-level gates: the alert thresholds a run started with, applied to its report.

Pure functions of report.json and the thresholds, so every gate can be shown
failing on a made-up report as well as on a real run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from redis_harness.load.generator import BUSY_PERCENT, SATURATED_SHARE, process_label
from redis_harness.profile.model import Alerts

# Request names start with the Redis command, or with the client library's call (`cache.<method>`);
# these are updates ("updates slower than 100 ms").
UPDATE_COMMANDS = {"SET", "HSET", "DEL", "UNLINK", "INCR", "EXPIRE", "RPUSH", "ZADD", "MSET", "PIPELINE", "EVALSHA"}
UPDATE_CALLS = {"cache.on_price", "cache.write_quotes", "cache.bulk_refresh", "cache.invalidate", "cache.record_trade"}
# Redis evicts as commands arrive, so used_memory may briefly exceed maxmemory;
# more than 10 % over means eviction is not keeping up.
MAXMEMORY_SLACK = 1.10


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    value: float | None
    threshold: float | None
    detail: str
    # False: the run lacked the figures to judge it (a target without admin credentials has no INFO,
    # and no container the harness can see); such a gate neither passes nor fails the run.
    judged: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _error_rate(report: dict, alerts: Alerts) -> Gate:
    total = sum(c["count"] for c in report["commands"].values())
    errors = sum(c["errors"] for c in report["commands"].values())
    ratio = errors / total if total else 1.0
    limit = alerts.error_ratio
    # A request that never once succeeded is a workload that did not run (a wrong password, a
    # denied command): its few slow failures must not hide in the other workloads' volume.
    dead = sorted(n for n, c in report["commands"].items() if c["count"] and c["errors"] == c["count"])
    detail = f"{errors:,} of {total:,} commands failed" + (f"; every call failed: {', '.join(dead)}" if dead else "")
    return Gate("error_rate", total > 0 and ratio <= limit and not dead, ratio, limit, detail)


def _error_rate_except_oom(report: dict, alerts: Alerts) -> Gate:
    """Errors other than the -OOM refusals a scenario provokes on purpose, as a share in [0, 1].

    The -OOM count is the client's (one per refused call); the server's own count (INFO errorstats, one
    per refused command: a pipeline's or a transaction's every write) can be larger, and no -OOM count may
    take the ratio below zero or past one. When a bound applies, the detail says which counts disagreed.
    """
    total = sum(c["count"] for c in report["commands"].values())
    failed = sum(c["errors"] for c in report["commands"].values())
    oom = report["server"]["oom_errors"]
    server_oom = report["server"].get("oom_replies")
    errors = failed - oom
    ratio = min(1.0, max(0.0, errors / total)) if total else 1.0
    limit = alerts.error_ratio
    server = f" ({server_oom:,} by the server's count)" if server_oom is not None and server_oom != oom else ""
    detail = f"{max(0, errors):,} of {total:,} commands failed, besides {oom:,} refused with -OOM{server}"
    if total and errors < 0:
        detail += f"; bounded at 0 %: -OOM refusals counted {oom:,}, more than the client's {failed:,} failed calls"
    elif total and errors > total:
        detail += f"; bounded at 100 %: {errors:,} errors besides -OOM, more than the {total:,} calls"
    return Gate("error_rate_except_oom", total > 0 and ratio <= limit, ratio, limit, detail)


def _oom_refusals_seen(report: dict, alerts: Alerts) -> Gate:
    oom = report["server"]["oom_errors"]
    return Gate("oom_refusals_seen", oom > 0, float(oom), 1.0, "writes refused with -OOM once no volatile key was left")


def is_update(name: str) -> bool:
    first = name.split()[0]
    return first.upper() in UPDATE_COMMANDS or first in UPDATE_CALLS


def _slow_updates(report: dict, alerts: Alerts) -> Gate:
    updates = {n: c for n, c in report["commands"].items() if is_update(n)}
    worst = max((c["p99_us"] for c in updates.values()), default=0) / 1e6
    limit = alerts.slow_update_s
    name = max(updates, key=lambda n: updates[n]["p99_us"], default="none")
    return Gate("slow_updates", worst <= limit, worst, limit, f"slowest update p99: {name}")


def _miss_ratio(report: dict, alerts: Alerts) -> Gate:
    hit = report["hit_ratio"]["client"].get("all")
    limit = alerts.miss_ratio
    if hit is None:
        return Gate("miss_ratio", False, None, limit, "no cache reads were made")
    return Gate("miss_ratio", 1 - hit <= limit, 1 - hit, limit, "client-side misses / cache reads")


def _memory(report: dict, alerts: Alerts) -> Gate:
    server = report["server"]
    ratio = server["used_memory_max"] / server["maxmemory"] if server["maxmemory"] else None
    limit = alerts.memory_ratio
    passed = ratio is not None and ratio <= limit
    if ratio is None:  # maxmemory 0: no limit; memory grows until the host kills Redis
        return Gate("memory", False, None, limit, "maxmemory is 0 (no limit): nothing to judge used memory against")
    return Gate("memory", passed, ratio, limit, "peak used_memory / maxmemory")


def _eviction_rate(report: dict, alerts: Alerts) -> Gate:
    peak = report["server"]["evictions_per_s_max"]
    limit = alerts.evictions_per_s
    return Gate("eviction_rate", peak <= limit, peak, limit, "peak evictions per second")


def _no_oom_kill(report: dict, alerts: Alerts) -> Gate:
    killed = bool(report["server"]["oom_killed"])
    return Gate("no_oom_kill", not killed, float(killed), 0.0, "container OOM-killed by the kernel")


def _maxmemory_respected(report: dict, alerts: Alerts) -> Gate:
    server = report["server"]
    ratio = server["used_memory_max"] / server["maxmemory"] if server["maxmemory"] else None
    return Gate(
        "maxmemory_respected",
        ratio is not None and ratio <= MAXMEMORY_SLACK,
        ratio,
        MAXMEMORY_SLACK,
        "peak used_memory / maxmemory while writing past it",
    )


def _persistent_keys_survive(report: dict, alerts: Alerts) -> Gate:
    eviction = report.get("eviction") or {}
    written, present = eviction.get("persistent_written", 0), eviction.get("persistent_present", 0)
    return Gate(
        "persistent_keys_survive",
        written > 0 and present == written,
        float(written - present),
        0.0,
        f"{present:,} of {written:,} keys without TTL still present after eviction",
    )


def _evictions_seen(report: dict, alerts: Alerts) -> Gate:
    evicted = report["server"]["evicted_keys"]
    return Gate("evictions_seen", evicted > 0, float(evicted), 1.0, "keys evicted during the run")


def _recovery_window(report: dict, alerts: Alerts) -> Gate:
    windows = [f["error_window_s"] for f in report["faults"] if f.get("error_window_s") is not None]
    limit = alerts.recovery_s
    if not report["faults"]:
        reason = report.get("findings", {}).get("fault_error", "no fault was injected")
        return Gate("recovery_window", False, None, limit, reason)
    worst = max(windows, default=0.0)
    return Gate("recovery_window", worst <= limit, worst, limit, "longest error window after a fault (s)")


def _acked_writes_kept(report: dict, alerts: Alerts) -> Gate:
    """No acknowledged write lost, except what the profile's AOF policy lets a kill lose: with everysec,
    writes acknowledged at most 2 s before the kill (Redis postpones its AOF write while a background
    fsync is slow). The value counts the lost writes outside that allowance."""
    lost = report["client"]["events"].get("acked_writes_lost", 0)
    acked = report["client"]["events"].get("acked_writes", 0)
    detail = f"{lost:,} of {acked:,} acknowledged writes lost"
    outside = lost
    faults = report["faults"]
    # One kill: every lost write must have been acknowledged in its window, before it, by the killed server.
    if lost and len(faults) == 1 and faults[0].get("kill_loss_window_s") and faults[0].get("acked_loss"):
        window, loss = faults[0]["kill_loss_window_s"], faults[0]["acked_loss"]
        within = -window <= loss["first_s"] and loss["last_s"] <= 0
        outside = 0 if within else lost
        detail += f", {'all' if within else 'not all'} acknowledged within the {window:g} s before the kill"
        detail += " that appendfsync everysec allows"
    return Gate("acked_writes_kept", acked > 0 and outside == 0, float(outside), 0.0, detail)


def _acked_loss_bounded(report: dict, alerts: Alerts) -> Gate:
    """A failover loses acknowledged writes only within the bound the profile implies (how long a primary
    cut off from its replicas goes on acknowledging), and never a durable one (confirmed by a replica).
    The value: how long after the fault the last lost write was acknowledged."""
    events = report["client"]["events"]
    faults = report["faults"]
    if not faults:
        return Gate("acked_loss_bounded", False, None, None, report.get("findings", {}).get("fault_error", "no fault"))
    lost, durable_lost = events.get("acked_writes_lost", 0), events.get("durable_acked_writes_lost", 0)
    lasts = [f["acked_loss"]["last_s"] for f in faults if f.get("acked_loss")]
    last = max(lasts, default=None)
    bound = max((f["loss_bound_s"] for f in faults if f.get("loss_bound_s") is not None), default=None)
    if bound is None:
        within = lost == 0
        said = "no bound (min_replicas_to_write 0: a cut-off primary acknowledges until it rejoins)"
    else:
        within = last is None or last <= bound
        said = f"bound {bound:g} s"
    when = f", the last acknowledged {last:g} s after the fault" if last is not None else ""
    durable = ""
    if "durable_acked_writes" in events:
        durable = f"; durable writes lost: {durable_lost:,} of {events['durable_acked_writes']:,}"
    detail = f"{lost:,} of {events.get('acked_writes', 0):,} acknowledged writes lost{when}; {said}{durable}"
    unverified = events.get("acked_writes_unverified", 0) + events.get("durable_acked_writes_unverified", 0)
    if unverified:
        detail += f"; {unverified:,} could not be read back"
    passed = within and durable_lost == 0 and not unverified and events.get("acked_writes", 0) > 0
    return Gate("acked_loss_bounded", passed, last if last is not None else 0.0, bound, detail)


def _new_primary_elected(report: dict, alerts: Alerts) -> Gate:
    faults = report["faults"]
    elected = [f for f in faults if f.get("new_primary")]
    seconds = max((f["new_primary_s"] for f in elected), default=None)
    limit = alerts.recovery_s
    passed = bool(elected) and len(elected) == len(faults) and seconds is not None and seconds <= limit
    if not faults:
        detail = report.get("findings", {}).get("fault_error", "no fault was injected")
    elif not elected:
        detail = f"no new primary was elected after the kill{'s' if len(faults) > 1 else ''}"
    else:
        # The value is the slowest election; each fault that elected one is named.
        replaced = ", ".join(f"{f['new_primary']} replaced {f['old_primary']}" for f in elected)
        missed = len(faults) - len(elected)
        detail = f"time from the kill until {replaced}" + (
            f"; {missed} of {len(faults)} kills elected no new primary" if missed else ""
        )
    return Gate("new_primary_elected", passed, seconds, limit, detail)


def _generator_headroom(report: dict, alerts: Alerts) -> Gate:
    """Fails when a Locust process was busy (on a core or waiting for one) more than BUSY_PERCENT of the
    time for over SATURATED_SHARE of the run. What to do about it is the gate's look-at hint."""
    processes = report.get("generator", {}).get("processes", [])
    if not processes:
        return Gate("generator_headroom", False, None, SATURATED_SHARE, "the generator's CPU was not sampled")
    worst = max(processes, key=lambda p: (p.get("cpu_over_90_share") or 0, p.get("cpu_p50") or 0))
    share = worst.get("cpu_over_90_share") or 0.0
    label = process_label(worst["role"])
    if share > SATURATED_SHARE:
        detail = (
            f"{label} busy above {BUSY_PERCENT:.0f} % for {share * 100:.0f} % of the run: "
            "the latency figures are the generator's, not Redis's"
        )
    else:
        detail = f"busiest generator process: {label}, CPU p50 {worst['cpu_p50']} % / max {worst['cpu_max']} %"
    return Gate("generator_headroom", share <= SATURATED_SHARE, share, SATURATED_SHARE, detail)


GATES: dict[str, Callable[[dict, Alerts], Gate]] = {
    "error_rate": _error_rate,
    "error_rate_except_oom": _error_rate_except_oom,
    "oom_refusals_seen": _oom_refusals_seen,
    "slow_updates": _slow_updates,
    "miss_ratio": _miss_ratio,
    "memory": _memory,
    "eviction_rate": _eviction_rate,
    "no_oom_kill": _no_oom_kill,
    "maxmemory_respected": _maxmemory_respected,
    "persistent_keys_survive": _persistent_keys_survive,
    "evictions_seen": _evictions_seen,
    "recovery_window": _recovery_window,
    "acked_writes_kept": _acked_writes_kept,
    "acked_loss_bounded": _acked_loss_bounded,
    "new_primary_elected": _new_primary_elected,
    "generator_headroom": _generator_headroom,
}


# The gates that read the server's INFO (the admin's) or the container (the harness's own deployment).
NEEDS_INFO = frozenset({"memory", "eviction_rate", "maxmemory_respected", "evictions_seen"})
NEEDS_CONTAINER = frozenset({"no_oom_kill"})


def unjudgeable(names: tuple[str, ...], *, info: bool, container: bool) -> dict[str, str]:
    """Gate -> why it cannot be judged with the figures a run had."""
    why = {}
    for name in names:
        if name in NEEDS_INFO and not info:
            why[name] = "needs the server's INFO; give the target's admin password"
        elif name in NEEDS_CONTAINER and not container:
            why[name] = "needs the container, and the harness did not deploy this target"
    return why


def evaluate(
    report: dict, alerts: Alerts, names: tuple[str, ...], not_judged: dict[str, str] | None = None
) -> list[Gate]:
    """Each gate of `names`; those in `not_judged` (gate -> why) say so instead of passing or failing."""
    not_judged = not_judged or {}
    return [
        Gate(name, False, None, None, not_judged[name], judged=False)
        if name in not_judged
        else GATES[name](report, alerts)
        for name in names
    ]


def verdict(gates: list[Gate]) -> bool:
    """The run passed: every gate that could be judged passed (and at least one could)."""
    judged = [g for g in gates if g.judged]
    return bool(judged) and all(g.passed for g in judged)
