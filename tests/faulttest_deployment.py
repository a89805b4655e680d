"""A deployment of its own for the client and fault tests: the ci profile as `faulttest` on
port 6386, so killing and pausing it never disturbs the shared ci or dev deployments."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from redis_harness import deploy, paths
from redis_harness.secrets import load_secrets

from .conftest import Deployment, variant_profile

NAME = "faulttest"
PORT = 6386


@contextmanager
def faulttest_deployment(tmp_dir: Path, env: dict[str, str]) -> Iterator[Deployment]:
    profile = variant_profile("ci", tmp_dir, NAME, network={"port": PORT})
    secrets = load_secrets(profile, env=env)
    deploy.down(profile, volumes=True)
    deploy.up(profile, secrets)
    try:
        yield Deployment(profile, secrets, {**os.environ, **env})
    finally:
        deploy.down(profile, volumes=True)


def emit(capsys: pytest.CaptureFixture[str], name: str, figures: dict[str, Any]) -> None:
    """Measured figures go to the terminal and reports/client/<name>.json; they are never asserted."""
    target = paths.ROOT / "reports" / "client"
    target.mkdir(parents=True, exist_ok=True)
    text = json.dumps(figures, indent=2, default=str)
    (target / f"{name}.json").write_text(text + "\n")
    with capsys.disabled():
        print(f"\n[{name}] {text}")
