"""Replication, Sentinel and Cluster profiles: validation, node lists and what is rendered."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from redis_harness.deploy.connect import settings_for
from redis_harness.errors import BadInput
from redis_harness.profile.credentials import load_secrets, sha256_hex
from redis_harness.profile.model import load_profile, profile_from_mapping
from redis_harness.render.acl import acl_users
from redis_harness.render.files import render_files
from redis_harness.render.secret_files import secret_files

from .conftest import AWKWARD, REPO, generated_env, run_start_script


def raw(name: str) -> dict:
    return yaml.safe_load((REPO / "profiles" / f"{name}.yaml").read_text())


def refused(mapping: dict) -> str:
    with pytest.raises(BadInput) as info:
        profile_from_mapping(mapping, Path("t.yaml"))
    assert "\n" not in str(info.value)
    return str(info.value)


def test_ha_profile_lists_primary_replicas_and_sentinels() -> None:
    profile = load_profile("ha")
    assert [(n.service, n.role, n.host_port, n.replica_of) for n in profile.data_nodes] == [
        ("redis-0", "primary", 6400, None),
        ("redis-1", "replica", 6401, "redis-0"),
        ("redis-2", "replica", 6402, "redis-0"),
    ]
    assert [(n.service, n.host_port) for n in profile.sentinel_nodes] == [
        ("sentinel-0", 26400),
        ("sentinel-1", 26401),
        ("sentinel-2", 26402),
    ]


def test_cluster_profile_has_three_primaries_with_a_replica_each() -> None:
    profile = load_profile("cluster")
    assert len(profile.data_nodes) == 6 and {n.role for n in profile.data_nodes} == {"cluster"}
    assert profile.sentinel_nodes == ()


@pytest.mark.parametrize(
    ("section", "change", "field"),
    [
        ("sentinel", {"sentinels": 2}, "sentinel.sentinels: 2 is fewer than 3"),
        ("sentinel", {"quorum": 4}, "sentinel.quorum: 4 is larger than sentinel.sentinels (3)"),
        ("sentinel", {"down_after": "500ms"}, "sentinel.down_after: 500 ms is below 1000 ms"),
        ("sentinel", {"failover_timeout": "2s"}, "sentinel.failover_timeout: 2000 ms is below"),
        ("replication", {"min_replicas_to_write": 3}, "replication.min_replicas_to_write: 3 is more than"),
    ],
)
def test_bad_sentinel_settings_are_refused(section: str, change: dict, field: str) -> None:
    mapping = raw("ha")
    mapping[section] = {**mapping[section], **change}
    assert refused(mapping).startswith(field)


def test_too_few_cluster_primaries_are_refused() -> None:
    mapping = raw("cluster")
    mapping["cluster"]["primaries"] = 2
    assert refused(mapping).startswith("cluster.primaries: 2 is fewer than 3")


def test_primary_with_replicas_and_no_persistence_that_restarts_is_refused() -> None:
    mapping = raw("ha")
    mapping["persistence"] = {"aof": False, "rdb_save": []}
    assert refused(mapping).startswith("persistence: a primary with replicas has neither AOF nor RDB")
    mapping["restart"] = "no"
    profile_from_mapping(mapping, Path("t.yaml"))  # it stays down after a crash: allowed


def test_settings_of_another_topology_are_refused() -> None:
    mapping = raw("ci")
    mapping["sentinel"] = {"sentinels": 3}
    assert refused(mapping).startswith("sentinel: only a sentinel topology")


def test_ha_renders_sentinels_replication_and_their_users_without_secrets() -> None:
    profile = load_profile("ha")
    env = generated_env()
    secrets = load_secrets(profile, env=env)
    files = render_files(profile, secrets)
    compose = yaml.safe_load(files["docker-compose.yml"])
    assert set(compose["services"]) == {"redis-0", "redis-1", "redis-2", "sentinel-0", "sentinel-1", "sentinel-2"}
    assert compose["services"]["redis-1"]["command"][:2] == ["sh", "-c"]  # asks the Sentinels first
    for service in compose["services"].values():
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"] and service["user"] == "999:999"
    assert compose["services"]["sentinel-2"]["ports"] == ["127.0.0.1:26402:26379"]
    assert "sentinel monitor primary redis-0 6379 2" in files["sentinel.conf"]
    assert "include /run/secrets/replication.conf" in files["redis.conf"]
    assert "min-replicas-to-write 1" in files["redis.conf"]
    users = {u.name for u in acl_users(profile, secrets)}
    assert {"replication", "sentinel"} <= users
    text = "\n".join(files.values())
    assert not [p for p in secrets.all_passwords() if p in text]


def test_sentinel_secret_file_holds_only_derived_passwords_and_users_carry_hashes() -> None:
    profile = load_profile("ha")
    secrets = load_secrets(profile, env=generated_env())
    sentinel = next(f for f in secret_files(profile, secrets) if f.name == "sentinel.conf")
    assert sentinel.content == (
        f"sentinel auth-pass primary {secrets.derived('sentinel')}\n"
        f"sentinel sentinel-pass {secrets.derived('sentinel-peer')}\n"
    )
    rendered = render_files(profile, secrets)["sentinel.conf"]
    users = {line.split()[1]: line for line in rendered.splitlines() if line.startswith("user ")}
    assert sorted(users) == ["admin", "default", "healthcheck", "node-lookup", "sentinel-peer"]
    assert f"#{sha256_hex(secrets.default.password)}" in users["default"]  # any character works: it is hashed
    assert AWKWARD in secrets.default.password
    assert "+sentinel|get-master-addr-by-name" in users["default"] and "failover" not in users["default"]
    assert "&__sentinel__:hello" in users["sentinel-peer"] and "+@all" not in users["sentinel-peer"]
    assert "sentinel sentinel-user sentinel-peer" in rendered


def test_host_clients_map_announced_names_to_loopback_ports() -> None:
    profile = load_profile("ha")
    settings = settings_for(profile, "admin", "pw", sentinel_password="default-pw")
    assert dict(settings.address_map)[("redis-2", 6379)] == ("127.0.0.1", 6402)
    assert settings.sentinels == (("127.0.0.1", 26400), ("127.0.0.1", 26401), ("127.0.0.1", 26402))
    assert settings.sentinel_password == "default-pw"
    cluster = settings_for(load_profile("cluster"), "admin", "pw")
    assert cluster.cluster and dict(cluster.address_map)[("redis-5", 6379)] == ("127.0.0.1", 6415)


@pytest.mark.parametrize(
    ("node", "sentinels_say", "starts_with"),
    [
        ("redis-1", "redis-2", ["--replicaof", "redis-2", "6379"]),  # after a failover: the current primary
        ("redis-1", "redis-1", []),  # the primary restarted before Sentinel replaced it: still the primary
        ("redis-1", None, ["--replicaof", "redis-0", "6379"]),  # no Sentinel answers (first start): the profile
        ("redis-0", None, []),
        ("redis-1", "attacker.example", ["--replicaof", "redis-0", "6379"]),  # only a data node's name is taken
    ],
)
def test_a_data_node_starts_as_the_sentinels_say(
    tmp_path: Path, node: str, sentinels_say: str | None, starts_with: list[str]
) -> None:
    """The rendered start command itself, run by sh with redis-cli and redis-server stood in for."""
    profile = load_profile("ha")
    compose = yaml.safe_load(render_files(profile, load_secrets(profile, env=generated_env()))["docker-compose.yml"])
    script = compose["services"][node]["command"][2].replace("$$", "$")  # compose's escape
    said, *argv = run_start_script(tmp_path, script, sentinels_say, {})
    assert argv == ["/etc/redis-harness/redis.conf", "--replica-announce-ip", node, *starts_with]
    assert said == (f"redis-harness: starting as a replica of {starts_with[1]}" if starts_with else
                    "redis-harness: starting as the primary")  # fmt: skip
