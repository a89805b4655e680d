"""A live progress line for commands that take more than a moment (rich).

On a terminal: one line, redrawn, with the elapsed time and the latest note.
Elsewhere (CI logs, pipes): each new note once, as a plain line with the
elapsed time, so a log shows what the command waited for and for how long.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.live import Live
from rich.text import Text

from redis_harness import progress


@contextmanager
def shown(label: str) -> Iterator[None]:
    """Show the notes made inside the block as `label: <note> (<elapsed> s)` on stderr."""
    console = Console(file=sys.stderr)
    started = time.monotonic()
    latest = {"what": "starting"}

    def line() -> Text:
        elapsed = time.monotonic() - started
        return Text(f"{label}: {latest['what']} ({elapsed:.1f} s)", overflow="ellipsis", no_wrap=True)

    if not console.is_terminal:
        last_printed: list[str] = []

        def print_new(what: str) -> None:
            latest["what"] = what
            if not last_printed or last_printed[-1] != what:
                last_printed.append(what)
                print(line().plain, file=sys.stderr, flush=True)

        with progress.listening(print_new):
            yield
        return

    with Live(line(), console=console, refresh_per_second=4, transient=True) as live:

        def redraw(what: str) -> None:
            latest["what"] = what
            live.update(line())

        with progress.listening(redraw):
            yield
