"""One operation at a time per deployment: an flock on .state/<name>/lock.

`up`, `down`, `rollback`, `fault` and the set-up of `load` hold it, so two of
them never change one deployment at once (two concurrent `up`s used to create
two networks of the same name). The holder writes its PID and command into the
lock file, so a command that waits can say whom it waits for; the file is
emptied on release, so a deployment's .state/ reads the same before and after.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from redis_harness import paths, progress
from redis_harness.errors import HarnessError
from redis_harness.profile.model import Profile

TIMEOUT_ENV = "REDIS_HARNESS_LOCK_TIMEOUT"
DEFAULT_TIMEOUT_S = 300.0
POLL_S = 0.2


def lock_path(profile: Profile) -> Path:
    """Beside the deployments' state, not in it: taking the lock must not look like a deployment
    having been written (a refused `up` leaves no .state/<name>/)."""
    return paths.STATE_DIR / ".locks" / f"{profile.name}.lock"


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""
    return text


def _timeout() -> float:
    try:
        return float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
    except ValueError:
        return DEFAULT_TIMEOUT_S


@contextmanager
def held(profile: Profile, command: str, timeout_s: float | None = None) -> Iterator[None]:
    """Hold the deployment's lock for the block; wait for it up to `timeout_s` (default
    $REDIS_HARNESS_LOCK_TIMEOUT or 300 s), then fail naming the holder."""
    timeout_s = _timeout() if timeout_s is None else timeout_s
    path = lock_path(profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        started = time.monotonic()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(fd) or "another command"
                if time.monotonic() - started >= timeout_s:
                    raise HarnessError(
                        f"lock: {profile.project} is busy: {holder} holds {path} "
                        f"(waited {timeout_s:.0f} s; set {TIMEOUT_ENV} to wait longer)"
                    ) from None
                progress.note(f"waiting for {holder} to finish with {profile.project}")
                time.sleep(POLL_S)
        os.ftruncate(fd, 0)
        argv = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv[:3]))
        os.pwrite(fd, f"PID {os.getpid()} ({command}: {argv})\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
