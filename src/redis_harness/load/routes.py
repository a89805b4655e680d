"""Where the lean user and redis-benchmark send a key: the primary, whatever the topology.

The lean user (loadtests/lean.py) speaks RESP on its own sockets, so it has none
of redis-py's routing. Routes gives it the address a command must go to, taken
from redis-py once per process: a standalone deployment's (or target's) one
address, the primary a Sentinel names (asked again after a connection failure
or READONLY, as redis-py would), or on a Cluster the primary of each of the
16,384 slots, corrected by the -MOVED replies the user meets. Every address is
one the host reaches: a deployment's announced names go through its address
map, and a name outside it is refused (client.connection.UnmappedAddress).
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.cluster import REDIS_CLUSTER_HASH_SLOTS, RedisCluster
from redis.exceptions import SlotNotCoveredError

from redis_harness.client.connection import RedisSettings, UnmappedAddress, make_redis, remapper
from redis_harness.deploy.connect import login_settings
from redis_harness.profile.credentials import AnySecrets
from redis_harness.profile.model import Profile

Address = tuple[str, int]
# A Sentinel is asked again at most this often per process, however many users fail at once.
ASK_AGAIN_S = 0.5


@dataclass
class Routes:
    """The address of the primary for a command: `address(slot)`; slot None off a Cluster."""

    settings: RedisSettings
    primary: Address
    slots: list[Address] | None = None  # Cluster: the primary of each slot
    asked_at: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def kind(self) -> str:
        return "cluster" if self.slots is not None else ("sentinel" if self.settings.sentinels else "standalone")

    def address(self, slot: int | None = None) -> Address:
        if self.slots is not None and slot is not None:
            return self.slots[slot]
        return self.primary

    def addresses(self) -> list[Address]:
        """Every primary a command may go to (a Cluster's each once), in slot order."""
        return list(dict.fromkeys(self.slots)) if self.slots is not None else [self.primary]

    def follow(self, error: str, connection_failed: bool = False) -> None:
        """Learn from an error reply or a failed connection; every user of the process then reads the
        new address from `address()` (this process's routes are shared).

        -MOVED <slot> <host:port> moves that slot (a Cluster's answer after a failover or a
        resharding); READONLY, NOREPLICAS or a connection failure on a Sentinel topology asks the
        Sentinels again (the old primary was demoted, cut off or is gone), at most every ASK_AGAIN_S."""
        if self.slots is not None and error.startswith("MOVED "):
            _, slot, target = error.split()[:3]
            host, _, port = target.rpartition(":")
            # An address that is not a node of this deployment is never followed: that slot's calls keep failing.
            with contextlib.suppress(UnmappedAddress):
                self.slots[int(slot)] = remapper(self.settings)((host, int(port)))
            return
        if not self.settings.sentinels or not (connection_failed or error.startswith(("READONLY", "NOREPLICAS"))):
            return
        with self._lock:
            if time.monotonic() - self.asked_at < ASK_AGAIN_S:
                return
            self.asked_at = time.monotonic()
            # No Sentinel answering (or one naming an unmapped address) keeps the primary: asked again later.
            with contextlib.suppress(redis.RedisError):
                self.primary = ask_sentinels(self.settings)


def routes_for(profile: Profile, secrets: AnySecrets, user: str | None, *, timeout_s: float = 2.0) -> Routes:
    """The routes of `user`'s commands on the profile's deployment (or target), asked once now."""
    settings = login_settings(profile, secrets, user, connect_timeout_s=timeout_s, socket_timeout_s=timeout_s)
    if settings.cluster:
        client = make_redis(settings)
        assert isinstance(client, RedisCluster)
        try:
            primary = _slot_primary(client, 0) or (settings.host, settings.port)
            slots = [_slot_primary(client, slot) or primary for slot in range(REDIS_CLUSTER_HASH_SLOTS)]
        finally:
            client.close()
        return Routes(settings, primary, slots)
    if settings.sentinels:
        return Routes(settings, ask_sentinels(settings))
    return Routes(settings, (settings.host, settings.port))


def _slot_primary(client: RedisCluster, slot: int) -> Address | None:
    """None for a slot no primary serves: a command for it goes to the first primary, which answers
    -CLUSTERDOWN (a failed call, as for any client)."""
    try:
        node: Any = client.nodes_manager.get_node_from_slot(slot)
    except SlotNotCoveredError:
        return None
    return node.host, int(node.port)


def ask_sentinels(settings: RedisSettings) -> Address:
    """The primary the Sentinels name now, as the host reaches it."""
    client = make_redis(settings)
    try:
        pool: Any = client.connection_pool
        return pool.get_master_address()
    finally:
        client.close()
