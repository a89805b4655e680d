"""The ACL roles as rendered: least privilege by construction (no containers; the live
server's side is in infra_tests/test_attacks.py and tests/test_attacks_integration.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from redis_harness.client.connection import RedisSettings, UnmappedAddress, remapper
from redis_harness.errors import BadInput
from redis_harness.profile.credentials import load_secrets
from redis_harness.profile.model import load_profile
from redis_harness.render.acl import (
    SERVICE_COMMANDS,
    SERVICE_DENIED,
    acl_users,
    sentinel_acl_users,
)
from redis_harness.verify import parsers

from .conftest import generated_env, variant_profile


def _users(profile_name: str) -> dict[str, parsers.AclEntry]:
    profile = load_profile(profile_name)
    secrets = load_secrets(profile, env=generated_env())
    return {u.name: parsers.parse_acl_line(u.line) for u in acl_users(profile, secrets)}


def _granted(entry: parsers.AclEntry) -> set[str]:
    return {rule[1:] for rule in entry.command_rules if rule.startswith("+")}


@pytest.mark.parametrize("name", ["dev", "ci", "prod", "ha", "cluster"])
def test_service_users_get_explicit_commands_of_their_own_prefix_only(name: str) -> None:
    users = _users(name)
    for service in load_profile(name).security.services:
        entry = users[service.name]
        assert entry.command_rules[0] == "-@all" and not any("@" in r for r in entry.command_rules[1:])
        assert entry.key_patterns == {f"~{service.name}:*"} and entry.channel_patterns == {f"&{service.name}:*"}
        assert not _granted(entry) & set(SERVICE_DENIED)
        assert {"info", "time", "eval", "evalsha", "fcall", "fcall_ro", "client|setname", "hello"} <= _granted(entry)


def test_no_user_but_admin_has_every_key_and_none_has_every_channel() -> None:
    for name in ("dev", "ha", "cluster"):
        for user, entry in _users(name).items():
            assert "&*" not in entry.channel_patterns, user
            assert user == "admin" or "~*" not in entry.key_patterns, user


def test_default_is_off_in_prod_and_one_services_rights_elsewhere() -> None:
    prod = _users("prod")["default"]
    assert not prod.enabled and not prod.hashes and prod.command_rules == ("-@all",)
    dev = _users("dev")
    assert dev["default"].enabled
    assert (dev["default"].key_patterns, dev["default"].channel_patterns, dev["default"].command_rules) == (
        dev["price"].key_patterns,
        dev["price"].channel_patterns,
        dev["price"].command_rules,
    )


def test_only_the_sentinel_user_may_publish_on_the_hello_channel() -> None:
    users = _users("ha")
    on_hello = [u for u, e in users.items() if {"&__sentinel__:hello", "&*"} & e.channel_patterns]
    assert on_hello == ["sentinel"]
    assert users["sentinel"].key_patterns == frozenset()


def test_sentinel_users_split_control_queries_and_peers() -> None:
    profile = load_profile("ha")
    secrets = load_secrets(profile, env=generated_env())
    users = {u.name: parsers.parse_acl_line(u.line) for u in sentinel_acl_users(secrets)}
    assert _granted(users["default"]) >= {"sentinel|get-master-addr-by-name", "sentinel|sentinels"}
    assert not {g for g in _granted(users["default"]) if g.split("|")[-1] in ("failover", "monitor", "remove", "set")}
    assert _granted(users["sentinel-peer"]) == {
        "ping", "hello", "publish", "client|setname", "sentinel|is-master-down-by-addr",
        "sentinel|get-master-addr-by-name",
    }  # fmt: skip
    assert users["admin"].command_rules == ("+@all",) and users["admin"].channel_patterns == frozenset()
    # What a data node holds: it may ask where the primary is, nothing else (no vote, no hello, no control).
    assert _granted(users["node-lookup"]) == {"ping", "sentinel|get-master-addr-by-name"}
    assert users["node-lookup"].key_patterns == frozenset() and users["node-lookup"].channel_patterns == frozenset()


def test_default_user_setting_names_a_service_or_off(tmp_path: Path) -> None:
    assert variant_profile("ci", tmp_path, "d1", security={"default_user": False}).security.default_user == "off"
    with pytest.raises(BadInput, match=r"security.default_user: 'admin' is not valid; use one of off, price"):
        variant_profile("ci", tmp_path, "d2", security={"default_user": "admin"})


def test_service_commands_name_no_category() -> None:
    assert all(not c.startswith(("@", "+", "-")) for c in SERVICE_COMMANDS)
    assert len(set(SERVICE_COMMANDS)) == len(SERVICE_COMMANDS)


def test_host_clients_refuse_an_address_outside_the_deployment() -> None:
    remap = remapper(RedisSettings(address_map=((("redis-1", 6379), ("127.0.0.1", 6401)),)))
    assert remap(("redis-1", 6379)) == ("127.0.0.1", 6401)
    with pytest.raises(UnmappedAddress, match="203.0.113.9:6379 is not a node of this deployment"):
        remap(("203.0.113.9", 6379))
    assert remapper(RedisSettings())(("10.0.0.5", 6379)) == ("10.0.0.5", 6379)  # no map: no deployment to hold to


@pytest.mark.parametrize(
    ("memory", "ratio", "floor"), [("16mb", 0.7, "36mb"), ("35mb", 0.7, "36mb"), ("64mb", 0.9, "107mb")]
)
def test_memory_too_small_for_buffers_and_the_process_is_refused(
    tmp_path: Path, memory: str, ratio: float, floor: str
) -> None:
    with pytest.raises(BadInput, match=rf"^resources.memory: .* give at least {floor} or lower memory.maxmemory_ratio"):
        variant_profile("ci", tmp_path, "small", resources={"memory": memory}, memory={"maxmemory_ratio": ratio})


def test_client_buffers_fit_beside_maxmemory() -> None:
    for name in ("dev", "ci", "prod", "ha"):
        memory = load_profile(name).memory
        limit = load_profile(name).resources.memory_bytes
        assert memory.maxmemory_bytes + memory.clients_bytes + 8 * 1024**2 <= limit
        assert 1024**2 <= memory.client_output_hard_bytes <= memory.clients_bytes
