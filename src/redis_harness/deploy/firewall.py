"""Packet-filter rules that keep every deployment's bridges closed from outside and from inside.

Docker 20.10 (Debian 12's engine) forwards traffic that a neighbour routes to a
container's bridge address through this host, even for a port published on
127.0.0.1 only, and lets containers open connections to the host and, through
masquerading, to anywhere. Every bridge the harness creates is named with
BRIDGE_PREFIX (compose: com.docker.network.bridge.name), (render/networks.py), so a handful of static
rules cover all deployments, present and future:

- FORWARD (through DOCKER-USER, which Docker evaluates first and never flushes):
  traffic within one harness bridge passes (replication, Sentinel, apps on
  `internal`); anything routed into a harness bridge from elsewhere is dropped
  (the neighbour), and anything leaving one for elsewhere is dropped (egress).
- INPUT: a container may answer the host (the loopback-published port's replies
  are ESTABLISHED) but not open a connection to it.

The loopback-published port never crosses FORWARD: the host's own connection is
DNATed in OUTPUT and its replies come back through INPUT as ESTABLISHED.
`ensure_rules` is idempotent (each rule is checked with -C before it is added).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass

from redis_harness.errors import HarnessError
from redis_harness.render.networks import BRIDGE_PREFIX

FORWARD_CHAIN = "REDIS-HARNESS-FWD"
INPUT_CHAIN = "REDIS-HARNESS-IN"
_BRIDGES = f"{BRIDGE_PREFIX}+"


@dataclass(frozen=True)
class Rule:
    chain: str
    args: tuple[str, ...]
    position: int | None = None  # insert at this position (a jump that must come first), else append

    def describe(self) -> str:
        return f"{self.chain} {' '.join(self.args)}"


RULES: tuple[Rule, ...] = (
    Rule(FORWARD_CHAIN, ("-i", _BRIDGES, "-o", _BRIDGES, "-j", "RETURN")),
    Rule(FORWARD_CHAIN, ("-o", _BRIDGES, "-j", "DROP")),
    Rule(FORWARD_CHAIN, ("-i", _BRIDGES, "-j", "DROP")),
    Rule("DOCKER-USER", ("-j", FORWARD_CHAIN), position=1),
    Rule(INPUT_CHAIN, ("-i", _BRIDGES, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN")),
    Rule(INPUT_CHAIN, ("-i", _BRIDGES, "-j", "DROP")),
    Rule("INPUT", ("-j", INPUT_CHAIN), position=1),
)


def _iptables(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("iptables")
    if binary is None:
        raise HarnessError("firewall: iptables not found; install it (Debian: apt-get install iptables)")
    return subprocess.run([binary, "-w", "5", *args], capture_output=True, text=True, timeout=30)


def _present(rule: Rule) -> bool:
    return _iptables("-C", rule.chain, *rule.args).returncode == 0


def missing_rules() -> list[str]:
    """The rules not in place (as `CHAIN args`); [] when the host isolates every harness bridge."""
    return [rule.describe() for rule in RULES if not _present(rule)]


def ensure_rules() -> list[str]:
    """Create the chains and add whatever rule is missing; returns what was added."""
    for chain in (FORWARD_CHAIN, INPUT_CHAIN, "DOCKER-USER"):
        if _iptables("-n", "-L", chain).returncode != 0:
            created = _iptables("-N", chain)
            if created.returncode != 0:
                raise HarnessError(f"firewall: cannot create chain {chain}: {created.stderr.strip()}")
    added = []
    for rule in RULES:
        if _present(rule):
            continue
        where = ("-I", rule.chain, str(rule.position)) if rule.position else ("-A", rule.chain)
        done = _iptables(*where, *rule.args)
        if done.returncode != 0:
            raise HarnessError(f"firewall: cannot add {rule.describe()}: {done.stderr.strip()} (run as root)")
        added.append(rule.describe())
    return added


def remove_rules() -> None:
    """Take the jumps out (tests use it to show an attack working without them)."""
    for rule in RULES:
        if rule.position and _present(rule):
            _iptables("-D", rule.chain, *rule.args)


def main(argv: list[str]) -> int:
    """`python -m redis_harness.deploy.firewall [--check]` (scripts/bootstrap-host runs it)."""
    try:
        if argv[1:] == ["--check"]:
            missing = missing_rules()
            for rule in missing:
                print(f"firewall: missing {rule}")
            return 1 if missing else 0
        for rule in ensure_rules():
            print(f"firewall: added {rule}")
    except HarnessError as exc:
        print(f"redis-harness: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
