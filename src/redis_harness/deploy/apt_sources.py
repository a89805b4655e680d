"""The machine's own Debian mirrors, read from /etc/apt, for the image build and `image check`.

The repository never names a mirror host: the offline image takes its
packages (and the security and point-release updates) from wherever this
machine's apt already does.
"""

from __future__ import annotations

from pathlib import Path

from redis_harness.errors import BadInput

APT_DIR = Path("/etc/apt")
# The archives an image of `suite` takes packages from: the release, its point
# updates, and its security updates.
UPDATE_SUFFIXES = ("", "-updates", "-security")


def _entries(apt_dir: Path) -> list[tuple[str, list[str]]]:
    """(URI, suites) of every enabled `deb` source, one-line and deb822 formats."""
    found: list[tuple[str, list[str]]] = []
    one_line = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in one_line:
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            tokens = line.split("#", 1)[0].split()
            if len(tokens) >= 3 and tokens[0] == "deb":
                rest = [t for t in tokens[1:] if not t.startswith("[")]
                if len(rest) >= 2:
                    found.append((rest[0], [rest[1]]))
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        for stanza in path.read_text(encoding="utf-8", errors="replace").split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
                continue
            for uri in fields.get("uris", "").split():
                found.append((uri, fields.get("suites", "").split()))
    return found


def _mirror_for(wanted: str, entries: list[tuple[str, list[str]]]) -> str | None:
    """The URI serving `wanted`: the entry naming it, else the one serving the same archive of a Debian
    release the machine does use (one with a -security archive: third-party sources have none). Debian's
    mirrors carry every current release, so `image build --suite trixie` on bookworm reuses its mirrors."""
    named = next((u for u, suites in entries if wanted in suites), None)
    if named is not None:
        return named
    suffix = wanted[wanted.index("-") :] if "-" in wanted else ""
    releases = [s.removesuffix("-security") for _, suites in entries for s in suites if s.endswith("-security")]
    return next((u for u, suites in entries for release in releases if release + suffix in suites), None)


def source_lines(suite: str, apt_dir: Path = APT_DIR) -> list[str]:
    """`deb URI SUITE main` lines for suite, suite-updates and suite-security from this machine's
    sources (another release's mirrors when the machine names none for `suite`); BadInput when the
    machine has no mirror for a release or for security updates."""
    entries = _entries(apt_dir)
    lines = []
    for suffix in UPDATE_SUFFIXES:
        wanted = suite + suffix
        uri = _mirror_for(wanted, entries)
        if uri is None and suffix == "-updates":
            # Point updates come from the release's own mirror when no line names them.
            uri = _mirror_for(suite, entries)
        if uri is None:
            raise BadInput(
                f"image: this machine's apt sources ({apt_dir}) have no entry for {wanted}; "
                f"add one (e.g. `deb <your mirror> {wanted} main`) so the image gets its updates"
            )
        lines.append(f"deb {uri} {wanted} main")
    return lines
