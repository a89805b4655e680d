"""Attack checks: what the review tried with an application's credentials, asked of the live servers.

ACL DRYRUN answers whether a user may run a command without running it, so a
check of SENTINEL FAILOVER or a forged hello never performs one. The network
side reads the host's packet filter (deploy/firewall.py); tests/test_network_integration.py
shows the attacks themselves working without those rules and refused with them.
"""

from __future__ import annotations

from typing import Any

import redis

from redis_harness.deploy import firewall
from redis_harness.deploy.connect import connect_node
from redis_harness.errors import HarnessError
from redis_harness.profile.credentials import Secrets
from redis_harness.profile.model import Profile
from redis_harness.render.acl import SENTINEL_HELLO
from redis_harness.render.networks import BRIDGE_PREFIX
from redis_harness.verify import parsers
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
