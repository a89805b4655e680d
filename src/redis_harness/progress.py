"""Progress of long operations: the pipeline says what it is waiting for; whoever runs it decides how to show it.

Domain code calls `progress.note("waiting for redis-1 to be healthy")`; it
costs nothing when nobody listens (libraries, tests). The command line
listens with a live line (cli/progress.py), so a user sees elapsed time and
what the operation waits for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Listener = Callable[[str], None]

_listener: ContextVar[Listener | None] = ContextVar("redis_harness_progress", default=None)


def note(what: str) -> None:
    """Tell the listener, if any, what the current operation is doing or waiting for now."""
    listener = _listener.get()
    if listener is not None:
        listener(what)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Send every note() made inside the block to `listener`."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)
