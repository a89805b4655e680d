"""Sizes and durations from a profile, normalised to bytes and seconds.

Every size is converted here so no user unit reaches Redis or Docker as
written: Redis reads `1g` as 10^9 but `1gb` as 2^30, Docker reads `1g` as 2^30.
"""

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
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")


def parse_size(field: str, value: object) -> int:
    """Bytes from `512mb`, `1g`, `1gib`, `1048576`; binary units (2^10) throughout."""
    if isinstance(value, bool):
        raise BadInput(f"{field}: {value!r} is not a size; write e.g. 256mb or 1gb")
    if isinstance(value, int):
        if value < 0:
            raise BadInput(f"{field}: {value} is negative; write a positive size such as 256mb")
        return value
    match = _SIZE_RE.match(str(value).lower())
    if not match or match.group(2) not in _SIZE_UNITS:
        raise BadInput(
            f"{field}: {value!r} is not a size; write a whole number with one of the units "
            "b, kb, mb, gb (binary: 1gb = 2^30 bytes), e.g. 256mb"
        )
    return int(match.group(1)) * _SIZE_UNITS[match.group(2)]


def parse_duration(field: str, value: object) -> float:
    """Seconds from `30s`, `5m`, `24h`, `100ms` or a bare number of seconds."""
    if isinstance(value, bool):
        raise BadInput(f"{field}: {value!r} is not a duration; write e.g. 30s, 5m or 24h")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION_RE.match(str(value).lower())
        if not match:
            raise BadInput(f"{field}: {value!r} is not a duration; write e.g. 100ms, 30s, 5m or 24h")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds <= 0:
        raise BadInput(f"{field}: {value!r} must be positive; write e.g. 30s")
    return seconds


def format_size(num_bytes: int) -> str:
    """Human-readable binary size for status output."""
    size = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
