"""Read a profile's YAML strictly: UTF-8 only, no duplicated keys, bounded alias expansion,
no .inf/.nan, and every problem as one line naming the file (and line) and the fix."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from redis_harness.errors import BadInput

# A profile has a few hundred values; aliases that expand past this are a mistake or an attack
# ("billion laughs"), and would make every later message quote megabytes.
MAX_VALUES = 10_000
EMPTY_FIX = "start from a copy of profiles/dev.yaml and change name and network.port"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _DuplicateKey(yaml.constructor.ConstructorError):
    pass


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice in one mapping (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue  # `<<: *base` merges; a key written after it overrides by design
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise _DuplicateKey(None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: Node, memo: dict[int, int]) -> int:
    """Values the node stands for once every alias is expanded (shared nodes counted each time used)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a recursive alias counts once instead of looping
    if isinstance(node, MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, SequenceNode):
        size = 1 + sum(_expanded_size(item, memo) for item in node.value)
    else:
        size = 1
    memo[id(node)] = min(size, MAX_VALUES + 1)
    return memo[id(node)]


def _first_non_finite(value: Any, where: str) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return where or "profile"
    if isinstance(value, dict):
        for key, item in value.items():
            found = _first_non_finite(item, f"{where}.{key}" if where else str(key))
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _first_non_finite(item, f"{where}[{index}]")
            if found:
                return found
    return None


def parse_yaml(text: str, path: Path) -> Any:
    """The document in text, or BadInput with one line."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None and _expanded_size(node, {}) > MAX_VALUES:
            raise BadInput(
                f"{path}: aliases expand to more than {MAX_VALUES} values; write the values out instead of "
                "nesting anchors (a profile has a few hundred)"
            )
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        problem = " ".join(str(problem).split())[:120]
        if isinstance(exc, _DuplicateKey):
            raise BadInput(f"{path}:{where}: {problem}; keep one of them") from None
        raise BadInput(f"{path}:{where} is not valid YAML ({problem}); fix the syntax") from None
    finally:
        loader.dispose()
    found = _first_non_finite(data, "")
    if found:
        raise BadInput(f"{found}: .inf and .nan are not numbers a profile can use; write a finite number")
    return data


def read_yaml(path: Path) -> dict[str, Any]:
    """A profile file's top-level mapping."""
    data = parse_yaml(read_utf8(path, "profile"), path)
    if data is None:
        raise BadInput(f"{path}: the profile is empty; {EMPTY_FIX}")
    return data


def read_utf8(path: Path, what: str) -> str:
    """A text file's content; a binary or mis-encoded file is refused, naming the first bad byte."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(
            f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            f"save the {what} as UTF-8 text"
        ) from None
