"""The key design `{service}:{version}:{entity}:{id}`: one builder, validated parts.

The id is wrapped in a Cluster hash tag (see build_key).
The service part is the ACL user name, so a service's keys always fall under
the `<service>:*` pattern its user is limited to. The version is written `v<N>`;
bookkeeping keys use `<service>:meta:<name>` and `<service>:lock:<name>`, which
never parse as data keys because `meta` and `lock` are not `v<N>`.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_SERVICE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,40}$")  # same shape as the ACL user names
_ENTITY_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
# No ':' (the parts must never blur) and no glob characters (* ? [ ] \), so a
# SCAN MATCH pattern built from a prefix matches exactly what it says.
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
_VERSION_RE = re.compile(r"^v([1-9][0-9]{0,8})$")
META = "meta"


class BadKeyPart(ValueError):
    """A key part that would break the key design; the message names the part and the rule."""


class KeyParts(NamedTuple):
    service: str
    version: int
    entity: str
    id: str


def _check(part: str, value: object, pattern: re.Pattern[str], rule: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise BadKeyPart(f"{part}: {value!r} is not valid; {rule}")
    return value


def check_service(service: object) -> str:
    return _check("service", service, _SERVICE_RE, "use the ACL user name (lower-case letters, digits, - or _)")


def check_version(version: object) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= 999_999_999:
        raise BadKeyPart(f"version: {version!r} is not valid; use a whole number from 1")
    return version


def build_key(service: str, version: int, entity: str, id: str) -> str:
    """The one place a data key is made: `price:v1:liquidity:{BTC-USDT}`.

    The id is a Cluster hash tag: every entity of one pair (its price, liquidity,
    volume, history) hashes to the same slot, so the multi-key operations on one
    pair (a trade invalidating its volume and history, reading its figures in one
    MGET) work on a Cluster, while different pairs still spread over all slots.
    Redis Cluster's own hash slots do the placement; nothing here hashes."""
    check_service(service)
    check_version(version)
    _check("entity", entity, _ENTITY_RE, "use lower-case letters, digits or _ (e.g. price, historical)")
    _check("id", id, _ID_RE, "use letters, digits, '.', '_', '-' or '/', no ':' or glob characters, 1-128 long")
    return f"{service}:v{version}:{entity}:{{{id}}}"


def parse_key(key: str) -> KeyParts:
    parts = key.split(":")
    if len(parts) != 4:
        raise BadKeyPart(f"key: {key!r} is not service:v<N>:entity:id")
    service, version, entity, id = parts
    match = _VERSION_RE.match(version)
    if not match:
        raise BadKeyPart(f"key: {key!r} has no v<N> version part")
    if not (id.startswith("{") and id.endswith("}")):
        raise BadKeyPart(f"key: {key!r} has no {{id}} hash tag")
    parsed = KeyParts(service, int(match.group(1)), entity, id[1:-1])
    build_key(*parsed)  # validates every part with the same rules
    return parsed


def service_pattern(service: str) -> str:
    """SCAN MATCH pattern for every versioned data key of a service (meta keys excluded)."""
    return f"{check_service(service)}:v*"


def meta_key(service: str, name: str) -> str:
    _check("meta name", name, _ENTITY_RE, "use lower-case letters, digits or _")
    return f"{check_service(service)}:{META}:{name}"


def lock_key(service: str, name: str) -> str:
    """`<service>:lock:<name>`: unversioned, so processes on different schema versions
    still exclude each other, and never taken for a data key by a version purge."""
    _check("lock name", name, _ID_RE, "use letters, digits, '.', '_', '-' or '/', 1-128 long")
    return f"{check_service(service)}:lock:{name}"
