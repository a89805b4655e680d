"""The key builder: `{service}:{version}:{entity}:{id}`, validated parts, one place."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from redis_harness.client.keys import BadKeyPart, build_key, lock_key, meta_key, parse_key, service_pattern


def test_builds_the_plans_key_design() -> None:
    assert build_key("price", 3, "price", "BTC-USDT") == "price:v3:price:{BTC-USDT}"


def test_one_pairs_entities_share_a_cluster_slot_and_pairs_spread() -> None:
    """The id is the hash tag: what one trade touches lives in one slot (multi-key DEL works)."""
    slots = {key_slot(build_key("price", 1, e, "BTC-USDT").encode()) for e in ("price", "volume", "historical")}
    assert len(slots) == 1
    spread = {key_slot(build_key("price", 1, "price", f"P{i}").encode()) for i in range(100)}
    assert len(spread) > 90


def test_a_key_without_its_hash_tag_is_not_ours() -> None:
    with pytest.raises(BadKeyPart, match="hash tag"):
        parse_key("price:v1:price:BTC-USDT")


def test_parse_inverts_build() -> None:
    key = build_key("processing", 12, "historical", "ETH/BTC")
    assert parse_key(key) == ("processing", 12, "historical", "ETH/BTC")


@pytest.mark.parametrize(
    ("args", "part"),
    [
        (("Price", 1, "price", "x"), "service"),  # ACL user names are lower-case
        (("", 1, "price", "x"), "service"),
        (("price", 0, "price", "x"), "version"),
        (("price", True, "price", "x"), "version"),
        (("price", "1", "price", "x"), "version"),
        (("price", 1, "Price", "x"), "entity"),
        (("price", 1, "price", "a:b"), "id"),  # a ':' would blur the parts
        (("price", 1, "price", "BTC*"), "id"),  # glob characters would widen a SCAN pattern
        (("price", 1, "price", ""), "id"),
        (("price", 1, "price", "x" * 129), "id"),
    ],
)
def test_bad_parts_are_refused_naming_the_part(args: tuple, part: str) -> None:
    with pytest.raises(BadKeyPart, match=f"^{part}: "):
        build_key(*args)


@pytest.mark.parametrize("key", ["price:meta:version", "price:lock:fill.price.BTC-USDT", "price:v1:price", "a:b:c:d:e"])
def test_bookkeeping_and_malformed_keys_never_parse_as_data(key: str) -> None:
    with pytest.raises(BadKeyPart):
        parse_key(key)


def test_bookkeeping_keys_stay_under_the_service_prefix() -> None:
    assert meta_key("price", "version").startswith("price:")
    assert lock_key("price", "fill.price.BTC-USDT") == "price:lock:fill.price.BTC-USDT"
    assert service_pattern("acquisition") == "acquisition:v*"
    with pytest.raises(BadKeyPart):
        lock_key("price", "a b")
