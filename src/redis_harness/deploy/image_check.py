"""`image check`: which packages of an image have newer versions in the release's update archives.

The image's installed packages come from dpkg inside a throw-away container
(no network); the archives' versions from apt on the host, with a temporary
state folder and this machine's own mirrors for SUITE-updates and
SUITE-security, SUITE being the suite recorded in the image when it was built.
A pending security update is a finding; so is a point update.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from redis_harness import progress
from redis_harness.deploy import apt_sources, image
from redis_harness.deploy.engine import docker_client
from redis_harness.errors import BadInput, HarnessError


@dataclass(frozen=True)
class Pending:
    package: str
    installed: str
    available: str
    archive: str  # SUITE-security or SUITE-updates

    @property
    def security(self) -> bool:
        return self.archive.endswith("-security")


def installed_packages(ref: str) -> dict[str, str]:
    """Package -> version installed in image `ref` (read by dpkg-query in a container without network)."""
    progress.note(f"reading the packages installed in {ref}")
    container = docker_client().containers.run(
        ref, ["dpkg-query", "-W", "-f", "${Package}\t${Version}\n"], entrypoint=[], network_mode="none", detach=True
    )
    try:
        container.wait()
        output = container.logs(stdout=True, stderr=False)
    finally:
        # With its anonymous /data volume (the image declares one): run(remove=True) would leave it behind.
        container.remove(force=True, v=True)
    packages = {}
    for line in output.decode("utf-8", "replace").splitlines():
        name, _, version = line.partition("\t")
        if version:
            packages[name] = version
    return packages


def _apt(tool: str, folder: Path, *args: str) -> str:
    options = [
        f"-oDir::Etc::SourceList={folder / 'sources.list'}",
        f"-oDir::Etc::SourceParts={folder / 'parts'}",
        f"-oDir::State::Lists={folder / 'lists'}",
        f"-oDir::Cache={folder / 'cache'}",
        "-oDir::State::Status=/dev/null",
        "-oDebug::NoLocking=1",
    ]
    result = subprocess.run([tool, "-q", *options, *args], capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise HarnessError(f"image check: {tool} {args[0]} failed: {tail}")
    return result.stdout


def archive_versions(suite: str) -> dict[str, tuple[str, str]]:
    """Package -> (newest version, archive) in SUITE-updates and SUITE-security."""
    lines = [ln for ln in apt_sources.source_lines(suite) if ln.split()[2] != suite]
    with tempfile.TemporaryDirectory(prefix="redis-harness-apt-") as tmp:
        folder = Path(tmp)
        for sub in ("parts", "lists/partial", "cache/archives/partial"):
            (folder / sub).mkdir(parents=True)
        (folder / "sources.list").write_text("\n".join(lines) + "\n")
        progress.note(f"apt-get update of {', '.join(ln.split()[2] for ln in lines)}")
        _apt("apt-get", folder, "update")
        dump = _apt("apt-cache", folder, "dumpavail")
    newest: dict[str, tuple[str, str]] = {}
    for stanza in dump.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line.startswith(" "))
        name, version = fields.get("Package"), fields.get("Version")
        if not name or not version:
            continue
        # The security archive keeps its files under pool/updates/; the point updates under pool/main/.
        archive = f"{suite}-security" if fields.get("Filename", "").startswith("pool/updates/") else f"{suite}-updates"
        current = newest.get(name)
        if current is None or newer(version, current[0]):
            newest[name] = (version, archive)
    return newest


def newer(a: str, b: str) -> bool:
    """Debian version order, as dpkg itself decides it."""
    return subprocess.run(["dpkg", "--compare-versions", a, "gt", b], capture_output=True).returncode == 0


def pending_updates(ref: str, suite: str | None = None) -> list[Pending]:
    """The packages of `ref` behind `suite`'s update archives; by default the suite recorded in the image."""
    if not docker_client().images.list(name=ref):
        raise BadInput(f"image check: {ref} is not present; build it with `redis-harness image build --tag {ref}`")
    suite = suite or image.built_suite(ref)
    installed = installed_packages(ref)
    available = archive_versions(suite)
    found = []
    for name, version in sorted(installed.items()):
        if name in available and newer(available[name][0], version):
            found.append(Pending(name, version, *available[name]))
    return found
