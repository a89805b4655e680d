"""Check results: collected from pytest as the checks run, printed failures first, fitting the terminal.

By default a verdict line, then a block per failed check and warning (its name
whole on one line, so `grep FAIL` finds it, then what it expected and found),
then the counts. `-v` adds the table of every check. Blocks and table wrap and
shorten what does not fit; the full text of every expected and found stays in
the JUnit XML and in `verify --json`.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from redis_harness.terminal import MAX_WIDTH, view_width

__all__ = ["MAX_WIDTH", "CheckResult", "ResultCollector", "format_table", "format_report"]

GAP = "  "
RESULT_WIDTH = len("RESULT")
TEXT_MIN = 12  # expected and found keep at least this many columns each; check names get the rest
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
    # A check's name stays whole where the width allows: it is what a reader (and grep) looks for.
    check = min(natural[0], max(len("CHECK"), room - 2 * TEXT_MIN))
    rest = room - check
    expected = min(natural[1], max(rest // 2, rest - natural[2]))
    found = min(natural[2], rest - expected)
    check = min(natural[0], room - expected - found)  # room expected and found do not need goes back to the names
    return check, expected, found


def format_table(results: Sequence[CheckResult], width: int | None = None) -> str:
    """check | expected | found | result, one row per check, wrapped to fit `width` (default: the terminal's)."""
    width = width or view_width()
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


STATUS_WORD = {"fail": "FAIL", "error": "ERROR", "warn": "WARN"}
BLOCK_INDENT = " " * (len("ERROR") + 1)
BLOCK_LABEL = len("expected  ")


def _counts(results: Sequence[CheckResult]) -> dict[str, int]:
    return {s: sum(r.status == s for r in results) for s in ("pass", "fail", "error", "warn", "skip")}


def verdict(results: Sequence[CheckResult]) -> str:
    """What the run says in a few words: `passed`, `2 failed, 1 warning` …"""
    counts = _counts(results)
    failed, warned = counts["fail"] + counts["error"], counts["warn"]
    parts = [f"{failed} failed"] if failed else ["passed"]
    if warned:
        parts.append(f"{warned} warning{'s' if warned > 1 else ''}")
    return ", ".join(parts)


def _redundant(message: str, result: CheckResult) -> bool:
    """Check.that's own message repeats the expected and found shown above it."""
    said = message.removeprefix("AssertionError: ")
    return not said or said == f"expected {result.expected}, found {result.found}"


def _field(label: str, text: str, width: int) -> list[str]:
    room = width - len(BLOCK_INDENT) - BLOCK_LABEL
    lines = _wrap(text, room, FAILED_ROW_LINES)
    if lines[-1].endswith("…"):
        lines.append("(the full text: verify --json)")
    head = f"{BLOCK_INDENT}{label:<{BLOCK_LABEL}}"
    return [head + lines[0]] + [" " * len(head) + line for line in lines[1:]]


def format_blocks(results: Sequence[CheckResult], width: int | None = None, *, nodes: bool = True) -> str:
    """A block per failed check, error and warning, failures first: the status word and the whole name
    on one line (never wrapped, so `grep FAIL` gives it), then expected, found and why, wrapped."""
    width = width or view_width()
    order = {"fail": 0, "error": 0, "warn": 1}
    lines = []
    for r in sorted((r for r in results if r.status in order), key=lambda r: order[r.status]):
        where = f"  on {r.node}" if nodes and r.node else ""
        lines.append(f"{STATUS_WORD[r.status]:<{len(BLOCK_INDENT)}}{r.name}{where}")
        if r.expected:
            lines += _field("expected", r.expected, width)
        if r.found:
            lines += _field("found", r.found, width)
        if r.message and not _redundant(r.message, r):
            lines += _field("why", r.message, width)
    return "\n".join(lines)


def counts_line(results: Sequence[CheckResult], elapsed_s: float) -> str:
    counts = _counts(results)
    return (
        f"{len(results)} checks: {counts['pass']} passed, {counts['fail'] + counts['error']} failed, "
        f"{counts['warn']} warnings, {counts['skip']} skipped in {elapsed_s:.1f} s"
    )


def format_report(
    heading: str,
    runs: Sequence[tuple[str, Sequence[CheckResult]]],
    elapsed_s: float,
    *,
    source: str = "",
    verbose: bool = False,
    drift_hint: str = "",
    width: int | None = None,
) -> str:
    """verify's whole output: `heading: verdict (profile source)`, failures and warnings, (with -v) every
    check's table, the counts, and on a failure how to see and undo the drift. `runs`: (node, results) per node."""
    width = width or view_width()
    results = [r for _, found in runs for r in found]
    first = f"{heading}: {verdict(results)}" + (f" (profile {source})" if source else "")
    lines = [textwrap.fill(first, width, break_on_hyphens=False)]
    blocks = format_blocks(results, width, nodes=len(runs) > 1 or any(r.node for r in results))
    if blocks:
        lines.append(blocks)
    if verbose:
        for node, found in runs:
            if len(runs) > 1:
                lines.append(f"checks on {node}:")
            if found:
                lines.append(format_table(found, width))
    lines.append(counts_line(results, elapsed_s))
    if drift_hint and any(r.status in ("fail", "error") for r in results):
        lines.append(textwrap.fill(drift_hint, width, break_on_hyphens=False))
    return "\n".join(lines)
