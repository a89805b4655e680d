"""Plain text within a terminal's width: wrapped sentences and tables whose columns stay aligned.

Every terminal view fits MAX_WIDTH columns, and fewer when its content allows:
columns are as wide as their widest cell, not a fixed guess.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

MAX_WIDTH = 100
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
