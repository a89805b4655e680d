"""The Redis image a profile names: present, pulled, or built offline.

Images in the `redis-harness/` namespace are built here from Debian's packages
(mmdebstrap -> docker import -> a short Dockerfile); they are never pulled and
never mistaken for the official image. Any other ref is pulled when missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from docker.errors import APIError, BuildError, ImageNotFound

from redis_harness import paths, progress
from redis_harness.deploy import apt_sources
from redis_harness.deploy.engine import docker_client
from redis_harness.errors import BadInput, HarnessError
from redis_harness.profile.model import DEFAULT_IMAGE, Image, Monitoring

OFFLINE_PACKAGES = ("redis-server", "redis-tools", "procps", "iproute2")
DEFAULT_SUITE = "bookworm"
# The Debian suite an offline image was built from, recorded at build time: `image check` and
# `image.updates: newest` compare it with that suite's archives, and a rebuild keeps it.
SUITE_LABEL = "org.redis-harness.debian-suite"
DOCKERFILE_DIR = paths.ROOT / "image"
# The tags `up` may build when they are missing: the project's own default.
BUILDABLE_TAGS = (DEFAULT_IMAGE,)
# Prometheus, Alertmanager, redis_exporter and blackbox_exporter (the nodes' certificate expiry over TLS) in one
# image (monitoring.enabled); promtool comes with prometheus.
MONITORING_PACKAGES = (
    "prometheus",
    "prometheus-alertmanager",
    "prometheus-redis-exporter",
    "prometheus-blackbox-exporter",
)
# The packages an offline image was built with: a monitoring image from before a package was added is built again.
PACKAGES_LABEL = "org.redis-harness.packages"
MONITORING_DOCKERFILE_DIR = DOCKERFILE_DIR / "monitoring"


def is_present(ref: str) -> bool:
    try:
        docker_client().images.get(ref)
    except ImageNotFound:
        return False
    return True


def built_suite(ref: str) -> str:
    """The Debian suite image `ref` was built from: its label, or DEFAULT_SUITE for an image built
    before the label was recorded (or not built here)."""
    try:
        labels = docker_client().images.get(ref).labels or {}
    except ImageNotFound:
        return DEFAULT_SUITE
    return labels.get(SUITE_LABEL) or DEFAULT_SUITE


def _bootstrap_rootfs(suite: str, out: Path, packages: tuple[str, ...] = OFFLINE_PACKAGES) -> None:
    if shutil.which("mmdebstrap") is None:
        raise BadInput(
            "image: mmdebstrap is missing for the offline build; install it with `sudo scripts/bootstrap-host`"
        )
    cmd = [
        "mmdebstrap",
        "--quiet",
        "--variant=minbase",
        f"--include={','.join(packages)}",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        suite,
        str(out),
        # The release, its point updates and its security updates, from this machine's own mirrors.
        *apt_sources.source_lines(suite),
    ]
    progress.note(f"mmdebstrap: a minimal Debian {suite} root with {', '.join(packages)}")
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise HarnessError(f"image: mmdebstrap failed for suite {suite}: {tail}")


def build_offline(
    ref: str,
    suite: str = DEFAULT_SUITE,
    packages: tuple[str, ...] = OFFLINE_PACKAGES,
    dockerfile_dir: Path = DOCKERFILE_DIR,
    base_name: str = "debian-redis-base",
) -> str:
    """Build `ref` from Debian `suite` packages; returns the image id."""
    if not ref.startswith("redis-harness/"):
        raise BadInput(f"image build: tag {ref!r} must start with redis-harness/ so it is never taken for upstream")
    client = docker_client()
    # The default tag's base is shared; any other tag gets its own, so a test build
    # never re-tags the base everybody else builds on.
    own = ref in (DEFAULT_IMAGE, Monitoring.image)
    suffix = "" if own else "-" + re.sub(r"[^A-Za-z0-9_.-]", "-", ref.rsplit(":", 1)[-1])
    base_ref = f"redis-harness/{base_name}:{suite}{suffix}"
    with tempfile.TemporaryDirectory(prefix="redis-harness-image-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        _bootstrap_rootfs(suite, rootfs, packages)
        repository, tag = base_ref.rsplit(":", 1)
        progress.note(f"docker import: the root as {base_ref}")
        client.api.import_image(src=str(rootfs), repository=repository, tag=tag)
    progress.note(f"docker build: {ref} from {DOCKERFILE_DIR.name}/Dockerfile on {base_ref}")
    try:
        image, _ = client.images.build(
            path=str(dockerfile_dir),
            tag=ref,
            buildargs={"BASE": base_ref},
            labels={SUITE_LABEL: suite, PACKAGES_LABEL: " ".join(packages)},
            rm=True,
            forcerm=True,
        )
    except (BuildError, APIError) as exc:
        raise HarnessError(f"image: docker build of {ref} failed: {exc}") from None
    return image.id


def ensure(image: Image) -> str:
    """Make the profile's image available; says how: present, pulled or built.

    Only the project's own default tag is built on demand: any other missing
    `redis-harness/` tag is most likely a typo, and building it would re-tag the
    shared base image under everybody's feet."""
    if is_present(image.ref):
        return "present"
    if image.is_offline_build:
        if image.ref not in BUILDABLE_TAGS:
            raise BadInput(
                f"image.ref: {image.ref} is not present and only {', '.join(BUILDABLE_TAGS)} is built on demand; "
                f"fix the tag, or build it on purpose with `redis-harness image build --tag {image.ref}`"
            )
        build_offline(image.ref)
        return "built offline"
    progress.note(f"docker pull: {image.ref}")
    try:
        docker_client().images.pull(image.ref)
    except APIError as exc:
        reason = str(exc).splitlines()[0][:160]
        raise BadInput(
            f"image.ref: {image.ref} is not present and cannot be pulled ({reason}); "
            "set image.ref: redis-harness/redis:7.0-bookworm to build it offline"
        ) from None
    return "pulled"


def _built_packages(ref: str) -> str | None:
    """The packages label of image `ref`, or None when it is missing (or was built before the label)."""
    try:
        labels = docker_client().images.get(ref).labels or {}
    except ImageNotFound:
        return None
    return labels.get(PACKAGES_LABEL)


def ensure_monitoring(ref: str) -> str:
    """The monitoring image (Prometheus, Alertmanager, redis_exporter, blackbox_exporter): present with every
    package, or built offline (again, when an older build lacks one)."""
    if _built_packages(ref) == " ".join(MONITORING_PACKAGES):
        return "present"
    build_offline(
        ref,
        packages=MONITORING_PACKAGES,
        dockerfile_dir=MONITORING_DOCKERFILE_DIR,
        base_name="debian-monitoring-base",
    )
    return "built offline"
