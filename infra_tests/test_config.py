"""Config: the live server, compared with the profile (never with the rendered file on disk)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
import testinfra
from redis.crc import key_slot

from redis_harness.deploy.connect import connect_node
from redis_harness.profile.credentials import Secrets
from redis_harness.profile.model import Profile
from redis_harness.profile.topology import Node
from redis_harness.verify import parsers
from redis_harness.verify.check import Check

AOF_WAIT_S = 3.0


def test_config_matches_profile(
    directive: str, expected_directives: dict[str, str], admin: redis.Redis, check: Check
) -> None:
    """Drift: every directive the profile renders equals CONFIG GET on the running server."""
    found = admin.config_get(directive).get(directive, "<not reported by CONFIG GET>")
    check.equal(expected_directives[directive], found)


def test_acl_user_matches_profile(
    acl_user: str,
    expected_acl: dict[str, parsers.AclEntry],
    live_acl: dict[str, parsers.AclEntry],
    units: dict[str, parsers.CommandUnit],
    check: Check,
) -> None:
    """ACL LIST: hashes and key/channel patterns exactly, command rules by what they allow."""
    expected = expected_acl[acl_user]
    found = live_acl.get(acl_user)
    if found is None:
        check.that(False, expected.summary(units), "no such user")
        return
    diffs = parsers.acl_differences(expected, found, units)
    check.that(not diffs, expected.summary(units), "; ".join(diffs) or found.summary(units))


def test_no_acl_users_beyond_profile(
    expected_acl: dict[str, parsers.AclEntry], live_acl: dict[str, parsers.AclEntry], check: Check
) -> None:
    extra = sorted(set(live_acl) - set(expected_acl))
    check.that(not extra, " ".join(sorted(expected_acl)), " ".join(extra) + " also exist" if extra else "same users")


def test_maxmemory_matches_derived_value(profile: Profile, admin: redis.Redis, check: Check) -> None:
    """maxmemory = ratio × container memory limit, derived in the Profile."""
    check.equal(profile.memory.maxmemory_bytes, int(admin.config_get("maxmemory")["maxmemory"]))


def test_maxmemory_within_ratio_of_container_limit(
    profile: Profile, admin: redis.Redis, cgroup: dict[str, str], check: Check
) -> None:
    """The real memory limit is the cgroup's, read inside the container: Redis must evict before it."""
    maxmemory = int(admin.config_get("maxmemory")["maxmemory"])
    limit = parsers.cgroup_limit(cgroup["memory"])
    ratio = profile.memory.maxmemory_ratio
    if limit is None:
        check.that(False, f"0 < maxmemory <= {ratio} x cgroup limit", f"maxmemory {maxmemory}, no cgroup limit")
        return
    ceiling = ratio * limit
    check.that(
        0 < maxmemory <= ceiling,
        f"0 < maxmemory <= {ratio} x {limit} = {int(ceiling)}",
        f"{maxmemory} ({maxmemory / limit:.2f} x cgroup {cgroup['version']} limit)",
    )


def test_maxmemory_policy_matches_profile(profile: Profile, admin: redis.Redis, check: Check) -> None:
    check.equal(profile.memory.policy, admin.config_get("maxmemory-policy")["maxmemory-policy"])


def test_aof_enabled_as_profile(profile: Profile, admin: redis.Redis, check: Check) -> None:
    check.equal("yes" if profile.persistence.aof else "no", admin.config_get("appendonly")["appendonly"])


def test_appendfsync_matches_profile(profile: Profile, admin: redis.Redis, check: Check) -> None:
    check.equal(profile.persistence.appendfsync, admin.config_get("appendfsync")["appendfsync"])


def _aof_bytes(host: Any, aof_dir: str) -> int:
    """Total size of the AOF directory's files; 0 when it does not exist."""
    out = host.run(f"cat {aof_dir}/* 2>/dev/null | wc -c")
    return int(out.stdout.strip() or 0)


def _primary_of(profile: Profile, node: Node, admin: redis.Redis) -> Node:
    """The node this one takes its data from: itself, unless it is a replica."""
    if admin.execute_command("ROLE")[0] != "slave":
        return node
    if profile.topology.cluster is not None:
        nodes = admin.execute_command("CLUSTER NODES").values()  # parsed by redis-py
        myself = next(facts for facts in nodes if "myself" in facts["flags"])
        name = next(facts["hostname"] for facts in nodes if facts["node_id"] == myself["master_id"])
    else:
        name = admin.info("replication")["master_host"]  # the announced service name
    return next(n for n in profile.data_nodes if n.service == name)


def _probe_key(writer: redis.Redis, cluster: bool) -> str:
    """A short-lived key outside every service prefix; in a Cluster, one of the writer's own slots."""
    key = "redis-harness:verify:aof-probe"
    if not cluster:
        return key
    myself = next(f for f in writer.execute_command("CLUSTER NODES").values() if "myself" in f["flags"])
    owned = [(int(first), int(last)) for first, last in myself["slots"]]
    return next(
        f"{key}:{i}" for i in range(100_000) if any(lo <= key_slot(f"{key}:{i}".encode()) <= hi for lo, hi in owned)
    )


def test_aof_receives_writes(
    profile: Profile,
    secrets: Secrets,
    node: Node,
    expected_directives: dict[str, str],
    admin: redis.Redis,
    host: Any,
    check: Check,
) -> None:
    """After a write (on the node's primary, if it is a replica), the node's AOF grows: it really appends."""
    aof_dir = f"{expected_directives['dir']}/{expected_directives['appenddirname']}"
    if not profile.persistence.aof:
        pytest.skip("the profile turns AOF off")
    before = _aof_bytes(host, aof_dir)
    writer = connect_node(profile, _primary_of(profile, node, admin), "admin", secrets.admin.password)
    writer.set(_probe_key(writer, profile.topology.cluster is not None), str(time.time()), px=60_000)
    writer.close()
    deadline = time.monotonic() + AOF_WAIT_S
    after = _aof_bytes(host, aof_dir)
    while after <= before and time.monotonic() < deadline:
        time.sleep(0.2)
        after = _aof_bytes(host, aof_dir)
    check.that(after > before, f"{aof_dir} grows after a write", f"{before} -> {after} bytes")


def _declared_data_volume(profile: Profile, node: Node, expected_compose: dict[str, Any], data_dir: str) -> str | None:
    """Docker name of the named volume the fresh render mounts at the node's data dir."""
    for entry in expected_compose["services"][node.service].get("volumes") or []:
        source, _, target = str(entry).partition(":")
        if target.split(":")[0] == data_dir and source in (expected_compose.get("volumes") or {}):
            spec = expected_compose["volumes"][source] or {}
            return spec.get("name") or f"{profile.project}_{source}"
    return None


def test_data_dir_is_a_volume(
    profile: Profile,
    node: Node,
    expected_directives: dict[str, str],
    expected_compose: dict[str, Any],
    inspect: dict[str, Any],
    check: Check,
) -> None:
    """The deployment's named volume, writable: not the container layer, not an anonymous volume."""
    data_dir = expected_directives["dir"]
    expected = _declared_data_volume(profile, node, expected_compose, data_dir)
    mount = next((m for m in inspect["Mounts"] if m["Destination"] == data_dir), None)
    found = f"{mount['Type']} {mount.get('Name') or mount['Source']} rw={mount['RW']}" if mount else "not a mount"
    ok = bool(mount) and mount["Type"] == "volume" and mount.get("Name") == expected and mount["RW"]
    check.that(ok, f"{data_dir}: volume {expected} rw=True", found)


def test_data_dir_writable_by_redis_user(
    expected_directives: dict[str, str], container: Any, redis_status: dict[str, str], check: Check
) -> None:
    """Tested as the uid the server runs as, whatever user `docker exec` would default to."""
    uid = parsers.ids_of(redis_status, "Uid")[1]
    gid = parsers.ids_of(redis_status, "Gid")[1]
    as_redis = testinfra.get_host(f"docker://{uid}:{gid}@{container.name}")
    data_dir = expected_directives["dir"]
    writable = as_redis.run(f"test -w {data_dir}").rc == 0
    check.that(writable, f"{data_dir} writable by uid {uid}", "writable" if writable else "not writable")
