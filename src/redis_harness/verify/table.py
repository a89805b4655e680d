"""Check results: collected from pytest as the checks run, printed as one table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

CELL_WIDTH = 52


@dataclass
class CheckResult:
    name: str
    status: str  # pass | fail | warn | skip | error
    expected: str = ""
    found: str = ""
    message: str = ""
    properties: dict[str, str] = field(default_factory=dict)


def check_name(nodeid: str) -> str:
    """`infra_tests/test_security.py::test_runs_as_non_root` -> `runs_as_non_root`."""
    name = nodeid.rpartition("::")[2]
    return name.removeprefix("test_")


class ResultCollector:
    """A pytest plugin object: one CheckResult per check, in run order."""

    def __init__(self) -> None:
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
            CheckResult(name, status, props.get("expected", ""), props.get("found", ""), message, props)
        )


def _first_line(report: Any) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return crash.message.splitlines()[0] if crash.message else ""
    if isinstance(report.longrepr, tuple):  # skip: (path, line, reason)
        return str(report.longrepr[2])
    return str(report.longrepr).strip().splitlines()[-1] if report.longrepr else ""


def _cell(text: str, width: int = CELL_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(results: Sequence[CheckResult]) -> str:
    """check | expected | found | result, one row per check, aligned."""
    header = ("CHECK", "EXPECTED", "FOUND", "RESULT")
    rows = []
    for r in results:
        found = r.found or r.message  # a check that stopped before recording: its error says why
        rows.append((r.name, _cell(r.expected), _cell(found), r.status.upper()))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    lines = ["  ".join(col.ljust(w) for col, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
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
