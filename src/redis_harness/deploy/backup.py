"""`backup`: a consistent snapshot of a deployment, copied out of its container into one file.

The snapshot is the RDB a BGSAVE writes: a fork's point-in-time copy of the whole dataset. On a
topology with replicas it is taken on a replica that is linked and has caught up with the
primary's replication offset read at the start, so the primary does not fork and the snapshot
still holds every write acknowledged before the backup began. The RDB leaves the container
through the Docker API (get_archive) and is written with its manifest by deploy.backup_file.
"""

from __future__ import annotations

import tarfile
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from redis_harness import paths, progress
from redis_harness.deploy import lock, ownership
from redis_harness.deploy.backup_file import Manifest, rdb_facts, sha256_of, write_backup
from redis_harness.deploy.containers import data_containers
from redis_harness.deploy.running import SERVICE_LABEL, node_client
from redis_harness.errors import BadInput, HarnessError
from redis_harness.paths import profile_argument
from redis_harness.profile.credentials import Secrets
from redis_harness.profile.model import Profile

POLL_S = 0.1
CATCH_UP_TIMEOUT_S = 10.0
SAVE_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Node:
    service: str
    container: Any
    client: redis.Redis
    role: str  # primary | replica


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest: Manifest
    seconds: float
    why_primary: str | None  # on a topology with replicas: why the snapshot was taken on the primary


def refuse_cluster(profile: Profile, command: str) -> None:
    if profile.topology.cluster is not None:
        raise BadInput(
            f"{command}: {profile.name} is a Redis Cluster; {command} handles standalone, replication and "
            "sentinel topologies only (a cluster needs one snapshot per shard)"
        )


def default_out(profile: Profile, now: datetime) -> Path:
    return paths.backups_dir(profile.name) / f"{profile.name}-{now:%Y%m%dT%H%M%SZ}.tar"


def check_out(out: Path) -> None:
    """--out: a new file in a folder that exists; a backup never overwrites another."""
    if out.exists():
        raise BadInput(f"--out: {out} exists; give a new file name (a backup never overwrites another)")
    if not out.parent.is_dir():
        raise BadInput(f"--out: folder {out.parent} does not exist; create it or give another path")


def nodes(profile: Profile, secrets: Secrets) -> list[Node]:
    """Every data node, running and answering the admin user, with its role as it says now."""
    found = {c.labels.get(SERVICE_LABEL): c for c in data_containers(profile)}
    result = []
    for node in profile.data_nodes:
        container = found.get(node.service)
        if container is None or container.status != "running":
            state = "missing" if container is None else container.status
            raise BadInput(
                f"deployment: {profile.project} is not running ({node.service} {state}); "
                f"run `redis-harness up {profile_argument(profile.name, profile.source)}`"
            )
        client = node_client(profile, container, secrets.admin.password, timeout_s=10.0)
        try:
            role = client.execute_command("ROLE")[0]
        except redis.RedisError as exc:
            raise HarnessError(f"{node.service}: did not answer ROLE ({exc})") from None
        result.append(Node(node.service, container, client, "primary" if role in ("master", b"master") else "replica"))
    return result


def _replication(client: redis.Redis) -> dict[str, Any]:
    return client.info("replication")


def choose_source(profile: Profile, found: list[Node]) -> tuple[Node, str | None]:
    """The node to snapshot: a linked replica that has caught up with the primary's offset as read
    now (every write acknowledged before this point is then in the snapshot), else the primary."""
    primaries = [n for n in found if n.role == "primary"]
    if len(primaries) != 1:
        names = ", ".join(n.service for n in primaries) or "none"
        raise HarnessError(f"backup: {profile.project} has no single primary (primaries: {names}); run status")
    primary = primaries[0]
    replicas = [n for n in found if n.role == "replica"]
    if not replicas:
        return primary, None if not profile.topology.has_replicas else "no replica answered"
    target = int(_replication(primary.client)["master_repl_offset"])
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
    while time.monotonic() < deadline:
        for replica in replicas:
            info = _replication(replica.client)
            if info.get("master_link_status") == "up" and int(info.get("master_repl_offset", -1)) >= target:
                return replica, None
        progress.note("waiting for a replica to catch up with the primary")
        time.sleep(POLL_S)
    return primary, f"no replica caught up within {CATCH_UP_TIMEOUT_S:g} s"


def snapshot(node: Node, timeout_s: float = SAVE_TIMEOUT_S) -> None:
    """BGSAVE on `node` and wait until a save that started after this call has finished and succeeded."""
    client = node.client
    deadline = time.monotonic() + timeout_s

    def persistence() -> dict[str, Any]:
        if time.monotonic() > deadline:
            raise HarnessError(f"backup: {node.service} did not finish its snapshot within {timeout_s:g} s")
        return client.info("persistence")

    # A save already running may have forked before this backup began: wait it out, then save anew.
    while int(persistence()["rdb_bgsave_in_progress"]):
        progress.note(f"waiting for the save running on {node.service}")
        time.sleep(POLL_S)
    before = int(persistence().get("rdb_saves", 0))
    lastsave = client.lastsave()
    client.bgsave(schedule=True)  # SCHEDULE: runs once an AOF rewrite in progress has finished
    progress.note(f"BGSAVE on {node.service}")
    while True:
        info = persistence()
        done = int(info.get("rdb_saves", 0)) > before if "rdb_saves" in info else client.lastsave() != lastsave
        if done and not int(info["rdb_bgsave_in_progress"]):
            break
        time.sleep(POLL_S)
    if info.get("rdb_last_bgsave_status") != "ok":
        status = info.get("rdb_last_bgsave_status")
        raise HarnessError(f"backup: BGSAVE on {node.service} failed (rdb_last_bgsave_status {status}); see its log")


def copy_out(node: Node, work: Path) -> Path:
    """The node's RDB, copied out of its container (Docker's archive API) into `work`."""
    config = node.client.config_get("dir") | node.client.config_get("dbfilename")
    source = f"{config['dir'].rstrip('/')}/{config['dbfilename']}"
    progress.note(f"copying {source} out of {node.container.name}")
    stream, _ = node.container.get_archive(source)
    archive = work / "archive.tar"
    with archive.open("wb") as f:
        for chunk in stream:
            f.write(chunk)
    rdb = work / "dump.rdb"
    with tarfile.open(archive, mode="r:") as tar:
        member = next(m for m in tar.getmembers() if m.isfile())
        extracted = tar.extractfile(member)
        assert extracted is not None
        with rdb.open("wb") as out:
            while chunk := extracted.read(1 << 20):
                out.write(chunk)
    archive.unlink()
    return rdb


def backup(profile: Profile, secrets: Secrets, out: Path | None = None) -> BackupResult:
    """Snapshot the deployment into one file (`out`, default backups/<name>/<name>-<UTC time>.tar)."""
    refuse_cluster(profile, "backup")
    started = time.monotonic()
    if out is not None:
        check_out(out)
    with lock.held(profile, "backup"):
        ownership.require_owned(profile, "backup")
        return _backup(profile, secrets, out, started)


def _backup(profile: Profile, secrets: Secrets, out: Path | None, started: float) -> BackupResult:
    found = nodes(profile, secrets)
    try:
        source, why_primary = choose_source(profile, found)
        version = str(source.client.info("server")["redis_version"])
        snapshot(source)
        created = datetime.now(UTC)
        if out is None:
            out = default_out(profile, created)
            out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            check_out(out)
        with tempfile.TemporaryDirectory(prefix=".backup-", dir=out.parent) as work:
            rdb = copy_out(source, Path(work))
            with rdb.open("rb") as f:
                try:
                    facts = rdb_facts(f)
                except ValueError as exc:
                    raise HarnessError(f"backup: the RDB {source.service} wrote does not read as one ({exc})") from None
            manifest = Manifest(
                profile=profile.name,
                topology=profile.topology.kind,
                node=source.service,
                role=source.role,
                redis_version=version,
                rdb_version=facts.rdb_version,
                keys=facts.keys,
                keys_with_ttl=facts.keys_with_ttl,
                created=created.isoformat(timespec="seconds"),
                rdb_bytes=rdb.stat().st_size,
                rdb_sha256=sha256_of(rdb),
            )
            write_backup(out, manifest, rdb)
    finally:
        for node in found:
            node.client.close()
    return BackupResult(out, manifest, time.monotonic() - started, why_primary)
