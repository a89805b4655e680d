"""Calibration's pure parts on a Cluster: which slots a node holds, a key in them."""

from __future__ import annotations

from redis.crc import key_slot

from redis_harness.load.calibrate import key_in, own_slots

NODES = (
    "07c3 172.18.0.3:6379@16379 master - 0 1700000000000 2 connected 5461-10922\n"
    "e6a1 172.18.0.2:6379@16379 myself,master - 0 0 1 connected 0-5460 [5461->-07c3]\n"
    "9f00 172.18.0.5:6379@16379 slave e6a1 0 1700000000000 1 connected\n"
)


def test_own_slots_reads_the_myself_line_and_leaves_out_slots_in_migration() -> None:
    assert own_slots(NODES) == [(0, 5460)]
    assert own_slots(NODES.replace("myself,master", "master").replace("slave e6a1", "myself,slave e6a1")) is None
    assert own_slots("e6a1 a:1@2 myself,master - 0 0 1 connected 3 100-200") == [(3, 3), (100, 200)]


def test_key_in_finds_a_key_of_the_given_slots() -> None:
    for ranges in ([(0, 5460)], [(5461, 10922)], [(10923, 16383)], [(42, 42)]):
        key = key_in(ranges)
        assert key is not None and any(a <= key_slot(key.encode()) <= b for a, b in ranges)
