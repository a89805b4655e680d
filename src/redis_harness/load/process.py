"""The Locust process of a run: started in its own session, stopped cleanly on Ctrl-C or SIGTERM, never orphaned.

Locust runs in a new session (its own process group), so a Ctrl-C in the
terminal reaches only this process; this process then asks Locust to shut
down (SIGTERM: Locust stops its users, fires `quitting`, and the harness's
hook saves raw.json), waits a bounded time, and kills whatever of the group
is left. A second signal kills at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from redis_harness.errors import HarnessError

# After a stop request: Locust's own --stop-timeout for users to finish, plus saving.
GRACE_S = 75.0
POLL_S = 0.2


@dataclass(frozen=True)
class Finished:
    returncode: int
    interrupted_by: int | None  # signal number (SIGINT, SIGTERM) that cut the run short
    interrupted_at: float | None = None  # when it arrived (time.time()): tests that ended before it were whole


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def run_locust(
    cmd: list[str],
    env: dict[str, str],
    log_path: Path | None,
    timeout_s: float | None,
    on_tick: Callable[[], None] | None = None,
) -> Finished:
    """Run Locust to its end (or to a stop request); output to log_path (None: this terminal).

    `on_tick` is called about once a second while Locust runs (the progress line).
    """
    log = open(log_path, "w") if log_path is not None else None  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT if log else None, start_new_session=True)
    caught: list[int] = []
    caught_at: list[float] = []
    deadline = None if timeout_s is None else time.monotonic() + timeout_s

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal deadline
        if caught:  # a second Ctrl-C: no more waiting
            _signal_group(proc.pid, signal.SIGKILL)
            return
        caught.append(signum)
        caught_at.append(time.time())
        # The master alone: it tells its workers to stop and saves the run's data.
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_S

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    timed_out = False
    next_tick = time.monotonic()
    try:
        while proc.poll() is None:
            # Not after a signal: what ends then is judged with it (Finished.interrupted_at), not by a tick.
            if on_tick is not None and not caught and time.monotonic() >= next_tick:
                on_tick()
                next_tick = time.monotonic() + 1.0
            if deadline is not None and time.monotonic() > deadline:
                timed_out = not caught
                _signal_group(proc.pid, signal.SIGTERM if not timed_out else signal.SIGKILL)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    _signal_group(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
                break
            time.sleep(POLL_S)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        # Worker processes Locust forked share its group: none may outlive the run.
        _signal_group(proc.pid, signal.SIGKILL)
        if log is not None:
            log.close()
    if timed_out:
        raise HarnessError(f"load: locust did not finish within {timeout_s:.0f} s")
    return Finished(
        returncode=proc.returncode,
        interrupted_by=caught[0] if caught else None,
        interrupted_at=caught_at[0] if caught_at else None,
    )
