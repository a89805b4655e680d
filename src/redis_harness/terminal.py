"""How wide a terminal view may be: the terminal's width (COLUMNS first), at most 100 columns.

Every view (plan, status, verify, monitor, --help) is laid out for this width,
so it fits a 100-column terminal and, where the content allows, an 80-column one.
Off a terminal (a pipe, a CI log) it is 100 unless COLUMNS says otherwise.
"""

from __future__ import annotations

import io
import shutil
import textwrap
from collections.abc import Sequence
from typing import Any

from rich.cells import cell_len
from rich.console import Console

MAX_WIDTH = 100  # wider lines are hard to read even on a wide terminal
MIN_WIDTH = 60  # below this no table of ours is readable; narrower terminals wrap


def view_width() -> int:
    """min(terminal width, 100), never below 60; COLUMNS wins, as it does for every terminal program."""
    columns = shutil.get_terminal_size((MAX_WIDTH, 24)).columns
    return max(MIN_WIDTH, min(columns, MAX_WIDTH))


def plain_text(renderable: Any, width: int | None = None) -> str:
    """A rich renderable as plain text at `width` (default view_width()), without trailing spaces."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width or view_width(), color_system=None, force_terminal=False)
    console.print(renderable)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


def text_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int | None = None,
    *,
    no_wrap: frozenset[int] = frozenset(),
    min_width: int = 12,
    gap: str = "  ",
) -> str:
    """Rows under their headers in columns that fit `width`: the columns in `no_wrap` keep their
    widest value; the others give up room, widest first, and wrap their text. A column keeps at
    least `min_width` and its longest word up to 24 columns; only a longer word is broken."""
    width = width or view_width()
    table = [list(headers), *[list(r) for r in rows]]
    columns = range(len(headers))
    natural = [max(cell_len(row[i]) for row in table) for i in columns]
    longest_word = [max((cell_len(w) for row in table for w in row[i].split()), default=0) for i in columns]
    floor = [natural[i] if i in no_wrap else min(natural[i], max(min_width, min(longest_word[i], 24))) for i in columns]
    widths = list(natural)
    room = width - cell_len(gap) * (len(widths) - 1)
    while sum(widths) > room:
        shrinkable = [i for i in columns if widths[i] > floor[i]]
        if not shrinkable:
            break  # the columns at their least are wider still: the lines run over
        widths[max(shrinkable, key=lambda i: widths[i])] -= 1
    lines = []
    for row in table:
        cells = [
            [row[i]] if i in no_wrap else textwrap.wrap(row[i], widths[i], break_on_hyphens=False) or [""]
            for i in columns
        ]
        for n in range(max(len(c) for c in cells)):
            parts = [(c[n] if n < len(c) else "").ljust(w) for c, w in zip(cells, widths, strict=True)]
            lines.append(gap.join(parts).rstrip())
    return "\n".join(lines)
