"""The faults the harness injected into a deployment, kept under .state/<name>/faults.json.

verify reads it to tell a deliberate kill (the restart policy then restarts the
container, and its RestartCount goes up) from a crash nobody asked for. Each
entry names the container by id, so a deployment brought up again (new
containers) starts with a clean slate without anyone clearing the file.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from redis_harness import paths

JOURNAL_FILE = "faults.json"
MAX_ENTRIES = 1000  # oldest dropped first: bounded however many runs inject faults
# Faults after which Docker's restart policy may restart the container (RestartCount + 1).
RESTARTING_KINDS = frozenset({"kill"})


def journal_path(profile_name: str) -> Path:
    return paths.state_dir(profile_name) / JOURNAL_FILE


def read(profile_name: str) -> list[dict[str, Any]]:
    """The entries, oldest first; an absent or unreadable journal is an empty one (verify then
    counts every restart as unexpected, the safe side)."""
    try:
        data = json.loads(journal_path(profile_name).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return []
    return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []


def append(profile_name: str, entry: dict[str, Any]) -> None:
    """Add one entry; concurrent writers (a load run's fault and a `redis-harness fault`) take
    turns under a file lock, and readers never see a half-written file."""
    path = journal_path(profile_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{JOURNAL_FILE}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        entries = [*read(profile_name), entry][-MAX_ENTRIES:]
        staging = path.with_name(f".{JOURNAL_FILE}.tmp")
        staging.write_text(json.dumps(entries, indent=1), encoding="utf-8")
        os.replace(staging, path)


def expected_restarts(profile_name: str, container_id: str) -> int:
    """How many restarts of this container the harness's own faults account for."""
    return sum(
        1 for e in read(profile_name) if e.get("container_id") == container_id and e.get("kind") in RESTARTING_KINDS
    )
