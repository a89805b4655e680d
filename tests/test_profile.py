"""Profile validation and derivation: every bad input gets one line naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from redis_harness.errors import BadInput
from redis_harness.profile.host import check_host_limits, check_published_address
from redis_harness.profile.model import load_profile, profile_from_mapping
from redis_harness.profile.units import parse_duration, parse_size
from redis_harness.profile.yaml_file import parse_yaml

REPO = Path(__file__).resolve().parents[1]


def dev_raw() -> dict:
    return yaml.safe_load((REPO / "profiles" / "dev.yaml").read_text())


def with_change(section: str | None, key: str, value: object) -> dict:
    raw = dev_raw()
    if section is None:
        raw[key] = value
    else:
        raw[section][key] = value
    return raw


def refused(raw: object) -> str:
    with pytest.raises(BadInput) as info:
        profile_from_mapping(raw, Path("test.yaml"))
    message = str(info.value)
    assert "\n" not in message, "one line"
    return message


@pytest.mark.parametrize("name", ["dev", "ci", "prod"])
def test_shipped_profiles_load(name: str) -> None:
    profile = load_profile(name)
    assert profile.name == name
    assert profile.topology.kind == "standalone"
    assert [n.service for n in profile.data_nodes] == ["redis"]
    assert profile.memory.policy == "volatile-lru"


def test_maxmemory_is_seventy_percent_of_the_memory_limit_by_default() -> None:
    raw = dev_raw()
    del raw["memory"]["maxmemory_ratio"]
    profile = profile_from_mapping(raw, Path("dev.yaml"))
    assert profile.resources.memory_bytes == 256 * 1024**2
    assert profile.memory.maxmemory_bytes == int(256 * 1024**2 * 0.70)


def test_defaults_follow_the_original_plan() -> None:
    profile = profile_from_mapping({"name": "bare"}, Path("bare.yaml"))
    assert dict(profile.ttl) == {"price": 30, "liquidity": 60, "volume": 300, "historical": 86400}
    assert profile.alerts.miss_ratio == 0.20
    assert profile.alerts.memory_ratio == 0.80
    assert profile.alerts.slowlog_threshold_us == 100_000
    assert profile.alerts.latency_monitor_threshold_ms == 100
    assert profile.persistence.aof and profile.persistence.appendfsync == "everysec"
    assert profile.network.host == "127.0.0.1"
    assert [s.name for s in profile.security.services] == ["price", "processing", "acquisition"]


def test_profile_is_immutable() -> None:
    profile = load_profile("dev")
    with pytest.raises(ValidationError, match="frozen"):
        profile.name = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        profile.memory.policy = "noeviction"  # type: ignore[misc]
    with pytest.raises(TypeError):
        profile.ttl["price"] = 1  # type: ignore[index]


def test_unknown_key_names_the_closest_valid_one() -> None:
    assert refused(with_change("memory", "polcy", "allkeys-lru")) == "memory.polcy: unknown key; did you mean 'policy'?"
    assert "resources" in refused(with_change(None, "resorces", {}))


@pytest.mark.parametrize(
    ("value", "expected"),
    [("256mb", 256 * 2**20), ("1g", 2**30), ("1gb", 2**30), ("1GiB", 2**30), ("512k", 512 * 1024), (1048576, 2**20)],
)
def test_sizes_are_binary_bytes(value: object, expected: int) -> None:
    assert parse_size("resources.memory", value) == expected


@pytest.mark.parametrize("value", ["1.5gb", "50%", "-1gb", -5, "lots", "1tb", True])
def test_bad_memory_units_are_refused(value: object) -> None:
    message = refused(with_change("resources", "memory", value))
    assert message.startswith("resources.memory:")


@pytest.mark.parametrize("ratio", [0, -0.1, 0.95, 1, 1.5, "0.7", True])
def test_ratio_outside_zero_to_point_nine_is_refused(ratio: object) -> None:
    message = refused(with_change("memory", "maxmemory_ratio", ratio))
    assert message.startswith("memory.maxmemory_ratio:") and "(0, 0.9]" in message


def test_unknown_eviction_policy_lists_the_valid_ones() -> None:
    message = refused(with_change("memory", "policy", "lru"))
    assert message.startswith("memory.policy:") and "volatile-lru" in message and "noeviction" in message


def test_unlimited_maxmemory_under_a_memory_limit_is_refused() -> None:
    message = refused(with_change("memory", "maxmemory", 0))
    assert message.startswith("memory.maxmemory:") and "OOM" in message


def test_non_loopback_published_address_is_refused() -> None:
    message = refused(with_change("network", "host", "0.0.0.0"))
    assert message.startswith("network.host:") and "127.0.0.1" in message


def test_unpinned_image_is_refused() -> None:
    assert refused(with_change("image", "ref", "redis")).startswith("image.ref:")
    assert refused(with_change("image", "ref", "redis:latest")).startswith("image.ref:")


def test_bad_persistence_rule_and_fsync_are_refused() -> None:
    assert refused(with_change("persistence", "rdb_save", ["300"])).startswith("persistence.rdb_save:")
    assert refused(with_change("persistence", "appendfsync", "sometimes")).startswith("persistence.appendfsync:")


def test_unknown_topology_is_refused() -> None:
    assert refused(with_change(None, "topology", "mesh")).startswith("topology:")


def test_durations() -> None:
    assert parse_duration("ttl.price", "30s") == 30
    assert parse_duration("ttl.historical", "24h") == 86400
    assert parse_duration("alerts.slow_update", "100ms") == pytest.approx(0.1)
    with pytest.raises(BadInput, match="ttl.price"):
        parse_duration("ttl.price", "soon")


def test_missing_profile_lists_the_known_ones() -> None:
    with pytest.raises(BadInput, match="ci, cluster, dev, external, ha, prod"):
        load_profile("nope")


def test_broken_yaml_is_a_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(BadInput, match="not valid YAML"):
        load_profile(str(path))


def test_a_merge_key_override_is_not_a_duplicate_key() -> None:
    text = "a: &b {x: 1, y: 2}\nc:\n  <<: *b\n  x: 3\n"
    assert parse_yaml(text, Path("t.yaml")) == {"a": {"x": 1, "y": 2}, "c": {"x": 3, "y": 2}}
    with pytest.raises(BadInput, match=r"^t.yaml: line 5: key 'x' appears twice in one mapping; keep one of them$"):
        parse_yaml(text + "  x: 4\n", Path("t.yaml"))


def test_a_few_aliases_are_fine_but_an_expansion_bomb_is_not() -> None:
    assert parse_yaml("a: &x [1, 2]\nb: *x\nc: *x\n", Path("t.yaml")) == {"a": [1, 2], "b": [1, 2], "c": [1, 2]}
    bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 5)
    )
    with pytest.raises(BadInput, match="aliases expand to more than 10000 values"):
        parse_yaml(bomb, Path("t.yaml"))


def test_host_limits_name_the_hosts_figure() -> None:
    profile = load_profile("prod")  # 2gb, 2 cpus
    check_host_limits(profile, memory_bytes=2 * 1024**3, cpus=2)  # exactly what the host has: allowed
    with pytest.raises(BadInput, match=r"^resources.memory: 2.0 GiB is more than this host's memory \(1.0 GiB\)"):
        check_host_limits(profile, memory_bytes=1024**3, cpus=8)
    with pytest.raises(BadInput, match=r"^resources.cpus: 2 is more than this host's 1 CPUs; use at most 1"):
        check_host_limits(profile, memory_bytes=64 * 1024**3, cpus=1)
    ha = load_profile("ha")  # every node gets the limit: they must fit together
    per_node = ha.resources.memory_bytes
    check_host_limits(ha, memory_bytes=per_node * len(ha.nodes), cpus=8)
    with pytest.raises(BadInput, match=rf"^resources.memory: {len(ha.nodes)} x "):
        check_host_limits(ha, memory_bytes=per_node * len(ha.nodes) - 1, cpus=8)


def test_a_published_address_must_be_one_of_the_hosts() -> None:
    raw = yaml.safe_load((REPO / "profiles" / "ci.yaml").read_text())
    raw["network"] = {"publish": "host", "host": "198.18.0.1", "port": 6740, "allow": ["198.18.1.0/24"]}
    raw["security"]["tls"] = {"enabled": True}
    profile = profile_from_mapping(raw, Path("pub.yaml"))
    check_published_address(profile, ["127.0.0.1", "198.18.0.1"])
    with pytest.raises(BadInput, match=r"^network.host: 198.18.0.1 is not an address of this host \(192.0.2.2\); "):
        check_published_address(profile, ["127.0.0.1", "192.0.2.2"])
    check_published_address(load_profile("ci"), [])  # loopback: Docker binds 127.0.0.1 anywhere


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("alerts", "slow_update", "99999999999h", "alerts.slow_update: 3.6e+14 s is more than Redis accepts"),
        ("alerts", "slow_update", 2**62, "alerts.slow_update:"),
        ("ttl", "price", "999999999999999d", "ttl.price:"),
        ("alerts", "miss_ratio", float("inf"), "alerts.miss_ratio: inf is not a finite number"),
        ("resources", "cpus", float("nan"), "resources.cpus: nan is not a finite number"),
        ("alerts", "recovery", float("inf"), "alerts.recovery: inf is not a finite duration"),
        ("network", "host", "::1", "network.host: ::1 is an IPv6 address"),
        ("network", "host", "fe80::1", "network.host: fe80::1 is an IPv6 address"),
        ("resources", "memory", "1025gb", "resources.memory: '1025gb' is more than 1 TiB"),
    ],
)
def test_values_redis_docker_or_the_harness_cannot_take(section: str, key: str, value: object, message: str) -> None:
    assert refused(with_change(section, key, value)).startswith(message)


def test_the_largest_accepted_values_still_render_numbers_redis_takes() -> None:
    profile = profile_from_mapping(
        with_change("alerts", "slow_update", f"{(2**63 - 1) // 10**6 // 3600}h"), Path("t.yaml")
    )
    assert profile.alerts.slowlog_threshold_us <= 2**63 - 1
    assert (
        profile_from_mapping(with_change("resources", "memory", "1024gb"), Path("t.yaml")).resources.memory_bytes
        == 2**40
    )


def test_an_empty_or_non_mapping_profile_is_refused() -> None:
    assert refused(None).startswith("test.yaml: the profile is empty")
    assert refused([]).startswith("profile: expected a mapping of name, topology, environment")
