"""Plain text for a terminal: how wide a view may be (the terminal's width, COLUMNS first, at most
100 columns), wrapped sentences, and tables whose columns stay aligned within that width.

Every view (plan, status, verify, monitor, load and bench summaries, --help) is laid out for
view_width(), so it fits a 100-column terminal and, where the content allows, an 80-column one.
Off a terminal (a pipe, a CI log) it is 100 unless COLUMNS says otherwise.
"""

from __future__ import annotations

import io
import re
import shutil
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
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


GAP = 2  # spaces between columns
# A figure and its unit stay on one line ("101 %", not "101" and "%" on the next).
UNIT_SPACE = re.compile(r"(?<=\d) (?=(?:%|ms|µs|s|ops/s)(?![\w/]))")
GLUE = "\u00a0"  # a no-break space: textwrap (and a browser) breaks only at the others


def wrapped(text: str, indent: str, width: int = MAX_WIDTH, first: str = "") -> list[str]:
    """`first` + text in lines of at most `width`, continued under `indent`; words are never split
    (a path or a name longer than a line stays whole)."""
    lines = textwrap.wrap(
        UNIT_SPACE.sub(GLUE, text),
        width,
        initial_indent=first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [line.replace(GLUE, " ") for line in lines] or [first.rstrip()]


@dataclass(frozen=True)
class Group:
    """A label over some figure columns (`service time` over p50 … max), right-aligned to the last of them;
    groups do not overlap and never cover the name column."""

    label: str
    first: int  # column index
    last: int


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    groups: Sequence[Group] = (),
    width: int = MAX_WIDTH,
    indent: str = "",
    names: int = 1,
) -> list[str]:
    """The first `names` columns left-aligned (names), the others right-aligned (figures).

    When the longest name would push the table past `width`, the name column
    narrows to what is left, and a name longer than it goes on a line of its
    own with its figures on the next line, so the figures stay in their columns.
    """
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    for group in groups:  # a label longer than its columns widens the first of them
        span = sum(widths[group.first : group.last + 1]) + GAP * (group.last - group.first)
        widths[group.first] += max(0, len(group.label) - span)
    figures = sum(widths[1:]) + GAP * (len(widths) - 1)
    widths[0] = max(len(header[0]), min(widths[0], width - len(indent) - figures))

    def line(cells: Sequence[str]) -> str:
        name = f"{cells[0]:<{widths[0]}}"
        rest = "".join(
            " " * GAP + (f"{cell:<{w}}" if i < names else f"{cell:>{w}}")
            for i, (cell, w) in enumerate(zip(cells[1:], widths[1:], strict=True), start=1)
        )
        return (indent + name + rest).rstrip()

    lines = []
    if groups:
        above = ""
        for group in groups:
            end = len(indent) + sum(widths[: group.last + 1]) + GAP * group.last
            above = f"{above:<{end - len(group.label)}}{group.label}"
        lines.append(above)
    lines.append(line(header))
    for row in rows:
        if len(str(row[0])) > widths[0]:
            lines.append(indent + str(row[0]))
            lines.append(line(["", *row[1:]]))
        else:
            lines.append(line(row))
    return lines
