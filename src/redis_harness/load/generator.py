"""How busy the load generator itself was: each Locust process samples its own CPU.

A generator process near 100 % of a core queues its own calls, and the
latency it reports is then its own, not Redis's. Every process (local,
master, each worker) samples `psutil.Process().cpu_percent()` about once a
second; the figures go into raw.json and report.json as `generator`, and the
`generator_headroom` gate fails when any process spent more than
SATURATED_SHARE of the run above BUSY_PERCENT.
"""

from __future__ import annotations

from typing import Any

import psutil

BUSY_PERCENT = 90.0  # of one core: gevent runs a Locust process on one core
SATURATED_SHARE = 0.10  # of the samples


class CpuSampler:
    """This process's CPU in % of one core since the previous sample (psutil)."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._process.cpu_percent(None)  # the first call only sets the starting point

    def sample(self) -> float:
        return round(self._process.cpu_percent(None), 1)


def summarize(role: str, samples: list[float]) -> dict[str, Any]:
    """One generator process: {role, cpu_p50, cpu_max, cpu_over_90_share, samples}."""
    ordered = sorted(samples)
    busy = sum(1 for value in ordered if value > BUSY_PERCENT)
    return {
        "role": role,
        "cpu_p50": ordered[len(ordered) // 2] if ordered else None,
        "cpu_max": ordered[-1] if ordered else None,
        "cpu_over_90_share": round(busy / len(ordered), 3) if ordered else None,
        "samples": len(ordered),
    }


def saturated(processes: list[dict[str, Any]]) -> bool:
    """True when any process was above BUSY_PERCENT for more than SATURATED_SHARE of its samples."""
    return any((p.get("cpu_over_90_share") or 0) > SATURATED_SHARE for p in processes)
