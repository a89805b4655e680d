"""Shared fixtures: generated secrets and real deployments brought up for a test session."""

from __future__ import annotations

import os
import secrets as pysecrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from redis_harness import deploy
from redis_harness.profile import Profile, load_profile, profile_from_mapping
from redis_harness.secrets import Secrets, load_secrets

REPO = Path(__file__).resolve().parents[1]
# A password with every character that tends to break quoting: it must work end to end.
AWKWARD = "p@ss 'w\"rd' $HOME #x &y ?z \\ é€ "


def generated_env() -> dict[str, str]:
    """Fresh secrets for a test session; REDIS_PASSWORD carries the awkward characters."""
    env = {
        "REDIS_PASSWORD": AWKWARD + pysecrets.token_hex(8),
        "REDIS_ADMIN_PASSWORD": pysecrets.token_hex(32),
        "REDIS_PRICE_PASSWORD": pysecrets.token_hex(32),
        "REDIS_PROCESSING_PASSWORD": pysecrets.token_hex(32),
        "REDIS_ACQUISITION_PASSWORD": pysecrets.token_hex(32),
    }
    return env


@pytest.fixture(scope="session")
def secret_env() -> dict[str, str]:
    return generated_env()


@pytest.fixture(scope="session")
def cli_env(secret_env: dict[str, str]) -> dict[str, str]:
    """Environment for running `redis-harness` as a subprocess with the test secrets."""
    return {**os.environ, **secret_env}


def variant_profile(base: str, tmp_dir: Path, name: str, **overrides: object) -> Profile:
    """A copy of profiles/<base>.yaml under another name, with top-level sections merged."""
    raw = yaml.safe_load((REPO / "profiles" / f"{base}.yaml").read_text())
    raw["name"] = name
    for section, value in overrides.items():
        if isinstance(value, dict) and isinstance(raw.get(section), dict):
            raw[section] = {**raw[section], **value}
        else:
            raw[section] = value
    path = tmp_dir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return profile_from_mapping(raw, path)


class Deployment:
    def __init__(self, profile: Profile, secrets: Secrets, env: dict[str, str]) -> None:
        self.profile = profile
        self.secrets = secrets
        self.env = env

    def down(self, volumes: bool = True) -> None:
        deploy.down(self.profile, volumes=volumes)


@pytest.fixture(scope="session")
def ci_deployment(secret_env: dict[str, str]) -> Iterator[Deployment]:
    """The `ci` profile, brought up once for the session with the test secrets."""
    profile = load_profile("ci")
    secrets = load_secrets(profile, env=secret_env)
    deploy.down(profile, volumes=True)
    deploy.up(profile, secrets)
    try:
        yield Deployment(profile, secrets, {**os.environ, **secret_env})
    finally:
        deploy.down(profile, volumes=True)
