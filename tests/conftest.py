"""Shared fixtures: generated secrets and real deployments brought up for a test session."""

from __future__ import annotations

import json
import os
import secrets as pysecrets
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from redis_harness import paths
from redis_harness.deploy import compose as deploy
from redis_harness.deploy import firewall, image
from redis_harness.origin.store import OriginStore
from redis_harness.profile.credentials import Secrets, load_secrets
from redis_harness.profile.model import Profile, load_profile, profile_from_mapping
from redis_harness.render.files import SOURCE_MARKER, release_claim

from .netns import other_hosts  # noqa: F401  (a session fixture: namespaces playing other hosts)

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


@pytest.fixture(scope="session", autouse=True)
def release_earlier_sessions_names(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Variant profiles live in temp folders, new ones each session; a deployment folder rendered
    from an earlier session's temp file belongs to the tests, so this session may take its name."""
    temp_roots = (Path(tempfile.gettempdir()).resolve(), tmp_path_factory.getbasetemp().resolve().parent)
    for marker in paths.COMPOSE_DIR.glob(f"*/{SOURCE_MARKER}"):
        claimed = Path(marker.read_text(encoding="utf-8").strip())
        if any(claimed.is_relative_to(root) for root in temp_roots):
            marker.unlink()


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


@contextmanager
def deployed(profile: Profile, env: dict[str, str]) -> Iterator[Deployment]:
    """A deployment brought up from scratch with the test secrets, removed with its data afterwards."""
    secrets = load_secrets(profile, env=env)
    # The test names (ci, faulttest …) are the tests': one left by another checkout's run is taken over.
    deploy.down(profile, volumes=True, take_over=True)
    deploy.up(profile, secrets)
    try:
        yield Deployment(profile, secrets, {**os.environ, **env})
    finally:
        deploy.down(profile, volumes=True)
        release_claim(profile)


@contextmanager
def deployed_together(profiles: Sequence[Profile], env: dict[str, str]) -> Iterator[list[Deployment]]:
    """Several deployments as `deployed` brings one up, but brought up at the same time: an `up` spends
    most of its time waiting for its own containers' healthchecks and Sentinels. What they share on the
    engine (the image, the host firewall's rules) is made ready first, one at a time, so the parallel
    `up`s only find it in place. All are removed with their data afterwards, also when one failed."""
    secrets = [load_secrets(profile, env=env) for profile in profiles]
    for profile in profiles:
        deploy.down(profile, volumes=True, take_over=True)
    try:
        for profile in profiles:
            image.ensure(profile.image)
            if profile.monitoring.enabled:
                image.ensure_monitoring(profile.monitoring.image)
        firewall.ensure_rules()
        with ThreadPoolExecutor(max_workers=len(profiles)) as pool:
            for _ in pool.map(deploy.up, profiles, secrets):  # re-raises the first failure, after all ended
                pass
        yield [Deployment(profile, own, {**os.environ, **env}) for profile, own in zip(profiles, secrets, strict=True)]
    finally:
        for profile in profiles:
            deploy.down(profile, volumes=True)
            release_claim(profile)


@pytest.fixture(scope="session")
def ci_deployment(secret_env: dict[str, str]) -> Iterator[Deployment]:
    """The `ci` profile, brought up once for the session with the test secrets."""
    with deployed(load_profile("ci"), secret_env) as deployment:
        yield deployment


@pytest.fixture(scope="session")
def fault_deployment(tmp_path_factory: pytest.TempPathFactory, secret_env: dict[str, str]) -> Iterator[Deployment]:
    """The ci profile as `faulttest` on port 6386 for the client and fault tests: killing and
    pausing it never disturbs the shared ci deployment."""
    profile = variant_profile("ci", tmp_path_factory.mktemp("faulttest"), "faulttest", network={"port": 6386})
    with deployed(profile, secret_env) as deployment:
        yield deployment


# TLS on every link with mutual TLS: the settings the TLS tests share one deployment of.
TLS_REQUIRED = {"tls": {"enabled": True, "client_auth": "required"}}


@pytest.fixture(scope="session")
def tls_deployment(tmp_path_factory: pytest.TempPathFactory, secret_env: dict[str, str]) -> Iterator[Deployment]:
    """The ci profile with TLS and client certificates required, as `tlsci` on port 6760."""
    ci = yaml.safe_load((REPO / "profiles" / "ci.yaml").read_text())
    profile = variant_profile(
        "ci",
        tmp_path_factory.mktemp("tlsci"),
        "tlsci",
        network={"port": 6760},
        security={**ci["security"], **TLS_REQUIRED},
    )
    with deployed(profile, secret_env) as deployment:
        yield deployment


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OriginStore]:
    store = OriginStore.open_seeded(tmp_path_factory.mktemp("origin") / "origin.sqlite")
    yield store
    store.close()


def emit(capsys: pytest.CaptureFixture[str], name: str, figures: dict[str, Any]) -> None:
    """Measured figures go to the terminal and reports/client/<name>.json; they are never asserted."""
    target = paths.ROOT / "reports" / "client"
    target.mkdir(parents=True, exist_ok=True)
    text = json.dumps(figures, indent=2, default=str)
    (target / f"{name}.json").write_text(text + "\n")
    with capsys.disabled():
        print(f"\n[{name}] {text}")


def run_start_script(tmp_path: Path, script: str, sentinel_answer: str | None, env: dict[str, str]) -> list[str]:
    """A rendered data node start command run by sh, with redis-cli answering `sentinel_answer` (None: no
    Sentinel answers) and redis-server printing its arguments; the lines it printed."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    answer = f"echo {sentinel_answer}; echo 6379" if sentinel_answer else "exit 1"
    (bin_dir / "redis-cli").write_text(f"#!/bin/sh\n{answer}\n")
    (bin_dir / "redis-server").write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    path = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env={**path, **env}, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()
