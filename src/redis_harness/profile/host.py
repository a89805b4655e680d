"""A profile against the machine it is brought up on: limits the host cannot give are refused
before anything is written (Docker would refuse `cpus` only once the deployment is half up, and a
memory limit above the host's memory is no limit at all)."""

from __future__ import annotations

from redis_harness.errors import BadInput
from redis_harness.profile.model import Profile
from redis_harness.profile.units import format_size


def check_host_limits(profile: Profile, memory_bytes: int, cpus: int) -> None:
    """Refuse memory limits that add up to more than the host's memory (every node gets the limit),
    or a per-container CPU limit above its CPU count."""
    resources = profile.resources
    nodes = len(profile.nodes)
    if resources.memory_bytes * nodes > memory_bytes:
        asked = (
            format_size(resources.memory_bytes) if nodes == 1 else f"{nodes} x {format_size(resources.memory_bytes)}"
        )
        raise BadInput(
            f"resources.memory: {asked} is more than this host's memory "
            f"({format_size(memory_bytes)}); lower it in {profile.source}"
        )
    if resources.cpus > cpus:
        raise BadInput(
            f"resources.cpus: {resources.cpus:g} is more than this host's {cpus} CPUs; "
            f"use at most {cpus} in {profile.source}"
        )


def check_published_address(profile: Profile, host_addresses: list[str]) -> None:
    """With publish: host, network.host must be one of this host's own addresses: Docker would
    otherwise fail half-way through `up` (or publish nothing anyone reaches)."""
    network = profile.network
    if network.publish != "host" or network.host in host_addresses:
        return
    ours = [address for address in host_addresses if not address.startswith("127.")]
    listed = ", ".join(ours[:4]) + (" …" if len(ours) > 4 else "") if ours else "none but loopback"
    raise BadInput(
        f"network.host: {network.host} is not an address of this host ({listed}); "
        f"name one of its addresses in {profile.source}"
    )
