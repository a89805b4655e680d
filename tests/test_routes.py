"""load/routes.py: how the lean user's routes learn from the errors it meets (pure logic; the routes against
real Sentinel and Cluster deployments are in test_topologies_integration and test_target_integration)."""

from __future__ import annotations

import pytest

from redis_harness.client.connection import RedisSettings
from redis_harness.load import routes as routes_module
from redis_harness.load.routes import Routes

PUBLISHED = {("redis-1", 6379): ("127.0.0.1", 6411), ("redis-2", 6379): ("127.0.0.1", 6412)}
MAP = tuple(PUBLISHED.items())


def test_moved_moves_one_slot_to_the_published_address_of_its_new_primary() -> None:
    first = ("127.0.0.1", 6410)
    routes = Routes(RedisSettings(cluster=True, address_map=MAP), first, [first] * 16384)
    routes.follow("MOVED 5 redis-2:6379")
    assert routes.address(5) == ("127.0.0.1", 6412) and routes.address(6) == first
    assert routes.addresses() == [first, ("127.0.0.1", 6412)]
    # An address that is not a node of the deployment is never followed (its AUTH would leave the deployment).
    routes.follow("MOVED 7 203.0.113.9:6379")
    assert routes.address(7) == first


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []

    def ask(settings: RedisSettings) -> tuple[str, int]:
        calls.append(1)
        return ("127.0.0.1", 6412)

    monkeypatch.setattr(routes_module, "ask_sentinels", ask)
    return calls


def test_readonly_or_a_lost_connection_asks_the_sentinels_again_at_most_twice_a_second(asked: list[int]) -> None:
    settings = RedisSettings(sentinels=(("127.0.0.1", 26400),), address_map=MAP)
    routes = Routes(settings, ("127.0.0.1", 6411), asked_at=0.0)
    routes.follow("ERR unknown command")  # not about where the primary is
    assert asked == [] and routes.address() == ("127.0.0.1", 6411)
    routes.follow("READONLY You can't write against a read only replica.")
    assert asked == [1] and routes.address() == ("127.0.0.1", 6412) and routes.kind == "sentinel"
    routes.follow("ConnectionRefusedError: [Errno 111]", connection_failed=True)  # within ASK_AGAIN_S
    assert asked == [1]
    routes.asked_at -= routes_module.ASK_AGAIN_S
    routes.follow("ConnectionRefusedError: [Errno 111]", connection_failed=True)
    assert asked == [1, 1]


def test_a_standalone_route_never_moves(asked: list[int]) -> None:
    routes = Routes(RedisSettings(), ("127.0.0.1", 6379), asked_at=0.0)
    routes.follow("READONLY You can't write against a read only replica.")
    routes.follow("MOVED 5 redis-2:6379", connection_failed=True)
    assert asked == [] and routes.address(5) == ("127.0.0.1", 6379) and routes.kind == "standalone"
