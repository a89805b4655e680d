"""Profile validation and derivation: every bad input gets one line naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from redis_harness.errors import BadInput
from redis_harness.profile.model import load_profile, profile_from_mapping
from redis_harness.profile.units import parse_duration, parse_size

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
    with pytest.raises(BadInput, match="ci, cluster, dev, ha, prod"):
        load_profile("nope")


def test_broken_yaml_is_a_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(BadInput, match="not valid YAML"):
        load_profile(str(path))
