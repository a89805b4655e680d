"""Errors the command line turns into one line and an exit code."""


class HarnessError(Exception):
    """An operation failed (exit code 1)."""

    exit_code = 1


class BadInput(HarnessError):
    """Bad input or a missing prerequisite (exit code 2).

    The message names the field and the fix, in one line.
    """

    exit_code = 2
