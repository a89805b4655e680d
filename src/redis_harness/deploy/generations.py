"""Generations: what each successful `up` made true, so a failed change can go back to it.

.state/<name>/generations/<n>/ holds the rendered files and meta.json (image ref
and id, a fingerprint of the secrets, the ACL as the servers listed it). The
secrets themselves are never recorded: the ACL lines carry SHA-256 hashes only.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis_harness import paths
from redis_harness.profile.model import Profile

KEEP = 10  # generations kept per deployment; older ones are dropped
META = "meta.json"


@dataclass(frozen=True)
class Generation:
    number: int
    files: dict[str, str]
    meta: dict[str, Any]

    @property
    def image_ref(self) -> str:
        return str(self.meta["image_ref"])

    @property
    def secrets_hash(self) -> str:
        return str(self.meta["secrets_hash"])

    def acl_list(self, service: str) -> list[str] | None:
        """The server's ACL LIST as it was right after this generation was applied."""
        listed = self.meta.get("acl_list", {}).get(service)
        return list(listed) if listed is not None else None


def folder(profile: Profile) -> Path:
    return paths.state_dir(profile.name) / "generations"


def _numbers(profile: Profile) -> list[int]:
    base = folder(profile)
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit())


def read(profile: Profile, number: int) -> Generation:
    path = folder(profile) / str(number)
    meta = json.loads((path / META).read_text(encoding="utf-8"))
    files = {p.name: p.read_text(encoding="utf-8") for p in sorted(path.iterdir()) if p.name != META}
    return Generation(number=number, files=files, meta=meta)


def latest(profile: Profile) -> Generation | None:
    numbers = _numbers(profile)
    return read(profile, numbers[-1]) if numbers else None


def before(profile: Profile, number: int) -> Generation | None:
    """The newest generation older than `number`."""
    older = [n for n in _numbers(profile) if n < number]
    return read(profile, older[-1]) if older else None


def record(profile: Profile, files: dict[str, str], meta: dict[str, Any]) -> Generation:
    """Write the next generation atomically (a staging folder renamed into place); keep the last KEEP."""
    base = folder(profile)
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.state_dir(profile.name), 0o700)
    numbers = _numbers(profile)
    number = (numbers[-1] + 1) if numbers else 1
    meta = {**meta, "generation": number, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    staging = Path(tempfile.mkdtemp(prefix=".gen.", dir=base))
    try:
        for name, text in files.items():
            (staging / name).write_text(text, encoding="utf-8")
        (staging / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        staging.rename(base / str(number))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for old in _numbers(profile)[:-KEEP]:
        shutil.rmtree(base / str(old), ignore_errors=True)
    return Generation(number=number, files=dict(files), meta=meta)


def forget(profile: Profile) -> None:
    """Drop every generation (the deployment and its data are gone)."""
    shutil.rmtree(folder(profile), ignore_errors=True)


def baseline_path(profile: Profile) -> Path:
    return paths.state_dir(profile.name) / "last-up.json"


def write_baseline(profile: Profile, containers: dict[str, Any]) -> None:
    """Each container as the last successful `up` left it (id, restart count): status tells a
    crash or an OOM kill since then from one before it."""
    facts = {
        service: {
            "id": c.id,
            "restart_count": c.attrs.get("RestartCount", 0),
            # Docker keeps the flag after the restart that follows an OOM kill.
            "oom_killed": bool(c.attrs["State"].get("OOMKilled")),
        }
        for service, c in containers.items()
    }
    path = baseline_path(profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    staging.replace(path)


def read_baseline(profile: Profile) -> dict[str, dict[str, Any]]:
    path = baseline_path(profile)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
