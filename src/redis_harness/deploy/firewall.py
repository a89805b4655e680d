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

A deployment with `network.publish: host` is reached from other hosts: Docker DNATs their
connection in PREROUTING to the container's address and port 6379, so by FORWARD time only
conntrack still knows which published address and port it was for (--ctorigdst,
--ctorigdstport). Each such deployment gets its own chain (`deployment_chain`) that accepts
the connections whose original source is in `network.allow` and whose original destination
is one of its published ports, both directions; the dispatcher chain PUBLISHED_CHAIN jumps to
every deployment's chain, for DNATed traffic only, before the drops. Anything else keeps
falling through to the drops, so a source outside the list never gets a SYN through.
The chains hold ACCEPT, not RETURN: a RETURN would only leave the deployment's chain, and the
drops after the dispatcher's jump would still apply. Every packet is matched, not only the
first: a network taken off the list loses its open connections too. The host's own connections
to the published address are DNATed in OUTPUT and never cross FORWARD (always allowed, as for
loopback). `up` writes the chain as a live plan row (deploy.plan), `down` removes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from redis_harness.errors import HarnessError
from redis_harness.profile.model import Profile
from redis_harness.render.networks import BRIDGE_PREFIX

FORWARD_CHAIN = "REDIS-HARNESS-FWD"
INPUT_CHAIN = "REDIS-HARNESS-IN"
PUBLISHED_CHAIN = "REDIS-HARNESS-PUB"  # jumps to each publish: host deployment's chain
DEPLOYMENT_CHAIN_PREFIX = "RHP-"
_CHAIN_NAME_MAX = 28  # iptables' limit on a chain name
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
        # Connections to a publish: host deployment's port (DNATed on the way in): its allow list.
        Rule(FORWARD_CHAIN, ("-m", "conntrack", "--ctstate", "DNAT", "-j", PUBLISHED_CHAIN)),
        *_dns_rules(docker_resolvers() if resolvers is None else resolvers),
        Rule(FORWARD_CHAIN, ("-o", _BRIDGES, "-j", "DROP")),
        Rule(FORWARD_CHAIN, ("-i", _BRIDGES, "-j", "REJECT")),
        Rule("DOCKER-USER", ("-j", FORWARD_CHAIN), position=1),
        Rule(INPUT_CHAIN, ("-i", _BRIDGES, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN")),
        Rule(INPUT_CHAIN, ("-i", _BRIDGES, "-j", "REJECT")),
        Rule("INPUT", ("-j", INPUT_CHAIN), position=1),
    )


OWN_CHAINS = (FORWARD_CHAIN, INPUT_CHAIN)


def deployment_chain(profile: Profile) -> str:
    """The chain holding one deployment's allow list: RHP-<name>, or a cut name and a digest
    where the name is too long for iptables."""
    chain = f"{DEPLOYMENT_CHAIN_PREFIX}{profile.name}"
    if len(chain) <= _CHAIN_NAME_MAX:
        return chain
    digest = hashlib.sha256(profile.name.encode()).hexdigest()[:8]
    return f"{chain[: _CHAIN_NAME_MAX - 9]}-{digest}"


def _dispatch_rule(profile: Profile) -> Rule:
    comment = f"redis-harness {profile.name}"
    return Rule(PUBLISHED_CHAIN, ("-m", "comment", "--comment", comment, "-j", deployment_chain(profile)))


def allow_rules(profile: Profile) -> tuple[Rule, ...]:
    """The deployment's chain: for each published port (data nodes and Sentinels) and each
    allowed network, accept that connection both ways. Empty unless publish: host."""
    network = profile.network
    if network.publish != "host":
        return ()
    chain = deployment_chain(profile)
    return tuple(
        Rule(
            chain,
            (
                "-p",
                "tcp",
                "-m",
                "conntrack",
                "--ctorigsrc",
                source,
                "--ctorigdst",
                network.host,
                "--ctorigdstport",
                str(node.host_port),
                "-j",
                "ACCEPT",
            ),
        )
        for node in profile.nodes
        if node.host_port
        for source in network.allow
    )


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


def _create_chain(chain: str) -> None:
    if _iptables("-n", "-L", chain).returncode != 0:
        created = _iptables("-N", chain)
        if created.returncode != 0:
            raise HarnessError(f"firewall: cannot create chain {chain}: {created.stderr.strip()} (run as root)")


def ensure_rules(resolvers: list[str] | None = None) -> list[str]:
    """Create the chains, rewrite the harness's own ones that differ from `rules()`, add the
    jumps; returns what was added. `resolvers` replaces this host's (tests: [] blocks DNS).
    PUBLISHED_CHAIN is created, never rewritten: its jumps are the deployments' (ensure_allow_rules)."""
    wanted_rules = rules(resolvers)
    for chain in (PUBLISHED_CHAIN, *OWN_CHAINS, "DOCKER-USER"):
        _create_chain(chain)
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


def allowed_now(profile: Profile) -> tuple[str, ...]:
    """The source networks the deployment's chain accepts now, in its order ((): no chain)."""
    if shutil.which("iptables") is None:
        return ()
    listed = _iptables("-S", deployment_chain(profile))
    if listed.returncode != 0:
        return ()
    found: list[str] = []
    for line in listed.stdout.splitlines():
        words = line.split()
        if "--ctorigsrc" in words:
            source = words[words.index("--ctorigsrc") + 1]
            source = source if "/" in source else f"{source}/32"
            if source not in found:
                found.append(source)
    return tuple(found)


def missing_allow_rules(profile: Profile) -> list[str]:
    """What differs from the deployment's allow list as it should be: rules missing, rules that
    should not be there (another list's leftovers), the dispatcher's jump; [] when exact."""
    wanted = allow_rules(profile)
    chain = deployment_chain(profile)
    if not wanted:
        return []
    if _iptables("-n", "-L", chain).returncode != 0:
        return [f"chain {chain}"]
    problems = [f"missing {rule.describe()}" for rule in (*wanted, _dispatch_rule(profile)) if not _present(rule)]
    listed = [line for line in _iptables("-S", chain).stdout.splitlines() if line.startswith("-A ")]
    if len(listed) > len(wanted):
        problems.append(f"{len(listed) - len(wanted)} rule(s) in {chain} beyond the allow list")
    return problems


def ensure_allow_rules(profile: Profile) -> list[str]:
    """Make the deployment's chain accept exactly its allow list (rewritten in one transaction when
    it differs) and the dispatcher jump to it; a profile that is not publish: host has its chain
    removed. Returns what was written or removed (as `CHAIN args`); [] when already so."""
    wanted = allow_rules(profile)
    if not wanted:
        return remove_allow_rules(profile)
    chain = deployment_chain(profile)
    _create_chain(PUBLISHED_CHAIN)
    _create_chain(chain)
    written = []
    if not _chain_exact(chain, wanted):
        _rewrite(chain, wanted)
        written += [rule.describe() for rule in wanted]
    dispatch = _dispatch_rule(profile)
    if not _present(dispatch):
        done = _iptables("-A", dispatch.chain, *dispatch.args)
        if done.returncode != 0:
            raise HarnessError(f"firewall: cannot add {dispatch.describe()}: {done.stderr.strip()} (run as root)")
        written.append(dispatch.describe())
    return written


def _delete_chain(chain: str) -> bool:
    if _iptables("-n", "-L", chain).returncode != 0:
        return False
    _iptables("-F", chain)
    done = _iptables("-X", chain)
    if done.returncode != 0:
        raise HarnessError(f"firewall: cannot delete chain {chain}: {done.stderr.strip()} (run as root)")
    return True


def remove_allow_rules(profile: Profile) -> list[str]:
    """Take the deployment's chain and the jump to it out (down, or no longer publish: host)."""
    if shutil.which("iptables") is None:
        return []
    removed = []
    dispatch = _dispatch_rule(profile)
    while _present(dispatch):
        _iptables("-D", dispatch.chain, *dispatch.args)
        removed.append(dispatch.describe())
    if _delete_chain(deployment_chain(profile)):
        removed.append(f"chain {deployment_chain(profile)}")
    return removed


def remove_rules() -> None:
    """Take the jumps out (tests use it to show an attack working without them)."""
    for rule in rules():
        if rule.position and _present(rule):
            _iptables("-D", rule.chain, *rule.args)


def uninstall_rules() -> list[str]:
    """Take the jumps out and delete the harness's own chains: the host as before the harness
    (uninstalling); returns the chains deleted. Docker's own DOCKER-USER chain stays."""
    remove_rules()
    deployments = [
        line.split()[1]
        for line in _iptables("-S").stdout.splitlines()
        if line.startswith(f"-N {DEPLOYMENT_CHAIN_PREFIX}")
    ]
    # The forward chain jumps to the dispatcher, which jumps to the deployments' chains: empty
    # the referring chains first, or iptables refuses to delete a chain still jumped to.
    return [chain for chain in (*OWN_CHAINS, PUBLISHED_CHAIN, *deployments) if _delete_chain(chain)]


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
