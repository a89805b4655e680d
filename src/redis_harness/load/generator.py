"""How busy the load generator itself was: each Locust process samples its own CPU.

A generator process near 100 % of a core queues its own calls, and the
latency it reports is then its own, not Redis's. Every process (local,
master, each worker) samples `psutil.Process().cpu_percent()` about once a
second; the figures go into raw.json and report.json as `generator`, and the
`generator_headroom` gate fails when any process spent more than
SATURATED_SHARE of the run above BUSY_PERCENT.

On a shared machine a process that wants a whole core may get only part of
one: it then waits in the kernel's run queue, shows 60 % CPU, and its calls
queue all the same. So the busy share counts CPU time plus run-queue wait
(Linux's /proc/self/schedstat) where the kernel reports it: the share of
the time the process was running or ready to run.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import psutil

BUSY_PERCENT = 90.0  # of one core: gevent runs a Locust process on one core
SATURATED_SHARE = 0.10  # of the samples


SCHEDSTAT = Path("/proc/thread-self/schedstat")
# A worker's role is "worker <Locust client id>", the id "<hostname>_<uuid4 hex>": 8 hex digits tell
# a run's workers apart (report.json keeps the whole id).
_CLIENT_ID_HEX = re.compile(r"_([0-9a-f]{8})[0-9a-f]{24}$")


def _run_queue_wait_ns() -> int | None:
    """Time this (main) thread spent ready to run but waiting for a core; None where Linux does not say."""
    try:
        return int(SCHEDSTAT.read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None


class CpuSampler:
    """This process's CPU in % of one core since the previous sample (psutil), and how busy it was."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._process.cpu_percent(None)  # the first call only sets the starting point
        self._wait_ns = _run_queue_wait_ns()
        self._at = time.monotonic()

    def sample(self) -> tuple[float, float]:
        """(cpu %, busy %): busy adds the run-queue wait to the CPU time, both in % of the elapsed time."""
        cpu = self._process.cpu_percent(None)
        now, wait_ns = time.monotonic(), _run_queue_wait_ns()
        waited = 0.0
        if wait_ns is not None and self._wait_ns is not None and now > self._at:
            waited = 100.0 * (wait_ns - self._wait_ns) / 1e9 / (now - self._at)
        self._at, self._wait_ns = now, wait_ns
        return round(cpu, 1), round(cpu + max(0.0, waited), 1)


def summarize(role: str, samples: list[tuple[float, float]] | list[list[float]]) -> dict[str, Any]:
    """One generator process from its (cpu %, busy %) samples.

    {role, cpu_p50, cpu_max, cpu_over_90_share, samples}; cpu_over_90_share is
    the share of samples in which the process was busy (running or waiting
    for a core) more than BUSY_PERCENT of the time.
    """
    cpu = sorted(sample[0] for sample in samples)
    over = sum(1 for sample in samples if sample[1] > BUSY_PERCENT)
    return {
        "role": role,
        "cpu_p50": cpu[len(cpu) // 2] if cpu else None,
        "cpu_max": cpu[-1] if cpu else None,
        "cpu_over_90_share": round(over / len(cpu), 3) if cpu else None,
        "samples": len(cpu),
    }


def saturated(processes: list[dict[str, Any]]) -> bool:
    """True when any process was above BUSY_PERCENT for more than SATURATED_SHARE of its samples."""
    return any((p.get("cpu_over_90_share") or 0) > SATURATED_SHARE for p in processes)


def process_label(role: str) -> str:
    """A generator process as people read it: `worker vm_1c22946a`, the local process named as such."""
    if role == "local":
        return "the Locust process"
    return _CLIENT_ID_HEX.sub(r"_\1", role)
