"""Check results: collected from pytest as the checks run, printed as one table that fits the terminal.

The table wraps and shortens what does not fit; the full text of every
expected and found stays in the JUnit XML and in `verify --json`.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_WIDTH = 100  # wider tables are hard to read even on a wide terminal
MIN_WIDTH = 60
GAP = "  "
RESULT_WIDTH = len("RESULT")
CHECK_SHARE = 0.45  # of the room left after RESULT: check names are long, but expected/found say more
# Rows are shortened to this many lines; a failed row gets more room, since it is the one people read.
PASSING_ROW_LINES = 2
FAILED_ROW_LINES = 8


@dataclass
class CheckResult:
    name: str
    status: str  # pass | fail | warn | skip | error
    expected: str = ""
    found: str = ""
    message: str = ""
    properties: dict[str, str] = field(default_factory=dict)
    node: str = ""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("properties")
        return data


def check_name(nodeid: str) -> str:
    """`infra_tests/test_security.py::test_runs_as_non_root` -> `runs_as_non_root`."""
    name = nodeid.rpartition("::")[2]
    return name.removeprefix("test_")


class ResultCollector:
    """A pytest plugin object: one CheckResult per check, in run order."""

    def __init__(self, node: str = "") -> None:
        self.node = node
        self.results: list[CheckResult] = []
        self.collection_errors: list[str] = []

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.collection_errors.append(f"{report.nodeid}: {_first_line(report)}")

    def pytest_runtest_logreport(self, report: Any) -> None:
        props = {str(k): str(v) for k, v in report.user_properties}
        name = check_name(report.nodeid)
        if report.when == "call":
            status = props.get("status") or ("pass" if report.passed else "skip" if report.skipped else "fail")
            if report.failed:
                status = "fail"
        elif report.when == "setup" and report.skipped:
            status = "skip"
        elif report.failed:  # a fixture could not gather the facts: the check did not pass
            status = "error"
        else:
            return
        message = "" if report.passed else _first_line(report)
        self.results.append(
            CheckResult(name, status, props.get("expected", ""), props.get("found", ""), message, props, self.node)
        )


def _first_line(report: Any) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return crash.message.splitlines()[0] if crash.message else ""
    if isinstance(report.longrepr, tuple):  # skip: (path, line, reason)
        return str(report.longrepr[2])
    return str(report.longrepr).strip().splitlines()[-1] if report.longrepr else ""


def table_width() -> int:
    """min(terminal width, 100): COLUMNS wins, as it does for every terminal program; 100 off a terminal."""
    columns = shutil.get_terminal_size((MAX_WIDTH, 24)).columns
    return max(MIN_WIDTH, min(columns, MAX_WIDTH))


def _wrap(text: str, width: int, max_lines: int) -> list[str]:
    text = " ".join(text.split())
    if not text:
        return [""]
    # Check names and expected values are long words (snake_case, hashes, paths): break inside them too.
    lines = textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        lines[-1] = (last if len(last) < width else last[: width - 1]) + "…"
    return lines


def _wrap_name(name: str, width: int, max_lines: int) -> list[str]:
    """A check name broken after an underscore or before its `[parameter]`, where a reader expects it."""
    lines = [""]
    for token in re.split(r"(?<=_)|(?=\[)", name):
        while len(token) > width:  # a part longer than the column: cut it
            if lines[-1]:
                lines.append("")
            lines[-1], token = token[:width], token[width:]
            lines.append("")
        if len(lines[-1]) + len(token) > width and lines[-1]:
            lines.append("")
        lines[-1] += token
    lines = [line for line in lines if line] or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: width - 1] + "…"
    return lines


def _column_widths(rows: list[tuple[str, str, str, str]], width: int) -> tuple[int, int, int]:
    """Widths of check, expected and found so that the whole row fits `width`."""
    room = width - RESULT_WIDTH - 3 * len(GAP)
    natural = [max(len(" ".join(row[i].split())) for row in rows) for i in range(3)]
    check = min(natural[0], max(len("CHECK"), int(room * CHECK_SHARE)))
    rest = room - check
    expected = min(natural[1], max(rest // 2, rest - natural[2]))
    found = min(natural[2], rest - expected)
    check = min(natural[0], room - expected - found)  # room expected and found do not need goes back to the names
    return check, expected, found


def format_table(results: Sequence[CheckResult], width: int | None = None) -> str:
    """check | expected | found | result, one row per check, wrapped to fit `width` (default: the terminal's)."""
    width = width or table_width()
    header = ("CHECK", "EXPECTED", "FOUND", "RESULT")
    rows = [header]
    for r in results:
        found = r.found or r.message  # a check that stopped before recording: its error says why
        rows.append((r.name, r.expected, found, r.status.upper()))
    widths = _column_widths(rows, width)
    lines = []
    for row in rows:
        failed = row[3] in ("FAIL", "ERROR")
        most = FAILED_ROW_LINES if failed else PASSING_ROW_LINES
        cells = [_wrap_name(row[0], widths[0], most), _wrap(row[1], widths[1], most), _wrap(row[2], widths[2], most)]
        cells.append([row[3]])
        height = max(len(cell) for cell in cells)
        for n in range(height):
            parts = [(cell[n] if n < len(cell) else "") for cell in cells]
            lines.append(GAP.join(p.ljust(w) for p, w in zip(parts, [*widths, RESULT_WIDTH], strict=True)).rstrip())
    return "\n".join(lines)


def summarize(results: Sequence[CheckResult], elapsed_s: float) -> str:
    counts = {s: sum(r.status == s for r in results) for s in ("pass", "fail", "error", "warn", "skip")}
    line = (
        f"{len(results)} checks: {counts['pass']} passed, {counts['fail'] + counts['error']} failed, "
        f"{counts['warn']} warnings, {counts['skip']} skipped in {elapsed_s:.1f} s"
    )
    failed = [r.name for r in results if r.status in ("fail", "error")]
    if failed:
        line += "\nFAILED: " + ", ".join(failed)
    warned = [r.name for r in results if r.status == "warn"]
    if warned:
        line += "\nWARNING (host settings): " + ", ".join(warned)
    return line
