"""Sizes and durations from a profile, normalised to bytes and seconds.

Every size is converted here so no user unit reaches Redis or Docker as
written: Redis reads `1g` as 10^9 but `1gb` as 2^30, Docker reads `1g` as 2^30.
pydantic's ByteSize reads `1gb` as 10^9, so the profile model uses these
parsers instead.
"""

from __future__ import annotations

import math
import re

from redis_harness.errors import BadInput

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
}
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([a-z]*)\s*$")
# The same grammar for editors (JSON schema patterns have no case-insensitive flag).
SIZE_PATTERN = r"^\s*\d+\s*(?:[bB]|[kKmMgG](?:[iI]?[bB])?)?\s*$"
# No container here gets more: a larger figure is a typo (and past 2^63 bytes Docker silently drops the limit).
MAX_SIZE = 1024**4
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
DURATION_PATTERN = r"^\s*\d+(?:\.\d+)?\s*(?:[mM][sS]|[sSmMhHdD])\s*$"


class UnitError(ValueError):
    """A size or duration that cannot be read; the message says the problem and the fix, without the field."""


def size_bytes(value: object) -> int:
    """Bytes from `512mb`, `1g`, `1gib`, `1048576`; binary units (2^10) throughout, at most 1 TiB."""
    if isinstance(value, bool):
        raise UnitError(f"{value!r} is not a size; write e.g. 256mb or 1gb")
    if isinstance(value, int):
        if value < 0:
            raise UnitError(f"{value} is negative; write a positive size such as 256mb")
        size = value
    else:
        match = _SIZE_RE.match(str(value).lower()) if isinstance(value, str) else None
        if not match or match.group(2) not in _SIZE_UNITS:
            raise UnitError(
                f"{short_repr(value)} is not a size; write a whole number with one of the units "
                "b, kb, mb, gb (binary: 1gb = 2^30 bytes), e.g. 256mb"
            )
        size = int(match.group(1)) * _SIZE_UNITS[match.group(2)]
    if size > MAX_SIZE:
        raise UnitError(f"{short_repr(value)} is more than 1 TiB, the largest size a profile may give; write e.g. 2gb")
    return size


def duration_seconds(value: object) -> float:
    """Seconds from `30s`, `5m`, `24h`, `100ms` or a bare number of seconds."""
    if isinstance(value, bool):
        raise UnitError(f"{value!r} is not a duration; write e.g. 30s, 5m or 24h")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION_RE.match(str(value).lower()) if isinstance(value, str) else None
        if not match:
            raise UnitError(f"{short_repr(value)} is not a duration; write e.g. 100ms, 30s, 5m or 24h")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if not math.isfinite(seconds):
        raise UnitError(f"{short_repr(value)} is not a finite duration; write e.g. 30s")
    if seconds <= 0:
        raise UnitError(f"{short_repr(value)} must be positive; write e.g. 30s")
    return seconds


def parse_size(field: str, value: object) -> int:
    try:
        return size_bytes(value)
    except UnitError as exc:
        raise BadInput(f"{field}: {exc}") from None


def parse_duration(field: str, value: object) -> float:
    try:
        return duration_seconds(value)
    except UnitError as exc:
        raise BadInput(f"{field}: {exc}") from None


def short_repr(value: object, limit: int = 60) -> str:
    """repr() cut to one short line: a message quotes what the user wrote, never all of it."""
    text = repr(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_size(num_bytes: int) -> str:
    """Human-readable binary size for status output."""
    size = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
