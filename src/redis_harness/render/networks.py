"""Names of the Linux bridges behind a deployment's networks.

Every bridge the harness creates starts with BRIDGE_PREFIX, so the host's packet
filter (deploy/firewall.py) closes all of them with a few static rules that
match the prefix, whatever deployments come and go.
"""

from __future__ import annotations

import hashlib

from redis_harness.profile.model import Profile

BRIDGE_PREFIX = "rhx"  # + 10 hex digits: 13 characters, under Linux's 15 for an interface name


def bridge_name(profile: Profile, network: str) -> str:
    digest = hashlib.sha256(f"{profile.project}/{network}".encode()).hexdigest()
    return f"{BRIDGE_PREFIX}{digest[:10]}"


def bridge_names(profile: Profile) -> dict[str, str]:
    """Compose network key -> bridge name, for `internal` and each node's edge network."""
    keys = ["internal"] + [f"edge-{node.service}" for node in profile.nodes if node.host_port]
    return {key: bridge_name(profile, key) for key in keys}
