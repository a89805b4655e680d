"""ARP on the deployment's own bridges: ask again after 100 ms, not the kernel's 1 s.

A client that connects while a killed container is away (the restart policy takes
0.5-1 s) leaves the host's neighbour entry for the container's address INCOMPLETE;
the kernel asks again only every `retrans_time_ms` (1000 by default). Measured on
a standalone kill: the restarted container answered at once, yet its address and the
published port stayed unreachable (SYNs dropped) until that next ARP request, 0.4-0.7 s
after Redis said it was ready. At 100 ms the port answers right after Redis does.

The setting is per interface and goes with the bridge (`down` removes both), so
nothing outlives the deployment. It needs root, as the firewall rules do; without it,
`up` says so and goes on (the deployment works, its crash window is just longer).
"""

from __future__ import annotations

from pathlib import Path

from redis_harness import progress
from redis_harness.profile.model import Profile
from redis_harness.render.networks import bridge_names

RETRANS_TIME_MS = 100
NEIGH_DIR = Path("/proc/sys/net/ipv4/neigh")


def tune_bridges(profile: Profile, neigh_dir: Path = NEIGH_DIR) -> list[str]:
    """Set RETRANS_TIME_MS on each of the profile's bridges that exists; returns the ones changed."""
    changed = []
    for bridge in sorted(set(bridge_names(profile).values())):
        setting = neigh_dir / bridge / "retrans_time_ms"
        if not setting.is_file():
            continue  # this network is not up (or not a bridge of this host)
        if setting.read_text().strip() == str(RETRANS_TIME_MS):
            continue
        try:
            setting.write_text(f"{RETRANS_TIME_MS}\n")
        except OSError as exc:
            progress.note(f"ARP retry interval of {bridge} left at the kernel's ({exc.strerror}: needs root)")
            continue
        changed.append(bridge)
    return changed
