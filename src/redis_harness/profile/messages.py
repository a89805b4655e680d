"""pydantic's ValidationError -> one line naming the field, the problem and the fix.

The model's constraints (ranges, choices, unknown keys) produce pydantic's own
errors; this module words them the way the harness always has, with the
closest valid key for a typo and the valid range or choices for a value.
"""

from __future__ import annotations

import difflib
import typing
from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from redis_harness.errors import BadInput
from redis_harness.profile.types import PROFILE_ERROR, Floor, Hint, section_model
from redis_harness.profile.units import short_repr

MAX_MESSAGE = 300


def closest(key: str, allowed: tuple[str, ...]) -> str:
    match = difflib.get_close_matches(key, allowed, n=1, cutoff=0.5)
    return f"did you mean '{match[0]}'?" if match else f"valid keys: {', '.join(allowed)}"


def _keys(model: type[BaseModel]) -> tuple[str, ...]:
    return tuple(info.alias or name for name, info in model.model_fields.items())


def _dict_value_model(annotation: Any) -> type[BaseModel] | None:
    if typing.get_origin(annotation) is dict:
        return section_model(typing.get_args(annotation)[1])
    return None


def _walk(root: type[BaseModel], loc: tuple[Any, ...]) -> tuple[type[BaseModel] | None, FieldInfo | None]:
    """The model holding the field at loc, and the field (None where loc leaves the models)."""
    model: type[BaseModel] | None = root
    info: FieldInfo | None = None
    skip_key = False
    for part in loc:
        if skip_key:  # a key of a mapping such as security.services
            skip_key = False
            continue
        if model is None:
            return None, None
        info = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        if info is None:
            return model, None
        inner = _dict_value_model(info.annotation)
        if inner is not None:
            model, skip_key = inner, True
        else:
            model = section_model(info.annotation) or model
    return model, info


def _parent(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model, info = _walk(root, loc)
    if info is not None and loc:
        return section_model(info.annotation) or _dict_value_model(info.annotation) or model
    return model if not loc else None


def _meta(info: FieldInfo | None, kind: type) -> Any:
    return next((m for m in (info.metadata if info else []) if isinstance(m, kind)), None)


def _interval(info: FieldInfo | None) -> tuple[str, bool]:
    """'from 1 to 64' or '(0, 0.9]', and whether the bounds are whole numbers."""
    whole = info is not None and info.annotation in (int, int | None)
    lo = _meta(info, Ge) or _meta(info, Gt)
    hi = _meta(info, Le) or _meta(info, Lt)
    if lo is None or hi is None:
        return "", whole
    low = lo.ge if isinstance(lo, Ge) else lo.gt
    high = hi.le if isinstance(hi, Le) else hi.lt
    if isinstance(lo, Ge) and isinstance(hi, Le):
        kind = "a whole number" if whole else "a number"
        return f"use {kind} from {low:g} to {high:g}", whole
    left, right = ("[" if isinstance(lo, Ge) else "("), ("]" if isinstance(hi, Le) else ")")
    return f"{left}{low:g}, {high:g}{right}", whole


def _number_problem(value: Any, info: FieldInfo | None) -> str:
    floor, hint = _meta(info, Floor), _meta(info, Hint)
    lowest = _meta(info, Ge)
    if floor and lowest is not None and isinstance(value, int) and not isinstance(value, bool) and value < lowest.ge:
        return f"{value!r} is fewer than {lowest.ge}; {floor.why}"
    interval, _ = _interval(info)
    if interval.startswith("use "):
        problem = f"{short_repr(value)} is out of range; {interval}"
    elif interval:
        problem = f"{short_repr(value)} is outside {interval}"
    else:
        problem = f"{short_repr(value)} is not a number"
    return f"{problem}; {hint.text}" if hint else problem


def _choices(info: FieldInfo | None) -> tuple[str, ...]:
    annotation = info.annotation if info else None
    for arg in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(arg) is typing.Literal:
            return tuple(str(choice) for choice in typing.get_args(arg))
    return ()


def _dotted(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _line(error: Any, root: type[BaseModel]) -> str:
    kind, loc, value = error["type"], tuple(error["loc"]), error.get("input")
    ctx = error.get("ctx") or {}
    if kind == PROFILE_ERROR:
        field = _dotted(tuple(p for p in (*loc, ctx.get("key", "")) if p != ""))
        return f"{field}: {ctx['problem']}" if field else ctx["problem"]
    field = _dotted(loc) or "profile"
    _, info = _walk(root, loc)
    if kind == "extra_forbidden":
        allowed = _keys(_parent(root, loc[:-1]) or root)
        return f"{field}: unknown key; {closest(str(loc[-1]), allowed)}"
    if kind == "dict_type" and info is not None and typing.get_origin(info.annotation) is dict:
        entry = _dict_value_model(info.annotation)
        keys = ", ".join(_keys(entry)) if entry else "values"
        return f"{field}: expected a mapping of names to {{{keys}}}, got {short_repr(value)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        section = _parent(root, loc) if loc else root
        keys = ", ".join(_keys(section)) if section else "keys"
        return f"{field}: expected a mapping of {keys}, got {short_repr(value)}"
    if kind == "literal_error":
        return f"{field}: {short_repr(value)} is not valid; use one of {', '.join(_choices(info))}"
    if kind in ("int_type", "int_from_float", "float_type", "greater_than", "greater_than_equal", "less_than"):
        return f"{field}: {_number_problem(value, info)}"
    if kind == "finite_number":
        return f"{field}: {short_repr(value)} is not a finite number; write a finite value"
    if kind in ("less_than_equal", "int_parsing", "float_parsing"):
        return f"{field}: {_number_problem(value, info)}"
    if kind == "bool_type":
        return f"{field}: {short_repr(value)} is not true/false"
    if kind == "string_pattern_mismatch":
        hint = _meta(info, Hint)
        fix = hint.text if hint else f"match {ctx.get('pattern')}"
        return f"{field}: {short_repr(value)} is not valid; {fix}"
    if kind == "string_type":
        return f"{field}: {short_repr(value)} is not text; quote it"
    if kind == "missing":
        return f"{field}: missing; add it"
    if kind == "too_short":
        return f"{field}: is empty; give at least one entry"
    return f"{field}: {error['msg']}"


def bad_input(exc: ValidationError, root: type[BaseModel]) -> BadInput:
    """The first problem as one line (a user fixes one thing at a time; the next run names the next)."""
    line = " ".join(_line(exc.errors()[0], root).split())
    if len(line) > MAX_MESSAGE:
        line = line[: MAX_MESSAGE - 1] + "…"
    return BadInput(line)
