"""A load session: one Locust process, one or more tests, each in its own run folder.

Headless, a session is one test. With the web UI it is as many as the user
starts (Start, then New after each Stop): test 1 runs in the session's run
folder, test n in a sibling `<folder>-<n>`, so every test has its own report.
The Locust side writes the current test's live figures to a progress file
once a second; the command reads them for its progress line, and the web UI
shows the same text, so both read alike and neither says "46/30 s".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PROGRESS_FILE = "progress.json"
# A test's states in the progress file.
RUNNING, STOPPING, ENDED = "running", "stopping", "ended"
# A folder that holds one of these already holds a run.
RUN_MARKERS = ("run.json", "raw.json", "report.json")


def recent_rate(arrivals: list[tuple[float, int]], now: float, quiet_after_s: float) -> float:
    """Operations per second from the latest arrivals of a running count: (time, count) pairs, one
    for each time the count grew.

    With workers the count grows in steps, each worker's last 3 s at once, so a
    rate over a fixed window of seconds swings between half and one and a half
    times the true one, and falls towards nothing after the last step of a
    short run. Over the span between the first and the last arrival every step
    counted was done within it. A count that has not grown for `quiet_after_s`
    (longer than a report interval) has stalled: 0.
    """
    if len(arrivals) < 2 or now - arrivals[-1][0] > quiet_after_s:
        return 0.0
    (t0, c0), (t1, c1) = arrivals[0], arrivals[-1]
    return (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0


def nth_run_folder(first: Path, number: int) -> Path:
    """Test 1 runs in the session's folder; test n in `<folder>-<n>` beside it (the next free one)."""
    if number <= 1:
        return first
    candidate = first.parent / f"{first.name}-{number}"
    while any((candidate / name).exists() for name in RUN_MARKERS):
        number += 1
        candidate = first.parent / f"{first.name}-{number}"
    return candidate


def read_progress(path: Path) -> dict[str, Any]:
    """The latest progress figures; {} until the first test starts (or while the file is replaced)."""
    try:
        figures = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return figures if isinstance(figures, dict) else {}


def progress_text(figures: dict[str, Any]) -> str:
    """Elapsed against the planned run time, never past it while the test runs.

    `12 s of 30 s`; `stopping: 30 s planned reached, users finishing`;
    `ended after 46 s (planned 30 s)`; without a run time, `46 s (no run time: until Stop)`
    and `ended after 46 s (no run time set)`.
    """
    elapsed = float(figures.get("elapsed_s") or 0.0)
    planned = figures.get("planned_s")
    state = figures.get("state", RUNNING)
    if state == ENDED:
        plan = f"planned {planned:.0f} s" if planned else "no run time set"
        return f"ended after {elapsed:.0f} s ({plan})"
    if planned and elapsed >= planned:
        return f"stopping: {planned:.0f} s planned reached, users finishing"
    if state == STOPPING:
        return f"stopping after {elapsed:.0f} s: users finishing"
    if planned:
        return f"{elapsed:.0f} s of {planned:.0f} s"
    return f"{elapsed:.0f} s (no run time: until Stop)"


def host_refusal(form_host: str | None, endpoint: str | None) -> str | None:
    """Why the web UI refuses a start form's Host, or None when it is the deployment's endpoint.

    The users connect to the profile's endpoint whatever the field says, so another Host is
    refused rather than silently ignored (the field is also read-only in the form)."""
    if form_host is None or endpoint is None or form_host.strip() == endpoint:
        return None
    return (
        f"Host is read-only here: the load goes to the profile's endpoint {endpoint}, not {form_host.strip()!r}. "
        "To load another deployment, run `redis-harness load <its profile> --web`."
    )
