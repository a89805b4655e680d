"""The net under every command: whatever goes wrong reaches the user as one line and an exit code.

Commands fix what they can where it arises, with a message naming the fix
(HarnessError, BadInput). What slips through lands here: a file the system
refuses, the Docker engine refusing or going away, or a bug. None of them
may show a traceback, unless the user asks for one with REDIS_HARNESS_DEBUG=1.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback

import requests
from docker.errors import APIError, DockerException

from redis_harness.deploy.engine import START_HINT
from redis_harness.errors import HarnessError

DEBUG_ENV = "REDIS_HARNESS_DEBUG"
# A path the user can fix (permissions, a missing folder, a dangling link) is a missing
# prerequisite (2); a full disk or an I/O error is an operation that failed (1).
PATH_ERRNOS = {
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOENT,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EEXIST,
    errno.ENAMETOOLONG,
    errno.ELOOP,
    errno.ENOTEMPTY,
}


def debug() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def one_line(text: str, limit: int = 300) -> str:
    """A message squeezed onto one line: newlines folded, very long ones cut."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def os_error_line(exc: OSError) -> str:
    """`cannot write /x/y (Permission denied); check the path and its permissions`."""
    where = exc.filename if exc.filename is not None else "a file"
    if exc.filename2 is not None:
        where = f"{exc.filename} -> {exc.filename2}"
    reason = exc.strerror or exc.__class__.__name__
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "make it writable (check its permissions and `lsattr` for the immutable flag) or choose another path"
    elif exc.errno in (errno.ENOENT, errno.ENOTDIR):
        fix = "check that the path and the folders above it exist"
    elif exc.errno == errno.ENOSPC:
        fix = "free some disk space and run it again"
    else:
        fix = "check the path and run it again"
    return f"{where}: {reason}; {fix}"


def os_error_code(exc: OSError) -> int:
    return 2 if exc.errno in PATH_ERRNOS else 1


def docker_line(exc: Exception) -> tuple[str, int]:
    """A Docker SDK/API error or a lost engine connection, as one line and an exit code."""
    if isinstance(exc, APIError):
        # The engine's own explanation ("Container … is not paused") is the useful part.
        reason = exc.explanation if isinstance(exc.explanation, str) and exc.explanation else str(exc)
        status = exc.status_code
        code = 2 if status is not None and 400 <= status < 500 else 1
        return f"docker: the engine refused: {one_line(reason, 200)}", code
    if isinstance(exc, requests.ConnectionError):
        return f"docker: engine stopped answering ({one_line(exc, 120)}); {START_HINT}", 2
    return f"docker: {one_line(exc, 200)}", 1


def handle(exc: BaseException) -> int:
    """Print one line on stderr for `exc`; return the exit code."""
    if isinstance(exc, HarnessError):
        print(f"redis-harness: {one_line(exc, 2000)}", file=sys.stderr)
        return exc.exit_code
    if debug():
        traceback.print_exception(exc)
    # docker.errors.APIError is also a requests error, and requests errors are OSErrors:
    # the Docker cases must be looked at first.
    if isinstance(exc, DockerException | requests.RequestException):
        line, code = docker_line(exc)  # type: ignore[arg-type]
        print(f"redis-harness: {line}", file=sys.stderr)
        return code
    if isinstance(exc, OSError):
        print(f"redis-harness: {one_line(os_error_line(exc))}", file=sys.stderr)
        return os_error_code(exc)
    if debug():
        return 1  # the traceback above says it all
    print(
        f"redis-harness: unexpected error: {exc.__class__.__name__}: {one_line(exc, 200)}; "
        f"rerun with {DEBUG_ENV}=1 for the traceback and report it",
        file=sys.stderr,
    )
    return 1
