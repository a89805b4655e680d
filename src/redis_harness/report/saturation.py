"""What the load generator's CPU and timing say about a run's figures, in the words every view uses.

A generator process busy (on a core, or waiting for one) more than BUSY_PERCENT
of the time queues its own calls: the latency it reports is then its own as
much as Redis's. report.json has the facts (`generator.processes`,
`generator.saturated`); the terminal summary, report.html's banner and the
note under a failed latency gate state them with these sentences.

In open loop, a generator that kept up still wakes each call a little after
its intended start (gevent's timer: about half a millisecond), and a stall
of its event loop or its process wakes calls later still; `generator.late_start`
has how late, and the latency from the intended start includes it.
"""

from __future__ import annotations

from typing import Any

from redis_harness.load.generator import BUSY_PERCENT, SATURATED_SHARE, process_label, saturated

CONSEQUENCE = "the latency figures are the generator's as much as Redis's"
ADVICE = "use fewer users per process, more --workers, or a --rate the generator can keep"
# Under a failed gate that judges latency, when the generator was saturated.
LATENCY_NOTE = f"the generator was saturated, so this figure is probably its own, not Redis's; {ADVICE}"


def _processes(report: dict[str, Any]) -> list[dict[str, Any]]:
    return (report.get("generator") or {}).get("processes") or []


def is_saturated(report: dict[str, Any]) -> bool:
    """The report's verdict on its generator (recomputed from the processes when an old report lacks it)."""
    generator = report.get("generator") or {}
    return bool(generator.get("saturated", saturated(_processes(report))))


def percent(value: float | None) -> str:
    """`60 %`: a generator figure rounded as every view shows it."""
    return "-" if value is None else f"{value:,.0f} %"


def _share(process: dict[str, Any]) -> float:
    return process.get("cpu_over_90_share") or 0.0


def _cpu(process: dict[str, Any]) -> str:
    return f"CPU p50 {percent(process.get('cpu_p50'))}, max {percent(process.get('cpu_max'))}"


def saturated_processes(report: dict[str, Any]) -> str | None:
    """`worker vm_1c22946a busy above 90 % for 93 % of the run (CPU p50 57 %, max 79 %); …`, busiest
    first; None when no process was saturated."""
    busy = sorted((p for p in _processes(report) if _share(p) > SATURATED_SHARE), key=_share, reverse=True)
    if not busy or not is_saturated(report):
        return None
    return "; ".join(
        f"{process_label(p.get('role', '?'))} busy above {BUSY_PERCENT:.0f} % for {_share(p) * 100:.0f} % "
        f"of the run ({_cpu(p)})"
        for p in busy
    )


def headroom(report: dict[str, Any]) -> str | None:
    """`worker vm_222eb38f (the busiest) busy above 90 % for 0 % of the run (CPU p50 40 %, max 45 %)`:
    a generator that kept up; None when it was saturated or not sampled."""
    processes = _processes(report)
    if not processes or is_saturated(report):
        return None
    busiest = max(processes, key=lambda p: (_share(p), p.get("cpu_p50") or 0.0))
    return (
        f"{process_label(busiest.get('role', '?'))}{' (the busiest)' if len(processes) > 1 else ''} busy above "
        f"{BUSY_PERCENT:.0f} % for {_share(busiest) * 100:.0f} % of the run ({_cpu(busiest)})"
    )


TIMING_CONSEQUENCE = "the latency from intended start includes this"


def _duration(us: float) -> str:
    """437 µs, 2.7 ms, 41 ms, 2,656 ms, 41 s."""
    if us < 1000:
        return f"{us:,.0f} µs"
    if us >= 10_000_000:
        return f"{us / 1e6:,.0f} s"
    ms = us / 1000
    return f"{ms:,.1f} ms" if ms < 10 else f"{ms:,.0f} ms"


def late_start(report: dict[str, Any]) -> str | None:
    """`paced calls woke p50 437 µs, p99 2.7 ms, max 41 ms after their intended start`: what the generator
    itself added to the latency from the intended start. None in closed loop, and when the generator was
    saturated (its calls then queue without waiting for a slot, and the saturated statement says so)."""
    late = (report.get("generator") or {}).get("late_start")
    if not late or not late.get("count") or is_saturated(report):
        return None
    return (
        f"paced calls woke p50 {_duration(late['p50_us'])}, p99 {_duration(late['p99_us'])}, "
        f"max {_duration(late['max_us'])} after their intended start"
    )
