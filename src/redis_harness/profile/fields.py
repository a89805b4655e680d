"""Checks for profile fields: each failure is one line naming the field and the fix."""

from __future__ import annotations

import difflib
from typing import Any

from redis_harness.errors import BadInput


def closest(key: str, allowed: tuple[str, ...]) -> str:
    match = difflib.get_close_matches(key, allowed, n=1, cutoff=0.5)
    return f"did you mean '{match[0]}'?" if match else f"valid keys: {', '.join(allowed)}"


def section(raw: Any, field: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    """A mapping with only known keys; an unknown key names the closest valid one."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadInput(f"{field}: expected a mapping of {', '.join(allowed)}, got {raw!r}")
    for key in raw:
        if key not in allowed:
            where = f"{field}.{key}" if field else str(key)
            raise BadInput(f"{where}: unknown key; {closest(str(key), allowed)}")
    return dict(raw)


def choice(field: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise BadInput(f"{field}: {value!r} is not valid; use one of {', '.join(choices)}")
    return value


def number(field: str, value: Any, *, lo: float, hi: float, integer: bool = False) -> Any:
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not lo <= value <= hi:
        kind = "a whole number" if integer else "a number"
        raise BadInput(f"{field}: {value!r} is out of range; use {kind} from {lo:g} to {hi:g}")
    return value


def boolean(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadInput(f"{field}: {value!r} is not true/false")
    return value
