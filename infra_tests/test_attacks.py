"""Attack checks: what the review tried with an application's credentials, asked of the live servers.

ACL DRYRUN answers whether a user may run a command without running it, so a
check of SENTINEL FAILOVER or a forged hello never performs one. The network
side reads the host's packet filter (deploy/firewall.py); tests/test_network_integration.py
shows the attacks themselves working without those rules and refused with them.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest
import redis

from redis_harness.deploy import firewall
from redis_harness.deploy.connect import connect_node
from redis_harness.errors import HarnessError
from redis_harness.profile.credentials import Secrets
from redis_harness.profile.model import Profile
from redis_harness.render.acl import SENTINEL_HELLO
from redis_harness.render.networks import BRIDGE_PREFIX
from redis_harness.verify import netns, parsers
from redis_harness.verify.check import Check

# What the application password did to Sentinel in the review (never executed here).
SENTINEL_CONTROL = (
    ("sentinel", "failover", "primary"),
    ("sentinel", "remove", "primary"),
    ("sentinel", "monitor", "evil", "203.0.113.9", "6379", "1"),
    ("sentinel", "set", "primary", "auth-pass", "x"),
    ("sentinel", "reset", "*"),
    ("publish", SENTINEL_HELLO, "forged"),
    ("sentinel", "config", "set", "resolve-hostnames", "no"),
    ("shutdown",),
)


def test_only_sentinel_user_publishes_hello(
    admin: redis.Redis, live_acl: dict[str, parsers.AclEntry], check: Check
) -> None:
    """One forged hello on a data node once made every Sentinel follow another primary."""
    users = sorted(name for name, entry in live_acl.items() if entry.enabled)
    may = []
    for user in users:
        reply = admin.execute_command("ACL", "DRYRUN", user, "PUBLISH", SENTINEL_HELLO, "probe")
        if reply == "OK":
            may.append(user)
    check.that(set(may) <= {"sentinel"}, "only `sentinel` may publish on __sentinel__:hello", " ".join(may) or "none")


def test_application_password_cannot_control_sentinel(profile: Profile, secrets: Secrets, check: Check) -> None:
    """On every Sentinel, `default` (REDIS_PASSWORD) may only ask where the primary is."""
    if profile.topology.sentinel is None:
        check.that(True, "no Sentinel", "no Sentinel")
        return
    allowed: list[str] = []
    for node in profile.sentinel_nodes:
        admin = connect_node(profile, node, "admin", secrets.admin.password)
        try:
            for command in SENTINEL_CONTROL:
                if admin.execute_command("ACL", "DRYRUN", "default", *command) == "OK":
                    allowed.append(f"{node.service}: {' '.join(command[:2])}")
        finally:
            admin.close()
    check.that(
        not allowed, f"default refused {len(SENTINEL_CONTROL)} control commands", "; ".join(allowed) or "all refused"
    )


def test_host_firewall_closes_the_bridges(inspect: dict[str, Any], docker: Any, check: Check) -> None:
    """The node's networks sit on bridges the host's rules cover, and the rules are in place."""
    problems = []
    for name in inspect["NetworkSettings"]["Networks"]:
        options = docker.networks.get(name).attrs.get("Options") or {}
        bridge = options.get("com.docker.network.bridge.name", "")
        if not bridge.startswith(BRIDGE_PREFIX):
            problems.append(f"{name} on bridge {bridge or 'br-…'}")
    try:
        problems += [f"missing {rule}" for rule in firewall.missing_rules()]
    except HarnessError as exc:
        problems.append(str(exc))
    check.that(
        not problems,
        f"{BRIDGE_PREFIX}… bridges, DOCKER-USER and INPUT rules in place",
        "; ".join(problems) or "in place",
    )


def _published(profile: Profile) -> str:
    ports = ",".join(str(n.host_port) for n in profile.nodes if n.host_port)
    return f"{profile.network.host}:{ports}"


@pytest.mark.needs("published_host")
@pytest.mark.deployment_wide
def test_host_firewall_allows_only_the_allow_list(profile: Profile, check: Check) -> None:
    """publish: host: the deployment's own chain accepts new connections to its published ports from
    network.allow and nothing more (the drops after it take everyone else)."""
    try:
        problems = firewall.missing_allow_rules(profile) + [f"missing {rule}" for rule in firewall.missing_rules()]
    except HarnessError as exc:
        problems = [str(exc)]
    check.that(
        not problems,
        f"{firewall.deployment_chain(profile)}: {_published(profile)} from {' '.join(profile.network.allow)} only",
        "; ".join(problems) or "in place",
    )


def _outside_source(profile: Profile) -> str | None:
    """A /24 of the test range, the last that neither an allowed network nor the published address is
    in (None: the list covers the range)."""
    allowed = [ipaddress.ip_network(a) for a in profile.network.allow]
    published = ipaddress.ip_address(profile.network.host)
    for candidate in sorted(netns.TEST_RANGE.subnets(new_prefix=24), reverse=True):
        if published not in candidate and not any(candidate.overlaps(a) for a in allowed):
            return str(candidate)
    return None


def _host_connects(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex((host, port)) == 0


@pytest.mark.needs("published_host")
@pytest.mark.deployment_wide
def test_a_source_outside_the_allow_list_is_refused(profile: Profile, check: Check) -> None:
    """One TCP connection attempt to each published port from a throw-away namespace (on a veth
    link, an address of RFC 2544's range outside network.allow) must fail, while the host itself
    connects (a port nobody reaches would prove nothing)."""
    subnet = _outside_source(profile)
    if subnet is None:
        check.warn_unless(False, "a test address outside network.allow", f"allow covers {netns.TEST_RANGE}")
        return
    host, ports = profile.network.host, [n.host_port for n in profile.nodes if n.host_port]
    closed = [port for port in ports if not _host_connects(host, port)]
    try:
        with netns.Hosts("rhnv") as hosts:
            outsider = hosts.namespace("out", subnet, [host])
            reached = [port for port in ports if outsider.connects(host, port)]
    except (netns.NetnsError, ValueError) as exc:
        check.that(False, f"refused from {subnet}", f"no namespace: {exc}")
        return
    found = f"reached {host}:{','.join(map(str, reached))}" if reached else "refused"
    if closed:
        found += f"; the host itself cannot connect to {','.join(map(str, closed))}"
    check.that(not reached and not closed, f"refused from {subnet}, open to the host", found)
