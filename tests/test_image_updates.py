"""The offline image takes Debian's security and point updates, and `image check` says when an
image is behind them: real build, real archives (this machine's own mirrors)."""

from __future__ import annotations

import contextlib
import io
import os

import pytest
from docker.errors import ImageNotFound

from redis_harness.deploy import image_check
from redis_harness.deploy.engine import docker_client

from .test_converge import cli

pytestmark = pytest.mark.integration

TEST_TAG = "redis-harness/redis:cv-updates"
TEST_BASE = "redis-harness/debian-redis-base:bookworm-cv-updates"
BEHIND_TAG = "redis-harness/redis:cv-behind"


def test_a_fresh_build_has_every_update_and_a_main_only_package_is_caught() -> None:
    env = dict(os.environ)
    try:
        built = cli("image", "build", "--tag", TEST_TAG, env=env)
        assert built.returncode == 0, built.stderr
        assert docker_client().images.get(TEST_BASE), "a test tag gets its own base, the shared one is untouched"
        fresh = cli("image", "check", "--tag", TEST_TAG, env=env)
        assert fresh.returncode == 0, fresh.stdout + fresh.stderr
        assert "0 security update(s)" in fresh.stdout
        # A broken variant: the same image whose dpkg database records an older version of a
        # package the security archive carries. check must flag it and exit 1.
        installed = image_check.installed_packages(TEST_TAG)
        security = image_check.archive_versions("bookworm")
        package = next(p for p in sorted(installed) if security.get(p, ("", ""))[1] == "bookworm-security")
        dockerfile = (
            f"FROM {TEST_TAG}\nUSER root\n"
            f"RUN sed -i '/^Package: {package}$/,/^$/ s/^Version: .*/Version: 0.0-old/' /var/lib/dpkg/status\n"
        )
        docker_client().images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=BEHIND_TAG, rm=True)
        behind = cli("image", "check", "--tag", BEHIND_TAG, env=env)
        assert behind.returncode == 1, behind.stdout + behind.stderr
        assert package in behind.stdout and "bookworm-security" in behind.stdout
    finally:
        for ref in (BEHIND_TAG, TEST_TAG, TEST_BASE):
            with contextlib.suppress(ImageNotFound):
                docker_client().images.remove(ref, force=True)


def test_image_check_refuses_a_missing_image() -> None:
    result = cli("image", "check", "--tag", "redis-harness/redis:cv-no-such", env=dict(os.environ))
    assert result.returncode == 2 and "not present" in result.stderr
