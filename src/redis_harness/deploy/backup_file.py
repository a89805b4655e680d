"""A backup file: one plain tar holding `manifest.json` and the snapshot `dump.rdb`.

Pure logic, no Docker and no Redis: the manifest, the RDB header's facts, writing the file and
every reason to refuse one. A restore reads the whole file through `open_backup` before it
touches a deployment, so a truncated, corrupted, foreign or too-new file changes nothing.

The manifest records what an operator asks of a backup (which deployment, topology, node, Redis
version, key count, when) and the SHA-256 of the RDB; the key counts come from the RDB's own
RESIZEDB record (the forked child's exact figures), not from a DBSIZE taken beside the fork.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from redis_harness.errors import BadInput

FORMAT = "redis-harness-backup"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
RDB_NAME = "dump.rdb"
CHUNK = 1 << 20

# RDB opcodes met before the first key (src/rdb.h).
_AUX, _SELECTDB, _RESIZEDB, _EOF, _FUNCTION2, _FUNCTION = 0xFA, 0xFE, 0xFB, 0xFF, 0xF5, 0xF6


@dataclass(frozen=True)
class RdbFacts:
    """What the head of an RDB says: its format version, the Redis that wrote it, the first database's size."""

    rdb_version: int
    redis_version: str | None  # the `redis-ver` aux field
    db: int | None  # the first database in the file (None: the file holds no key)
    keys: int
    keys_with_ttl: int


@dataclass(frozen=True)
class Manifest:
    profile: str
    topology: str
    node: str  # the compose service the snapshot was taken on
    role: str  # primary | replica
    redis_version: str  # INFO server of that node
    rdb_version: int
    keys: int
    keys_with_ttl: int
    created: str  # UTC, ISO 8601
    rdb_bytes: int
    rdb_sha256: str
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2) + "\n").encode()


@dataclass(frozen=True)
class Backup:
    """A backup file read and checked: its manifest and the verified RDB, extracted to `rdb_path`."""

    path: Path
    manifest: Manifest
    rdb_path: Path
    facts: RdbFacts


# --- the RDB head ------------------------------------------------------------------------------


class _Short(Exception):
    """The RDB ends inside its header."""


def _take(stream: IO[bytes], n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise _Short
    return data


def _length(stream: IO[bytes]) -> tuple[int, bool]:
    """An RDB length; (encoding, True) when the byte says a special string encoding follows."""
    first = _take(stream, 1)[0]
    kind = first >> 6
    if kind == 0:
        return first & 0x3F, False
    if kind == 1:
        return ((first & 0x3F) << 8) | _take(stream, 1)[0], False
    if kind == 3:
        return first & 0x3F, True
    if first == 0x80:
        return struct.unpack(">I", _take(stream, 4))[0], False
    if first == 0x81:
        return struct.unpack(">Q", _take(stream, 8))[0], False
    raise ValueError(f"unknown length encoding 0x{first:02x}")


def _lzf(data: bytes, size: int) -> bytes:
    """LZF decompression (liblzf's format, as Redis writes compressed strings)."""
    out = bytearray()
    i = 0
    while i < len(data):
        ctrl = data[i]
        i += 1
        if ctrl < 32:  # a literal run of ctrl + 1 bytes
            out += data[i : i + ctrl + 1]
            i += ctrl + 1
            continue
        length = ctrl >> 5
        if length == 7:
            length += data[i]
            i += 1
        ref = len(out) - ((ctrl & 0x1F) << 8) - data[i] - 1
        i += 1
        for _ in range(length + 2):  # byte by byte: a back reference may overlap what it copies
            out.append(out[ref])
            ref += 1
    if len(out) != size:
        raise ValueError("LZF string of the wrong length")
    return bytes(out)


def _string(stream: IO[bytes]) -> bytes:
    length, encoded = _length(stream)
    if not encoded:
        return _take(stream, length)
    if length in (0, 1, 2):  # an integer stored as 1, 2 or 4 little-endian bytes
        size = 1 << length
        return str(int.from_bytes(_take(stream, size), "little", signed=True)).encode()
    if length == 3:
        compressed, size = _length(stream)[0], _length(stream)[0]
        return _lzf(_take(stream, compressed), size)
    raise ValueError(f"unknown string encoding {length}")


def rdb_facts(stream: IO[bytes]) -> RdbFacts:
    """Read an RDB's head up to the first database's RESIZEDB record. ValueError when it is not an RDB."""
    try:
        magic = _take(stream, 9)
        if magic[:5] != b"REDIS" or not magic[5:].isdigit():
            raise ValueError("no REDIS signature")
        rdb_version = int(magic[5:])
        aux: dict[bytes, bytes] = {}
        while True:
            opcode = _take(stream, 1)[0]
            if opcode == _AUX:
                key = _string(stream)
                aux[key] = _string(stream)
            elif opcode in (_FUNCTION2, _FUNCTION):
                _string(stream)
            elif opcode == _EOF:
                return RdbFacts(rdb_version, _text(aux.get(b"redis-ver")), None, 0, 0)
            elif opcode == _SELECTDB:
                db = _length(stream)[0]
                if _take(stream, 1)[0] != _RESIZEDB:
                    raise ValueError("no RESIZEDB record after SELECTDB")
                keys, expires = _length(stream)[0], _length(stream)[0]
                return RdbFacts(rdb_version, _text(aux.get(b"redis-ver")), db, keys, expires)
            else:
                raise ValueError(f"unexpected opcode 0x{opcode:02x} before the first database")
    except _Short:
        raise ValueError("the RDB ends inside its header") from None


def _text(value: bytes | None) -> str | None:
    return value.decode("utf-8", "replace") if value is not None else None


# --- versions --------------------------------------------------------------------------------


def version_tuple(version: str) -> tuple[int, ...]:
    """`7.0.15` -> (7, 0, 15); ValueError for anything else."""
    parts = version.strip().split(".")
    if not 1 <= len(parts) <= 4 or not all(p.isdigit() for p in parts):
        raise ValueError(f"not a Redis version: {version!r}")
    return tuple(int(p) for p in parts)


def newer_than(backup: str, target: str) -> bool:
    """Whether a snapshot written by Redis `backup` may not load into Redis `target`.

    The RDB format changes only with a minor release (7.0: 10, 7.2: 11, 7.4: 12), so a patch
    release newer than the target's still loads; a newer minor or major may not."""
    return version_tuple(backup)[:2] > version_tuple(target)[:2]


# --- writing -------------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _member(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o600, mtime
    return info


def write_backup(out: Path, manifest: Manifest, rdb: Path) -> None:
    """Write the backup to `out` (mode 0600: it holds the data) through a temporary file beside it,
    so a failed or interrupted backup never leaves a file that looks whole."""
    partial = out.with_name(f".{out.name}.partial")
    mtime = int(datetime.fromisoformat(manifest.created).timestamp())
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
            text = manifest.to_json()
            tar.addfile(_member(MANIFEST_NAME, len(text), mtime), io.BytesIO(text))
            with rdb.open("rb") as f:
                tar.addfile(_member(RDB_NAME, manifest.rdb_bytes, mtime), f)
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


# --- reading and refusing ----------------------------------------------------------------------


def _refuse(path: Path, why: str) -> BadInput:
    return BadInput(f"restore: {path} {why}; nothing changed")


def not_a_backup(path: Path, detail: str) -> BadInput:
    return _refuse(path, f"is not a redis-harness backup ({detail}); give a file `redis-harness backup` wrote")


def truncated(path: Path, detail: str) -> BadInput:
    return _refuse(path, f"is truncated or corrupted ({detail}); use another copy of the backup")


def _manifest_from(path: Path, data: bytes) -> Manifest:
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise not_a_backup(path, f"{MANIFEST_NAME} is not JSON") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise not_a_backup(path, f"{MANIFEST_NAME} does not say format: {FORMAT}")
    if raw.get("format_version") != FORMAT_VERSION:
        raise _refuse(
            path,
            f"has backup format version {raw.get('format_version')!r}; this redis-harness reads "
            f"version {FORMAT_VERSION}; restore it with the redis-harness that wrote it",
        )
    try:
        manifest = Manifest(**raw)
        version_tuple(manifest.redis_version)
    except (TypeError, ValueError) as exc:
        raise not_a_backup(path, f"{MANIFEST_NAME} is incomplete: {exc}") from None
    return manifest


@contextmanager
def open_backup(path: Path, workdir: Path) -> Iterator[Backup]:
    """Read and check a whole backup file: a tar with the manifest, then the RDB, whose size and
    SHA-256 match the manifest and whose head is an RDB's. The RDB is extracted into `workdir`
    (the caller's private temporary folder) for the restore to send on. BadInput otherwise."""
    path = Path(path)
    if not path.is_file():
        raise _refuse(path, "does not exist or is not a file; give the path `redis-harness backup` printed")
    try:
        with tarfile.open(path, mode="r:") as tar:
            members = {m.name: m for m in tar.getmembers()}
            if MANIFEST_NAME not in members:
                raise not_a_backup(path, f"no {MANIFEST_NAME} in it")
            manifest_file = tar.extractfile(members[MANIFEST_NAME])
            if manifest_file is None:
                raise not_a_backup(path, f"{MANIFEST_NAME} is not a file")
            manifest = _manifest_from(path, manifest_file.read())
            if RDB_NAME not in members or not members[RDB_NAME].isfile():
                raise truncated(path, f"no {RDB_NAME} in it")
            rdb_path = workdir / RDB_NAME
            digest, size = hashlib.sha256(), 0
            source = tar.extractfile(members[RDB_NAME])
            assert source is not None
            with rdb_path.open("wb") as out:
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
    except tarfile.ReadError as exc:
        if "unexpected end of data" in str(exc) or _starts_like_a_backup(path):
            raise truncated(path, "the file ends early") from None
        raise not_a_backup(path, f"not a tar file: {exc}") from None
    except (EOFError, tarfile.TarError) as exc:
        raise truncated(path, str(exc) or exc.__class__.__name__) from None
    facts = check_rdb(path, manifest, size, digest.hexdigest(), rdb_path)
    yield Backup(path, manifest, rdb_path, facts)


def _starts_like_a_backup(path: Path) -> bool:
    """Whether the file begins as `write_backup` begins one (the manifest's tar header, or a piece
    of it): a tar that then fails to read is a backup cut short, not some other file."""
    with path.open("rb") as f:
        name = f.read(100).split(b"\0")[0]
    return bool(name) and MANIFEST_NAME.encode().startswith(name)


def check_rdb(path: Path, manifest: Manifest, size: int, sha256: str, rdb_path: Path) -> RdbFacts:
    """The RDB is the one the manifest describes: its size, its SHA-256, an RDB head that agrees."""
    if size != manifest.rdb_bytes:
        raise truncated(path, f"{RDB_NAME} has {size} bytes, the manifest says {manifest.rdb_bytes}")
    if sha256 != manifest.rdb_sha256:
        raise truncated(path, f"SHA-256 of {RDB_NAME} is {sha256[:12]}…, the manifest says {manifest.rdb_sha256[:12]}…")
    with rdb_path.open("rb") as f:
        try:
            facts = rdb_facts(f)
        except ValueError as exc:
            raise not_a_backup(path, f"{RDB_NAME} is not an RDB snapshot: {exc}") from None
    return facts


def check_version(backup: Backup, target: str, where: str) -> None:
    """Refuse a snapshot written by a newer Redis than the target runs (as the manifest or the RDB head says)."""
    for written_by in (backup.manifest.redis_version, backup.facts.redis_version):
        if written_by is not None and _parses(written_by) and newer_than(written_by, target):
            raise _refuse(
                backup.path,
                f"was written by Redis {written_by}, newer than the {target} {where} runs (an RDB of a newer "
                "Redis does not load into an older one); restore into a deployment with that version or newer",
            )


def _parses(version: str) -> bool:
    try:
        version_tuple(version)
    except ValueError:
        return False
    return True
