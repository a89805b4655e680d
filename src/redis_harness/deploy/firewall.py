"""Packet-filter rules that keep every deployment's bridges closed from outside and from inside.

Docker 20.10 (Debian 12's engine) forwards traffic that a neighbour routes to a
container's bridge address through this host, even for a port published on
127.0.0.1 only, and lets containers open connections to the host and, through
masquerading, to anywhere. Every bridge the harness creates is named with
BRIDGE_PREFIX (compose: com.docker.network.bridge.name), (render/networks.py), so a handful of static
rules cover all deployments, present and future:

- FORWARD (through DOCKER-USER, which Docker evaluates first and never flushes):
  traffic within one harness bridge passes (replication, Sentinel, apps on
  `internal`); DNS to the resolvers Docker forwards to passes, with its replies;
  anything else routed into a harness bridge from elsewhere is dropped (the
  neighbour), and anything else leaving one is rejected (egress, failing fast).
- INPUT: a container may answer the host (the loopback-published port's replies
  are ESTABLISHED) but not open a connection to it (rejected).

Why DNS passes: Docker's embedded DNS asks the host's resolvers, from inside the
container, about any name it does not know, and a stopped node's name is one.
Blocked, that lookup hung 20-40 s and, with it, the event loop of every Sentinel
and replica trying to reach the dead primary: Sentinel entered TILT and never
failed over. What a container gains is name lookups through the host's resolvers.

The loopback-published port never crosses FORWARD: the host's own connection is
DNATed in OUTPUT and its replies come back through INPUT as ESTABLISHED.
`ensure_rules` is idempotent: the harness's own chains are rewritten whole, in one
iptables-restore, only when they are not exactly `rules()` (an older version's go).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

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


DAEMON_JSON = Path("/etc/docker/daemon.json")
RESOLV_CONFS = (Path("/etc/resolv.conf"), Path("/run/systemd/resolve/resolv.conf"))


def _nameservers(text: str) -> list[str]:
    return [line.split()[1] for line in text.splitlines() if line.startswith("nameserver ") and len(line.split()) > 1]


def docker_resolvers() -> list[str]:
    """The IPv4 resolvers Docker's embedded DNS forwards to from a container: the daemon's
    `dns`, else the host's resolv.conf (systemd-resolved's upstream list when the host's
    is loopback only). A loopback resolver is asked from the host, so it needs no rule."""
    listed: list[str] = []
    with contextlib.suppress(OSError, ValueError, AttributeError):
        listed = list(json.loads(DAEMON_JSON.read_text()).get("dns") or [])
    for conf in RESOLV_CONFS:
        if listed and not all(ipaddress.ip_address(a).is_loopback for a in listed):
            break
        try:
            listed = _nameservers(conf.read_text())
        except (OSError, ValueError):
            continue
    out = []
    for address in listed:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            continue
        if ip.version == 4 and not ip.is_loopback and address not in out:
            out.append(address)
    return out


def _dns_rules(resolvers: list[str]) -> list[Rule]:
    rules = []
    for resolver in resolvers:
        for proto in ("udp", "tcp"):
            rules.append(
                Rule(FORWARD_CHAIN, ("-i", _BRIDGES, "-d", resolver, "-p", proto, "--dport", "53", "-j", "RETURN"))
            )
            rules.append(
                Rule(
                    FORWARD_CHAIN,
                    (
                        "-o",
                        _BRIDGES,
                        "-s",
                        resolver,
                        "-p",
                        proto,
                        "--sport",
                        "53",
                        "-m",
                        "conntrack",
                        "--ctstate",
                        "ESTABLISHED",
                        "-j",
                        "RETURN",
                    ),
                )
            )
    return rules


def rules(resolvers: list[str] | None = None) -> tuple[Rule, ...]:
    """Every rule, in order, for this host's resolvers (or the ones given)."""
    return (
        Rule(FORWARD_CHAIN, ("-i", _BRIDGES, "-o", _BRIDGES, "-j", "RETURN")),
        *_dns_rules(docker_resolvers() if resolvers is None else resolvers),
        Rule(FORWARD_CHAIN, ("-o", _BRIDGES, "-j", "DROP")),
        Rule(FORWARD_CHAIN, ("-i", _BRIDGES, "-j", "REJECT")),
        Rule("DOCKER-USER", ("-j", FORWARD_CHAIN), position=1),
        Rule(INPUT_CHAIN, ("-i", _BRIDGES, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN")),
        Rule(INPUT_CHAIN, ("-i", _BRIDGES, "-j", "REJECT")),
        Rule("INPUT", ("-j", INPUT_CHAIN), position=1),
    )


OWN_CHAINS = (FORWARD_CHAIN, INPUT_CHAIN)


def _binary(name: str) -> str:
    binary = shutil.which(name)
    if binary is None:
        raise HarnessError(f"firewall: {name} not found; install it (Debian: apt-get install iptables)")
    return binary


def _iptables(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_binary("iptables"), "-w", "5", *args], capture_output=True, text=True, timeout=30)


def _present(rule: Rule) -> bool:
    return _iptables("-C", rule.chain, *rule.args).returncode == 0


def _chain_exact(chain: str, wanted_rules: tuple[Rule, ...]) -> bool:
    """Every rule meant for `chain` is there and nothing else (the harness writes the chain whole)."""
    wanted = [rule for rule in wanted_rules if rule.chain == chain]
    listed = [line for line in _iptables("-S", chain).stdout.splitlines() if line.startswith("-A ")]
    return len(listed) == len(wanted) and all(_present(rule) for rule in wanted)


def missing_rules() -> list[str]:
    """The rules not in place (as `CHAIN args`); [] when the host isolates every harness bridge."""
    return [rule.describe() for rule in rules() if not _present(rule)]


def _rewrite(chain: str, wanted_rules: tuple[Rule, ...]) -> None:
    """Replace the chain's rules with the wanted ones in one transaction: never a moment without them."""
    lines = ["*filter", f"-F {chain}"]
    lines += [f"-A {chain} {' '.join(rule.args)}" for rule in wanted_rules if rule.chain == chain]
    done = subprocess.run(
        [_binary("iptables-restore"), "--noflush", "-w", "5"],
        input="\n".join([*lines, "COMMIT", ""]),
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        raise HarnessError(f"firewall: cannot write chain {chain}: {done.stderr.strip()} (run as root)")


def ensure_rules(resolvers: list[str] | None = None) -> list[str]:
    """Create the chains, rewrite the harness's own ones that differ from `rules()`, add the
    jumps; returns what was added. `resolvers` replaces this host's (tests: [] blocks DNS)."""
    wanted_rules = rules(resolvers)
    for chain in (*OWN_CHAINS, "DOCKER-USER"):
        if _iptables("-n", "-L", chain).returncode != 0:
            created = _iptables("-N", chain)
            if created.returncode != 0:
                raise HarnessError(f"firewall: cannot create chain {chain}: {created.stderr.strip()}")
    added = []
    for chain in OWN_CHAINS:
        if not _chain_exact(chain, wanted_rules):
            _rewrite(chain, wanted_rules)
            added += [rule.describe() for rule in wanted_rules if rule.chain == chain]
    for rule in wanted_rules:
        if rule.chain in OWN_CHAINS or _present(rule):
            continue
        where = ("-I", rule.chain, str(rule.position)) if rule.position else ("-A", rule.chain)
        done = _iptables(*where, *rule.args)
        if done.returncode != 0:
            raise HarnessError(f"firewall: cannot add {rule.describe()}: {done.stderr.strip()} (run as root)")
        added.append(rule.describe())
    return added


def remove_rules() -> None:
    """Take the jumps out (tests use it to show an attack working without them)."""
    for rule in rules():
        if rule.position and _present(rule):
            _iptables("-D", rule.chain, *rule.args)


def uninstall_rules() -> list[str]:
    """Take the jumps out and delete the harness's own chains: the host as before the harness
    (uninstalling); returns the chains deleted. Docker's own DOCKER-USER chain stays."""
    remove_rules()
    deleted = []
    for chain in OWN_CHAINS:
        if _iptables("-n", "-L", chain).returncode == 0:
            _iptables("-F", chain)
            done = _iptables("-X", chain)
            if done.returncode != 0:
                raise HarnessError(f"firewall: cannot delete chain {chain}: {done.stderr.strip()} (run as root)")
            deleted.append(chain)
    return deleted


def main(argv: list[str]) -> int:
    """`python -m redis_harness.deploy.firewall [--check | --remove]` (scripts/setup runs it without
    arguments; --remove is for uninstalling)."""
    try:
        if argv[1:] == ["--remove"]:
            for chain in uninstall_rules():
                print(f"firewall: removed chain {chain} and its jump")
            return 0
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
