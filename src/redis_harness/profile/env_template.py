"""A profile's secrets file from `.env.example` with freshly generated strong passwords and the
profile's endpoint; and the settings one service needs, as `.env` lines."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

_EMPTY_PASSWORD = re.compile(r"^(?P<name>[A-Z][A-Z0-9_]*_PASSWORD)=\s*$")
# .env.example's comment above REDIS_HOST names the default profile's endpoint; a file for another
# profile must not keep it (a reader would connect to another deployment's port).
_ENDPOINT_COMMENT = re.compile(r"^# Where clients find Redis\b.*$")
# A value python-dotenv reads back as written without quotes.
_PLAIN_VALUE = re.compile(r"^[A-Za-z0-9_@%+=:,./-]*$")


def generate_password() -> str:
    """256 random bits as hex, like ACL GENPASS."""
    return secrets.token_hex(32)


def dotenv_value(value: str) -> str:
    """A value as a .env line must hold it: bare when plain, else single-quoted with \\ and ' escaped."""
    if _PLAIN_VALUE.match(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def create_dotenv(
    example: Path, target: Path, settings: Mapping[str, str] | None = None, profile_name: str | None = None
) -> list[str]:
    """Write target (mode 0600) with every empty *_PASSWORD filled in; never overwrites.

    `settings` replaces the values of plain variables (REDIS_HOST, REDIS_PORT of a profile), and with
    `profile_name` the comment that names an endpoint names that profile's.
    Returns the names of the generated variables ([] if target already existed).
    """
    if target.exists():
        return []
    settings = settings or {}
    generated = []
    lines = []
    for line in example.read_text(encoding="utf-8").splitlines():
        match = _EMPTY_PASSWORD.match(line)
        name = line.partition("=")[0]
        if profile_name and _ENDPOINT_COMMENT.match(line) and {"REDIS_HOST", "REDIS_PORT"} <= settings.keys():
            where = f"{settings['REDIS_HOST']}:{settings['REDIS_PORT']}"
            line = f"# Where clients find Redis (the {profile_name} profile publishes {where})."
        elif match:
            generated.append(match.group("name"))
            line = f"{match.group('name')}={generate_password()}"
        elif name in settings and not line.startswith("#"):
            line = f"{name}={settings[name]}"
        lines.append(line)
    # O_EXCL: a file that appeared meanwhile is never overwritten.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return generated


def service_dotenv(settings: Mapping[str, str], heading: str) -> str:
    """`.env` lines for one service (REDIS_HOST … REDIS_PASSWORD), values quoted where needed."""
    lines = [f"# {heading}"] + [f"{name}={dotenv_value(value)}" for name, value in settings.items()]
    return "\n".join(lines) + "\n"
