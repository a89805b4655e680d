"""The building blocks of the profile model: a strict, frozen section base, sizes and durations
in the project's units, and the notes that turn a failed constraint into a one-line fix."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from redis_harness.profile import units

# Custom errors carry their whole message; `key` (optional) names the sub-field it is about.
PROFILE_ERROR = "profile"
# Redis keeps these thresholds in a signed 64-bit integer (`long long`) and refuses to start beyond it.
LLONG_MAX = 2**63 - 1
# ...and these in a C `int` (Sentinel reads its timeouts with atoi()).
INT_MAX = 2**31 - 1


def refuse(problem: str, key: str = "") -> PydanticCustomError:
    """A validation error whose message is already the problem and the fix."""
    return PydanticCustomError(PROFILE_ERROR, "{problem}", {"problem": problem, "key": key})


class Section(BaseModel):
    """A profile section: unknown keys refused, values never coerced from another type, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        allow_inf_nan=False,
        populate_by_name=True,
        # Defaults are written as a user would write them (256mb, 30s) and read by the same validators.
        validate_default=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _empty_section_is_defaults(cls, data: Any) -> Any:
        # `memory:` with nothing under it means "all defaults", as it always has.
        return {} if data is None else data


def section_model(annotation: Any) -> type[BaseModel] | None:
    """The section model a field holds, through Optional, Annotated and a mapping's values."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = section_model(arg)
        if found:
            return found
    return None


@dataclass(frozen=True)
class Hint:
    """Why a range is what it is, appended to an out-of-range message."""

    text: str


@dataclass(frozen=True)
class Floor:
    """A lower bound with a reason: below it the message says `N is fewer than M; <why>`."""

    why: str


def _size(value: Any) -> int:
    try:
        return units.size_bytes(value)
    except units.UnitError as exc:
        raise refuse(str(exc)) from None


def _duration(value: Any) -> float:
    try:
        return units.duration_seconds(value)
    except units.UnitError as exc:
        raise refuse(str(exc)) from None


# Bytes, read with binary units (1gb = 2^30) and at most 1 TiB.
Size = Annotated[
    int,
    BeforeValidator(_size),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": units.MAX_SIZE},
                {"type": "string", "pattern": units.SIZE_PATTERN},
            ]
        }
    ),
]
# Seconds, from 100ms, 30s, 5m, 24h, 7d or a bare number of seconds.
Duration = Annotated[
    float,
    BeforeValidator(_duration),
    WithJsonSchema(
        {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string", "pattern": units.DURATION_PATTERN}]}
    ),
]
