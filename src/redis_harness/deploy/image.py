"""The Redis image a profile names: present, pulled, or built offline.

Images in the `redis-harness/` namespace are built here from Debian's packages
(mmdebstrap -> docker import -> a short Dockerfile); they are never pulled and
never mistaken for the official image. Any other ref is pulled when missing.
"""

from __future__ import annotations

import os
import re
import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path

from docker.errors import APIError, BuildError, ContainerError, ImageNotFound

from redis_harness import __version__, paths, progress
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
# The harness's own image, for load from inside a Kubernetes cluster (docs/kubernetes.md).
HARNESS_IMAGE = f"redis-harness/harness:{__version__}"
HARNESS_PACKAGES = ("python3", "python3-venv", "ca-certificates")
HARNESS_DOCKERFILE = DOCKERFILE_DIR / "harness" / "Dockerfile"
HARNESS_WHEELS = DOCKERFILE_DIR / "harness" / "wheels"  # in the build context while a build runs
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"  # Debian's
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
    # The default tag's base is shared; any other tag gets its own, so a test build
    # never re-tags the base everybody else builds on.
    own = ref in (DEFAULT_IMAGE, Monitoring.image)
    suffix = "" if own else "-" + re.sub(r"[^A-Za-z0-9_.-]", "-", ref.rsplit(":", 1)[-1])
    base_ref = f"redis-harness/{base_name}:{suite}{suffix}"
    _import_base(suite, packages, base_ref)
    progress.note(f"docker build: {ref} from {DOCKERFILE_DIR.name}/Dockerfile on {base_ref}")
    labels = {SUITE_LABEL: suite, PACKAGES_LABEL: " ".join(packages)}
    return _docker_build(ref, dockerfile_dir, {"BASE": base_ref}, labels)


def _docker_build(
    ref: str, context: Path, buildargs: dict[str, str], labels: dict[str, str], dockerfile: str | None = None
) -> str:
    try:
        image, _ = docker_client().images.build(
            path=str(context), dockerfile=dockerfile, tag=ref, buildargs=buildargs, labels=labels, rm=True, forcerm=True
        )
    except (BuildError, APIError) as exc:
        raise HarnessError(f"image: docker build of {ref} failed: {exc}") from None
    return image.id


def _import_base(suite: str, packages: tuple[str, ...], base_ref: str) -> None:
    """A minimal Debian `suite` root with `packages` (mmdebstrap), imported as the image `base_ref`."""
    with tempfile.TemporaryDirectory(prefix="redis-harness-image-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        _bootstrap_rootfs(suite, rootfs, packages)
        repository, tag = base_ref.rsplit(":", 1)
        progress.note(f"docker import: the root as {base_ref}")
        docker_client().api.import_image(src=str(rootfs), repository=repository, tag=tag)


def build_harness(ref: str = HARNESS_IMAGE, suite: str = DEFAULT_SUITE) -> str:
    """The harness's own image (image/harness/Dockerfile, for the load pods) without a registry; its id.

    The base is a Debian root with Python made by mmdebstrap, as for the Redis image. The package and
    every dependency become wheels in a container of that base (so they fit its Python, markers
    included), on the host's network with the host's CA bundle: a docker build may not reach PyPI
    through a TLS-intercepting proxy. The Dockerfile then installs them with --no-index."""
    if not ref.startswith("redis-harness/"):
        raise BadInput(f"image build-harness: tag {ref!r} must start with redis-harness/ (a local build)")
    base_ref = f"redis-harness/debian-harness-base:{suite}"
    _import_base(suite, HARNESS_PACKAGES, base_ref)
    for old in HARNESS_WHEELS.glob("*.whl"):
        old.unlink()
    try:
        _wheels_in(base_ref)
        progress.note(f"docker build: {ref} from image/harness/Dockerfile on {base_ref}")
        return _docker_build(
            ref,
            paths.ROOT,
            {"BASE": base_ref, "PIP_OPTIONS": "--no-index", "PACKAGE": "redis-harness"},
            {SUITE_LABEL: suite, PACKAGES_LABEL: " ".join(HARNESS_PACKAGES)},
            dockerfile=str(HARNESS_DOCKERFILE.relative_to(paths.ROOT)),
        )
    finally:
        for built in HARNESS_WHEELS.glob("*.whl"):
            built.unlink()


def _wheels_in(base_ref: str) -> None:
    """`pip wheel` of the package in a container of `base_ref`, into HARNESS_WHEELS (as this user)."""
    progress.note("pip wheel: the package and its dependencies, for the base's Python")
    sources = ("pyproject.toml", "README.md", "src")
    mounts = {str(paths.ROOT / name): {"bind": f"/src/{name}", "mode": "ro"} for name in sources}
    mounts[str(HARNESS_WHEELS)] = {"bind": "/wheels", "mode": "rw"}
    environment = {"HOME": "/tmp", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    ca = _host_ca_bundle()
    if ca is not None:
        mounts[ca] = {"bind": "/etc/ssl/host-ca.crt", "mode": "ro"}
        environment["PIP_CERT"] = "/etc/ssl/host-ca.crt"
    script = "cp -r /src /tmp/src && python3 -m venv /tmp/venv && /tmp/venv/bin/pip wheel -q -w /wheels /tmp/src"
    try:
        docker_client().containers.run(
            base_ref,
            ["sh", "-c", script],
            volumes=mounts,
            environment=environment,
            network_mode="host",
            user=f"{os.getuid()}:{os.getgid()}",
            remove=True,
            stderr=True,
        )
    except ContainerError as exc:
        said = (exc.stderr or b"").decode(errors="replace").strip().splitlines() or ["no output"]
        raise HarnessError(f"image build-harness: pip wheel failed: {said[-1]}") from None


def _host_ca_bundle() -> str | None:
    """The CA bundle this host's own pip trusts (a proxy's CA may be in it), if there is one."""
    for candidate in (os.environ.get("PIP_CERT"), ssl.get_default_verify_paths().cafile, SYSTEM_CA_BUNDLE):
        if candidate and Path(candidate).is_file():
            return str(Path(candidate).resolve())
    return None


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
