"""Backup files without containers: the RDB head, the manifest, writing, and every refusal; the
restore's install script run in a temporary folder; the integration tests' comparisons on broken data."""

from __future__ import annotations

import io
import json
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from redis_harness.deploy.backup_file import (
    MANIFEST_NAME,
    RDB_NAME,
    Manifest,
    check_version,
    newer_than,
    open_backup,
    rdb_facts,
    sha256_of,
    write_backup,
)
from redis_harness.deploy.restore import Layout, install_script
from redis_harness.errors import BadInput
from tests.backup_checks import key_differences, prefix_problems


def _str(value: bytes) -> bytes:
    assert len(value) < 64
    return bytes([len(value)]) + value


def rdb(version: str = "7.0.15", keys: int = 3, expires: int = 1, rdb_version: int = 10) -> bytes:
    """A small RDB as Redis 7.0 lays one out: aux fields (plain, int-encoded, LZF), a function,
    SELECTDB + RESIZEDB, key records, EOF and an (unchecked) CRC64."""
    head = f"REDIS{rdb_version:04d}".encode()
    head += b"\xfa" + _str(b"redis-ver") + _str(version.encode())
    head += b"\xfa" + _str(b"redis-bits") + b"\xc0\x40"  # int8-encoded 64
    head += b"\xfa" + _str(b"lzf-aux") + b"\xc3\x06\x09" + b"\x02abc\x80\x02"  # LZF "abcabcabc"
    head += b"\xf5" + _str(b"#!lua name=lib\n")
    head += b"\xfe\x00\xfb" + bytes([keys, expires])
    body = b"".join(b"\x00" + _str(f"k{i}".encode()) + _str(b"v") for i in range(keys))
    return head + body + b"\xff" + b"\x00" * 8


def make_backup(tmp_path: Path, data: bytes | None = None, **manifest_fields: object) -> Path:
    data = rdb() if data is None else data
    source = tmp_path / "source.rdb"
    source.write_bytes(data)
    with source.open("rb") as f:
        facts = rdb_facts(f)
    fields = {
        "profile": "dev",
        "topology": "standalone",
        "node": "redis",
        "role": "primary",
        "redis_version": "7.0.15",
        "rdb_version": facts.rdb_version,
        "keys": facts.keys,
        "keys_with_ttl": facts.keys_with_ttl,
        "created": "2026-12-04T10:00:00+00:00",
        "rdb_bytes": len(data),
        "rdb_sha256": sha256_of(source),
        **manifest_fields,
    }
    out = tmp_path / "backup.tar"
    write_backup(out, Manifest(**fields), source)  # type: ignore[arg-type]
    return out


def repack(path: Path, out: Path, manifest: dict | bytes | None = None, data: bytes | None = None) -> Path:
    """The backup at `path` with its manifest or RDB replaced (the other member kept as it was)."""
    with tarfile.open(path) as tar:
        old_manifest = tar.extractfile(MANIFEST_NAME).read()  # type: ignore[union-attr]
        old_data = tar.extractfile(RDB_NAME).read()  # type: ignore[union-attr]
    text = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode() if manifest else old_manifest
    with tarfile.open(out, "w") as tar:
        for name, content in ((MANIFEST_NAME, text), (RDB_NAME, old_data if data is None else data)):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return out


def manifest_of(path: Path) -> dict:
    with tarfile.open(path) as tar:
        return json.loads(tar.extractfile(MANIFEST_NAME).read())  # type: ignore[union-attr]


def refusal(path: Path, tmp_path: Path) -> str:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    with pytest.raises(BadInput) as caught, open_backup(path, work):
        pass
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"restore: {path} ") and message.endswith("nothing changed")
    return message


# --- the RDB head -------------------------------------------------------------------------


def test_rdb_facts_reads_the_version_and_the_first_databases_size() -> None:
    facts = rdb_facts(io.BytesIO(rdb("7.2.4", keys=5, expires=2, rdb_version=11)))
    assert (facts.rdb_version, facts.redis_version, facts.db, facts.keys, facts.keys_with_ttl) == (11, "7.2.4", 0, 5, 2)


def test_rdb_facts_of_an_empty_dataset() -> None:
    empty = b"REDIS0010\xfa" + _str(b"redis-ver") + _str(b"7.0.15") + b"\xff" + b"\0" * 8
    facts = rdb_facts(io.BytesIO(empty))
    assert (facts.db, facts.keys, facts.redis_version) == (None, 0, "7.0.15")


@pytest.mark.parametrize(
    "data, why",
    [
        (b"PK\x03\x04 a zip file", "no REDIS signature"),
        (rdb()[:20], "ends inside its header"),
        (b"REDIS0010\xfe\x00\x00k", "no RESIZEDB"),
        (b"REDIS0010\x42", "unexpected opcode"),
    ],
)
def test_rdb_facts_refuses_what_is_not_an_rdb(data: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        rdb_facts(io.BytesIO(data))


def test_lzf_back_references_may_overlap_what_they_copy() -> None:
    """A run of one byte: a literal `a`, then 9 bytes copied from 1 back."""
    head = b"REDIS0010\xfa" + _str(b"redis-ver") + b"\xc3\x05\x0a" + b"\x00a\xe0\x00\x00" + b"\xff"
    assert rdb_facts(io.BytesIO(head)).redis_version == "a" * 10


# --- versions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "backup, target, refused",
    [
        ("7.0.15", "7.0.15", False),
        ("7.0.15", "7.0.11", False),  # a newer patch release: same RDB format
        ("7.0.15", "7.2.4", False),
        ("7.2.4", "7.0.15", True),  # RDB 11 does not load into 7.0 (RDB 10)
        ("8.0.0", "7.4.1", True),
    ],
)
def test_newer_than(backup: str, target: str, refused: bool) -> None:
    assert newer_than(backup, target) is refused


# --- writing and reading ------------------------------------------------------------------


def test_a_backup_round_trips_with_mode_0600_and_no_partial_file(tmp_path: Path) -> None:
    path = make_backup(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    with tarfile.open(path) as tar:
        assert tar.getnames() == [MANIFEST_NAME, RDB_NAME]
    work = tmp_path / "work"
    work.mkdir()
    with open_backup(path, work) as backup:
        assert backup.manifest.keys == 3 and backup.facts.redis_version == "7.0.15"
        assert backup.rdb_path.read_bytes() == rdb()
        check_version(backup, "7.0.15", "target")


def test_an_interrupted_write_leaves_no_file(tmp_path: Path) -> None:
    source = tmp_path / "missing.rdb"
    created = "2026-12-04T10:00:00+00:00"
    manifest = Manifest("dev", "standalone", "redis", "primary", "7.0.15", 10, 0, 0, created, 5, "x")
    with pytest.raises(FileNotFoundError):
        write_backup(tmp_path / "out.tar", manifest, source)
    assert list(tmp_path.iterdir()) == []


# --- every refusal, one line each ---------------------------------------------------------


@pytest.mark.parametrize("keep", [0.999, 0.5, 0.1, 0.0001])
def test_a_truncated_file_is_refused(tmp_path: Path, keep: float) -> None:
    data = rdb(keys=60) + b"x" * 20000
    whole = make_backup(tmp_path, data)
    # Headers of the manifest and the RDB, the manifest's block, the RDB: cut inside those (the
    # zeros tar pads its end with carry nothing; a file cut there is whole).
    carried = 3 * 512 + len(data)
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole.read_bytes()[: max(1, int(carried * keep))])
    assert "is truncated or corrupted" in refusal(cut, tmp_path)


def test_a_corrupted_byte_is_caught_by_the_checksum_alone(tmp_path: Path) -> None:
    """Broken variant: one flipped byte in a key keeps the size and the RDB head, so without the
    SHA-256 the file would pass; with it, it is refused."""
    good = make_backup(tmp_path)
    data = bytearray(rdb())
    data[-12] ^= 0x01  # inside the last key's value
    flipped = repack(good, tmp_path / "flipped.tar", data=bytes(data))
    assert rdb_facts(io.BytesIO(bytes(data))) == rdb_facts(io.BytesIO(rdb()))  # the head still reads the same
    assert "SHA-256 of dump.rdb is" in refusal(flipped, tmp_path)


def test_an_rdb_of_another_size_is_refused(tmp_path: Path) -> None:
    good = make_backup(tmp_path)
    longer = repack(good, tmp_path / "longer.tar", data=rdb() + b"extra")
    assert f"has {len(rdb()) + 5} bytes, the manifest says {len(rdb())}" in refusal(longer, tmp_path)


def test_a_manifest_naming_a_newer_redis_is_refused(tmp_path: Path) -> None:
    good = make_backup(tmp_path)
    path = repack(good, tmp_path / "newer.tar", manifest={**manifest_of(good), "redis_version": "7.2.4"})
    work = tmp_path / "work"
    work.mkdir()
    with open_backup(path, work) as backup, pytest.raises(BadInput) as caught:
        check_version(backup, "7.0.15", "redis-harness-ci")
    message = str(caught.value)
    assert "\n" not in message and "written by Redis 7.2.4, newer than the 7.0.15 redis-harness-ci runs" in message
    check_version(backup, "7.2.0", "redis-harness-ci")  # the same file into 7.2 is fine


def test_an_rdb_written_by_a_newer_redis_is_refused_whatever_the_manifest_says(tmp_path: Path) -> None:
    path = make_backup(tmp_path, rdb("7.4.0", rdb_version=12))  # manifest: 7.0.15 (make_backup's default)
    work = tmp_path / "work"
    work.mkdir()
    with open_backup(path, work) as backup, pytest.raises(BadInput, match="written by Redis 7.4.0"):
        check_version(backup, "7.0.15", "target")


def test_no_tar_at_all_is_not_a_backup(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a backup\n" * 100)
    assert "is not a redis-harness backup (not a tar file" in refusal(path, tmp_path)


def test_a_tar_without_a_manifest_is_not_a_backup(tmp_path: Path) -> None:
    path = tmp_path / "other.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("dump.rdb")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    assert "no manifest.json in it" in refusal(path, tmp_path)


@pytest.mark.parametrize(
    "manifest, why",
    [
        (b"{not json", "manifest.json is not JSON"),
        ({"format": "something-else"}, "does not say format: redis-harness-backup"),
        ({"format": "redis-harness-backup", "format_version": 2}, "has backup format version 2"),
        ({"format": "redis-harness-backup", "format_version": 1, "profile": "dev"}, "manifest.json is incomplete"),
    ],
)
def test_a_manifest_that_is_not_ours_is_refused(tmp_path: Path, manifest: dict | bytes, why: str) -> None:
    path = repack(make_backup(tmp_path), tmp_path / "odd.tar", manifest=manifest)
    assert why in refusal(path, tmp_path)


def test_a_manifest_with_a_version_that_is_no_version_is_refused(tmp_path: Path) -> None:
    good = make_backup(tmp_path)
    path = repack(good, tmp_path / "odd.tar", manifest={**manifest_of(good), "redis_version": "latest"})
    assert "incomplete: not a Redis version: 'latest'" in refusal(path, tmp_path)


def test_an_rdb_member_that_is_not_an_rdb_is_refused(tmp_path: Path) -> None:
    """Its checksum matches (the manifest was made for it), but it is no snapshot."""
    good = make_backup(tmp_path)
    junk = b"just text, checksummed" * 10
    source = tmp_path / "junk"
    source.write_bytes(junk)
    fields = {**manifest_of(good), "rdb_bytes": len(junk), "rdb_sha256": sha256_of(source)}
    path = repack(good, tmp_path / "junk.tar", manifest=fields, data=junk)
    assert "dump.rdb is not an RDB snapshot: no REDIS signature" in refusal(path, tmp_path)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    assert "does not exist or is not a file" in refusal(tmp_path / "nowhere.tar", tmp_path)


# --- the restore's install script ---------------------------------------------------------


def _volumes(tmp_path: Path, replicas: int) -> Path:
    mount = tmp_path / "restore"
    primary = mount / "primary"
    (primary / "appendonlydir").mkdir(parents=True)
    (primary / "appendonlydir" / "appendonly.aof.7.incr.aof").write_text("SET old data\n")
    (primary / "dump.rdb").write_text("old")
    (primary / ".restore-incoming").mkdir()
    (primary / ".restore-incoming" / "dump.rdb").write_bytes(rdb())
    for i in range(replicas):
        replica = mount / f"replica-{i}"
        (replica / "appendonlydir").mkdir(parents=True)
        (replica / "dump.rdb").write_text("old")
        (replica / "keep.me").write_text("not Redis's data")
    return mount


@pytest.mark.parametrize("appendonly", [True, False])
def test_the_install_script_puts_the_rdb_in_place_and_empties_the_replicas(tmp_path: Path, appendonly: bool) -> None:
    mount = _volumes(tmp_path, replicas=2)
    layout = Layout("/data", "dump.rdb", appendonly, "appendonlydir", "appendonly.aof")
    subprocess.run(["sh", "-c", install_script(layout, 2, str(mount))], check=True)
    primary = mount / "primary"
    assert (primary / "dump.rdb").read_bytes() == rdb()
    assert not (primary / ".restore-incoming").exists()
    if appendonly:  # the old AOF gone; the RDB as the only (base) file of a new manifest
        assert sorted(p.name for p in (primary / "appendonlydir").iterdir()) == [
            "appendonly.aof.1.base.rdb",
            "appendonly.aof.manifest",
        ]
        assert (primary / "appendonlydir" / "appendonly.aof.1.base.rdb").read_bytes() == rdb()
        manifest = (primary / "appendonlydir" / "appendonly.aof.manifest").read_text()
        assert manifest == "file appendonly.aof.1.base.rdb seq 1 type b\n"
    else:
        assert not (primary / "appendonlydir").exists()
    for i in range(2):
        assert sorted(p.name for p in (mount / f"replica-{i}").iterdir()) == ["keep.me"]


def test_the_install_script_quotes_odd_names(tmp_path: Path) -> None:
    mount = _volumes(tmp_path, replicas=0)
    layout = Layout("/data", "my dump;rm -rf x.rdb", True, "aof dir", "it's.aof")
    subprocess.run(["sh", "-c", install_script(layout, 0, str(mount))], check=True)
    primary = mount / "primary"
    assert (primary / "my dump;rm -rf x.rdb").read_bytes() == rdb()
    assert (primary / "aof dir" / "it's.aof.manifest").read_text() == "file it's.aof.1.base.rdb seq 1 type b\n"


def test_the_install_script_stops_at_the_first_failure(tmp_path: Path) -> None:
    mount = _volumes(tmp_path, replicas=1)
    (mount / "primary" / ".restore-incoming" / "dump.rdb").unlink()  # nothing arrived
    layout = Layout("/data", "dump.rdb", True, "appendonlydir", "appendonly.aof")
    result = subprocess.run(["sh", "-c", install_script(layout, 1, str(mount))], capture_output=True)
    assert result.returncode != 0
    assert (mount / "replica-0" / "dump.rdb").exists()  # the replicas untouched when the primary failed


# --- the integration tests' comparisons, failing on broken data -------------------------------


def test_key_differences_finds_every_kind_of_loss() -> None:
    expected = {"a": ("1", -1), "b": ("2", 1_000_000), "c": ({"f": "v"}, -1), "d": ("4", 5_000)}
    assert key_differences(expected, dict(expected)) == []
    broken = {"a": ("1", 9_000), "b": ("2", -1), "c": ({"f": "w"}, -1), "d": ("4", 5_010)}
    problems = key_differences({**expected, "e": ("5", -1)}, broken, ttl_tolerance_ms=5)
    assert [p.split(":")[0] for p in problems] == ["a", "b", "c", "d", "e"]
    assert key_differences(expected, broken | {"e": ("5", -1)}, ttl_tolerance_ms=10_000)  # a lost TTL is no tolerance


def test_prefix_problems_finds_gaps_and_lost_acknowledged_writes() -> None:
    assert prefix_problems(range(100), acked_before=50) == []
    assert "not a prefix" in prefix_problems([0, 1, 3], acked_before=0)[0]
    assert "were acknowledged before the backup" in prefix_problems(range(10), acked_before=10)[0]
