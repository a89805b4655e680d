"""The offline image takes Debian's security and point updates, `image check` says when an
image is behind them, and `image.updates: newest` rebuilds it under a running deployment:
real build, real archives (this machine's own mirrors)."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import pytest
from docker.errors import APIError, ImageNotFound

from redis_harness.deploy import image, image_check
from redis_harness.deploy.desired import Desired
from redis_harness.deploy.engine import docker_client
from redis_harness.deploy.plan import Plan, _image_rows
from redis_harness.profile.model import DEFAULT_IMAGE

from .conftest import variant_profile
from .test_converge import cli, new_live, plan_json

pytestmark = pytest.mark.integration


def make_behind(source: str, tag: str, suite: str = "bookworm") -> str:
    """`source` as `tag` (its labels kept), its dpkg database saying a package the suite's security
    archive updates (else its point updates) is older than it is; returns that package."""
    installed = image_check.installed_packages(source)
    archives = image_check.archive_versions(suite)
    updated = [p for p in sorted(installed) if p in archives]
    package = next((p for p in updated if archives[p][1] == f"{suite}-security"), None) or updated[0]
    dockerfile = (
        f"FROM {source}\nUSER root\n"
        f"RUN sed -i '/^Package: {package}$/,/^$/ s/^Version: .*/Version: 0.0-old/' /var/lib/dpkg/status\n"
        "USER 999:999\n"
    )
    docker_client().images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    return package


def test_image_check_refuses_a_missing_image() -> None:
    result = cli("image", "check", "--tag", "redis-harness/redis:cv-no-such", env=dict(os.environ))
    assert result.returncode == 2 and "not present" in result.stderr


STALE_TAG = "redis-harness/redis:cv-stale"
STALE_BASE = "redis-harness/debian-redis-base:bookworm-cv-stale"  # a test tag's own base


def test_newest_rebuilds_a_stale_image_rolls_the_containers_and_rolls_back(tmp_path: Path) -> None:
    """image.updates: newest on a running deployment whose image is behind the security archive:
    `plan` lists the rebuild, `up` rebuilds and replaces the container with every key kept,
    `rollback` puts the image it ran before back under the tag and onto the container."""
    client = docker_client()
    package = make_behind(DEFAULT_IMAGE, STALE_TAG)
    stale_id = client.images.get(STALE_TAG).id
    behind = cli("image", "check", "--tag", STALE_TAG, env=dict(os.environ))
    assert behind.returncode == 1, behind.stdout + behind.stderr
    assert package in behind.stdout and "bookworm-security" in behind.stdout
    live = new_live(tmp_path, "cvimg", 6596, image={"ref": STALE_TAG})
    live.run("down", "--volumes", "--take-over")
    try:
        assert live.run("up").returncode == 0, "pinned: a stale image is run as it is"
        assert plan_json(live) == (0, []), "pinned: no rebuild is ever pending"
        live.keys = {f"price:v1:img:{i}": str(i) for i in range(200)}
        live.admin().mset(live.keys)
        live.raw["image"]["updates"] = "newest"
        live.write()
        rc, changes = plan_json(live)
        assert rc == 1 and any(c["how"] == "rebuild" and package in c["running"] for c in changes), changes
        assert any(c["node"] == "redis" and c["setting"] == "image" and c["how"] == "recreate" for c in changes)
        up = live.run("up")
        assert up.returncode == 0, up.stderr
        rebuilt_id = client.images.get(STALE_TAG).id
        assert rebuilt_id != stale_id and live.container().attrs["Image"] == rebuilt_id
        assert plan_json(live) == (0, []), "the rebuilt image has every update: nothing pending"
        fresh = cli("image", "check", "--tag", STALE_TAG, env=dict(os.environ))
        assert fresh.returncode == 0 and "0 security update(s)" in fresh.stdout, fresh.stdout + fresh.stderr
        assert client.images.get(STALE_BASE), "a test tag gets its own base; the shared one is untouched"
        live.assert_every_key_there()
        back = live.run("rollback")
        assert back.returncode == 0, back.stderr
        assert client.images.get(STALE_TAG).id == stale_id and live.container().attrs["Image"] == stale_id
        live.assert_every_key_there()
        rc, changes = plan_json(live)
        assert rc == 1 and any(c["how"] == "rebuild" for c in changes), "back on the stale image, the rebuild is due"
    finally:
        live.run("down", "--volumes", "--take-over")
        for ref in (STALE_TAG, STALE_BASE, stale_id):
            with contextlib.suppress(ImageNotFound, APIError):
                client.images.remove(ref, force=True)


SUITE_TAG = "redis-harness/redis:day2-trixie"
SUITE_BEHIND_TAG = "redis-harness/redis:day2-trixie-behind"
SUITE_BASE = "redis-harness/debian-redis-base:trixie-day2-trixie"


def check_against_recorded_suite(output: str, package: str, suite: str) -> None:
    """`image check`'s findings come from the archives of `suite`, and only from them."""
    assert package in output and f"{suite}-" in output, output
    assert f"pending in Debian {suite}" in output, output
    assert image.DEFAULT_SUITE not in output.replace(f"Debian {suite}", ""), output


def test_an_image_built_with_suite_is_checked_and_rebuilt_against_that_suite(tmp_path: Path) -> None:
    """`image build --suite trixie` (this bookworm machine's mirrors serve trixie too) records the suite
    in the image; `image check` and image.updates: newest then compare with trixie's archives, and the
    planned rebuild keeps trixie. Checking it against the default suite (the behaviour before the label)
    does not name trixie's archives: shown failing the same check."""
    client = docker_client()
    try:
        built = cli("image", "build", "--tag", SUITE_TAG, "--suite", "trixie", env=dict(os.environ))
        assert built.returncode == 0, built.stderr
        assert client.images.get(SUITE_TAG).labels[image.SUITE_LABEL] == "trixie"
        assert image.built_suite(SUITE_TAG) == "trixie" and image.built_suite(DEFAULT_IMAGE) == image.DEFAULT_SUITE
        package = make_behind(SUITE_TAG, SUITE_BEHIND_TAG, "trixie")
        assert image.built_suite(SUITE_BEHIND_TAG) == "trixie", "an image built FROM it keeps the label"

        behind = cli("image", "check", "--tag", SUITE_BEHIND_TAG, env=dict(os.environ))
        assert behind.returncode in (0, 1), behind.stderr
        check_against_recorded_suite(behind.stdout, package, "trixie")
        default = cli("image", "check", "--tag", SUITE_BEHIND_TAG, "--suite", "bookworm", env=dict(os.environ))
        with pytest.raises(AssertionError):
            check_against_recorded_suite(default.stdout, package, "trixie")

        # image.updates: newest: the plan finds the package behind trixie's archives and rebuilds from trixie.
        profile = variant_profile("ci", tmp_path, "day2img", image={"ref": SUITE_BEHIND_TAG, "updates": "newest"})
        desired = Desired(profile, {"docker-compose.yml": "services: {}\n"}, {}, "", SUITE_BEHIND_TAG)
        plan = Plan()
        _image_rows(plan, desired, {})
        assert plan.rebuild == "trixie", plan
        assert any(c.how == "rebuild" and package in c.running for c in plan.changes), plan.changes
    finally:
        for ref in (SUITE_BEHIND_TAG, SUITE_TAG, SUITE_BASE):
            with contextlib.suppress(ImageNotFound, APIError):
                client.images.remove(ref, force=True)
