"""Create `.env` from `.env.example` with freshly generated strong passwords (and a profile's endpoint)."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

_EMPTY_PASSWORD = re.compile(r"^(?P<name>[A-Z][A-Z0-9_]*_PASSWORD)=\s*$")


def generate_password() -> str:
    """256 random bits as hex, like ACL GENPASS."""
    return secrets.token_hex(32)


def create_dotenv(example: Path, target: Path, settings: Mapping[str, str] | None = None) -> list[str]:
    """Write target (mode 0600) with every empty *_PASSWORD filled in; never overwrites.

    `settings` replaces the values of plain variables (REDIS_HOST, REDIS_PORT of a profile).
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
        if match:
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
