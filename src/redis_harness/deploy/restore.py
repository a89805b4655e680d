"""`restore`: load a backup file into a deployment (standalone, replication, sentinel).

Everything that can refuse runs before anything changes: the file is read whole and checked
(deploy.backup_file: a tar with a manifest, the RDB's size and SHA-256, an RDB head), the target
must run a Redis at least as new as the one that wrote it, and it must be this checkout's.

Then, under the deployment's lock: the Sentinels stop first (so none fails the primary over
while it is down), then the replicas, then the primary (docker stop, SIGTERM: a proper shutdown
the restart policy leaves alone). A one-off container with the data volumes mounted puts the RDB
in the primary's volume and empties the replicas'. With appendonly yes Redis would load the AOF and
ignore dump.rdb, so the RDB also becomes the AOF's base file under a new manifest (Redis 7's
multi-part AOF takes an RDB-format base): the primary starts from it and opens a fresh incremental
file. Every node then starts again in the profile's own layout; the emptied replicas resync in full
from the restored primary, so none serves or keeps the old data.
"""

from __future__ import annotations

import shlex
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from redis_harness import paths, progress
from redis_harness.deploy import lock, ownership
from redis_harness.deploy.backup import Node, nodes, refuse_cluster
from redis_harness.deploy.backup_file import Backup, check_version, open_backup, version_tuple
from redis_harness.deploy.containers import project_containers
from redis_harness.deploy.engine import docker_client
from redis_harness.deploy.readiness import wait_until_settled
from redis_harness.deploy.running import SERVICE_LABEL, node_client
from redis_harness.errors import BadInput, HarnessError
from redis_harness.profile.credentials import Secrets
from redis_harness.profile.model import Profile

STOP_TIMEOUT_S = 30  # as compose's stop_grace_period: Redis writes its AOF on SIGTERM
START_TIMEOUT_S = 300.0
HELPER_TIMEOUT_S = 120
POLL_S = 0.2
UID = 999  # the redis user of the image (compose runs every node as 999:999)
INCOMING = ".restore-incoming"
MOUNT = "/restore"


@dataclass(frozen=True)
class Layout:
    """Where the primary keeps its data, as its running configuration says."""

    dir: str
    dbfilename: str
    appendonly: bool
    appenddirname: str
    appendfilename: str


@dataclass(frozen=True)
class RestoreResult:
    manifest: Any
    primary: str
    keys: int
    seconds: float


def _layout(client: redis.Redis) -> Layout:
    config: dict[str, str] = {}
    for name in ("dir", "dbfilename", "appendonly", "appenddirname", "appendfilename"):
        config |= client.config_get(name)
    return Layout(
        config["dir"].rstrip("/") or "/",
        config["dbfilename"],
        config["appendonly"] == "yes",
        config["appenddirname"],
        config["appendfilename"],
    )


def _volume(container: Any, directory: str) -> str:
    for mount in container.attrs.get("Mounts", []):
        if mount.get("Destination") == directory and mount.get("Type") == "volume":
            return str(mount["Name"])
    raise HarnessError(f"restore: {container.name} keeps {directory} on no volume; nothing to restore into")


def install_script(layout: Layout, replicas: int, mount: str = MOUNT) -> str:
    """The one-off container's shell: the RDB into the primary's volume (and as the AOF's base),
    the replicas' data removed. Every name is quoted; `set -e` stops at the first failure."""
    q = shlex.quote
    aof_dir, base = q(layout.appenddirname), q(f"{layout.appendfilename}.1.base.rdb")
    lines = [
        "set -eu",
        f"cd {q(mount)}/primary",
        f"rm -rf {aof_dir} {q(layout.dbfilename)}",
        f"mv {INCOMING}/dump.rdb {q(layout.dbfilename)}",
        f"rmdir {INCOMING}",
    ]
    if layout.appendonly:
        manifest = q(f"{layout.appendfilename}.manifest")
        lines += [
            f"mkdir {aof_dir}",
            f"cp {q(layout.dbfilename)} {aof_dir}/{base}",
            f"printf 'file %s seq 1 type b\\n' {base} > {aof_dir}/{manifest}",
        ]
    for i in range(replicas):
        replica = f"{q(mount)}/replica-{i}"
        lines.append(f"rm -rf {replica}/{aof_dir} {replica}/{q(layout.dbfilename)}")
    lines.append("sync")
    return "\n".join(lines)


def _incoming_tar(rdb: Path, work: Path) -> Path:
    """A tar of the RDB under INCOMING/, owned by the redis user, for Docker's archive API."""
    path = work / "incoming.tar"
    with tarfile.open(path, mode="w") as tar:
        folder = tarfile.TarInfo(INCOMING)
        folder.type, folder.mode, folder.uid, folder.gid = tarfile.DIRTYPE, 0o700, UID, UID
        tar.addfile(folder)
        member = tarfile.TarInfo(f"{INCOMING}/dump.rdb")
        member.size, member.mode, member.uid, member.gid = rdb.stat().st_size, 0o600, UID, UID
        with rdb.open("rb") as f:
            tar.addfile(member, f)
    return path


def _run_helper(profile: Profile, primary: Any, replicas: list[Any], layout: Layout, rdb: Path, work: Path) -> None:
    """Run install_script in a one-off container (no network, read-only root, no capabilities)."""
    volumes = {_volume(primary, layout.dir): {"bind": f"{MOUNT}/primary", "mode": "rw"}}
    for i, replica in enumerate(replicas):
        volumes[_volume(replica, layout.dir)] = {"bind": f"{MOUNT}/replica-{i}", "mode": "rw"}
    engine = docker_client()
    name = f"{profile.project}-restore"
    for stale in engine.containers.list(all=True, filters={"name": f"^{name}$"}):
        stale.remove(force=True, v=True)  # left by a restore that was killed mid-way
    helper = engine.containers.create(
        profile.image.ref,
        ["sh", "-c", install_script(layout, len(replicas))],
        name=name,
        user=f"{UID}:{UID}",
        volumes=volumes,
        network_mode="none",
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"],
        mem_limit=profile.resources.memory_bytes,
        labels={"io.redis-harness.profile": profile.name, "io.redis-harness.role": "restore"},
    )
    try:
        with _incoming_tar(rdb, work).open("rb") as data:
            if not helper.put_archive(f"{MOUNT}/primary", data):
                raise HarnessError(f"restore: Docker did not take the RDB into {name}")
        helper.start()
        status = helper.wait(timeout=HELPER_TIMEOUT_S)
        if status.get("StatusCode") != 0:
            log = helper.logs().decode("utf-8", "replace").strip().splitlines()
            raise HarnessError(f"restore: putting the RDB in place failed ({log[-1] if log else status})")
    finally:
        helper.remove(force=True, v=True)  # and its anonymous /data volume (the image declares one)


def _wait_primary(profile: Profile, container: Any, password: str) -> None:
    """Until the primary answers and has loaded its data."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        container.reload()
        try:
            client = node_client(profile, container, password, timeout_s=2.0)
            try:
                if int(client.info("persistence").get("loading", 1)) == 0:
                    return
            finally:
                client.close()
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise HarnessError(f"restore: {container.name} not answering {START_TIMEOUT_S:g} s after its start")
        progress.note(f"waiting for {container.name} to load the snapshot")
        time.sleep(POLL_S)


def _containers(profile: Profile) -> dict[str, Any]:
    return {c.labels.get(SERVICE_LABEL): c for c in project_containers(profile)}


def _swap(profile: Profile, secrets: Secrets, layout: Layout, rdb: Path, work: Path) -> None:
    """Stop, put the RDB in place, start again in the profile's layout (even when putting it in place failed)."""
    by_service = _containers(profile)
    primary = by_service[profile.data_nodes[0].service]
    replicas = [by_service[n.service] for n in profile.data_nodes[1:]]
    sentinels = [by_service[n.service] for n in profile.sentinel_nodes if n.service in by_service]
    stopped: list[Any] = []
    try:
        for container in [*sentinels, *replicas, primary]:
            progress.note(f"stopping {container.name}")
            container.stop(timeout=STOP_TIMEOUT_S)
            stopped.append(container)
        progress.note("putting the snapshot in the primary's volume")
        _run_helper(profile, primary, replicas, layout, rdb, work)
    finally:
        # Every node starts again, whatever failed: the primary first, the Sentinels last.
        not_ready: HarnessError | None = None
        for container in reversed(stopped):
            progress.note(f"starting {container.name}")
            container.start()
            if container is primary:
                try:
                    _wait_primary(profile, primary, secrets.admin.password)
                except HarnessError as exc:
                    not_ready = exc
        if not_ready is not None:
            raise not_ready


def _check_target(backup: Backup, primary: Node, profile: Profile) -> Layout:
    version = str(primary.client.info("server")["redis_version"])
    check_version(backup, version, profile.project)
    layout = _layout(primary.client)
    if layout.appendonly and version_tuple(version) < (7,):
        raise BadInput(f"restore: {profile.project} runs Redis {version}; restore with AOF on needs Redis 7 or newer")
    return layout


def restore(profile: Profile, secrets: Secrets, file: Path) -> RestoreResult:
    """Load the backup `file` into the deployment; refuses (BadInput, nothing changed) a file
    that is not a whole backup, or one written by a newer Redis than the deployment runs."""
    refuse_cluster(profile, "restore")
    started = time.monotonic()
    paths.STATE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".restore-", dir=paths.STATE_DIR) as tmp:
        work = Path(tmp)
        with open_backup(file, work) as backup, lock.held(profile, "restore"):
            ownership.require_owned(profile, "restore")
            found = nodes(profile, secrets)
            try:
                designated = profile.data_nodes[0].service
                primary = next(n for n in found if n.service == designated)
                layout = _check_target(backup, primary, profile)
            finally:
                for node in found:
                    node.client.close()
            _swap(profile, secrets, layout, backup.rdb_path, work)
            progress.note("waiting for the replicas to resync")
            wait_until_settled(profile, secrets)
            client = node_client(profile, _containers(profile)[designated], secrets.admin.password, timeout_s=10.0)
            try:
                keyspace = client.info("keyspace")
                keys = sum(int(db.get("keys", 0)) for db in keyspace.values() if isinstance(db, dict))
            finally:
                client.close()
    return RestoreResult(backup.manifest, designated, keys, time.monotonic() - started)
