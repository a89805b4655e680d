"""What a check expected and found: recorded on the pytest item, so the table and JUnit show both."""

from __future__ import annotations

import warnings
from collections.abc import Callable


class HostSettingWarning(UserWarning):
    """A host setting Redis would like different; reported, never failed."""


class Check:
    """What a check expected and found, recorded on the test item for the table and JUnit.

    `record` is pytest's `request.node.user_properties.append`-like callable.
    """

    def __init__(self, record: Callable[[tuple[str, str]], None]) -> None:
        self._record = record

    def _note(self, expected: object, found: object, status: str) -> None:
        # An empty string would read as "nothing recorded" in the table.
        self._record(("expected", str(expected) if expected != "" else '""'))
        self._record(("found", str(found) if found != "" else '""'))
        self._record(("status", status))

    def that(self, ok: bool, expected: object, found: object) -> None:
        self._note(expected, found, "pass" if ok else "fail")
        if not ok:
            raise AssertionError(f"expected {expected}, found {found}")

    def equal(self, expected: object, found: object) -> None:
        self.that(expected == found, expected, found)

    def warn_unless(self, ok: bool, expected: object, found: object) -> None:
        """Host settings: a miss is a warning in the table, and the check still passes."""
        self._note(expected, found, "pass" if ok else "warn")
        if not ok:
            warnings.warn(HostSettingWarning(f"expected {expected}, found {found}"), stacklevel=2)
