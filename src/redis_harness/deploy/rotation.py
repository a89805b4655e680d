"""A new admin password on a running deployment, live, in two phases.

Replication (masterauth), Sentinel (auth-pass to the data nodes, sentinel-pass to its peers,
node-lookup), the healthcheck and the exporters log in with passwords derived from the
admin's, so a new admin password changes every link of a replicated deployment at once:
nodes restarted one at a time with the new ones could not reach the others. Instead, with the
old value in REDIS_ADMIN_PASSWORD_PREVIOUS, `up` on every node and Sentinel:

1. accept  the new hashes beside the old ones (ACL SETUSER user #new): both log in;
2. switch  what logs in: the secret files a (re)start reads, masterauth (CONFIG SET), each
           Sentinel's auth-pass and sentinel-pass, the exporters (restarted: they read theirs
           at start);
3. drop    the old hashes (ACL LOAD of the rewritten users.acl; on a Sentinel, each user set
           to its rendered line);
4. prove   every link with the new passwords alone: the internal users' connections are
           dropped (CLIENT KILL USER) and `up` waits until every replica, every Sentinel's
           links to the data nodes and to its peers are back, made after the drop.

Every step can run again, and each logs in with whichever admin password a node accepts, so
an `up` killed mid-way is finished by the next one. A rotation runs alone (plan.py refuses it
beside other changes): a failure leaves new passwords on some nodes, which a rollback to the
previous generation's files could not take back, so it is resumed, never rolled back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from redis_harness import paths, progress
from redis_harness.deploy import running
from redis_harness.deploy.compose_cmd import compose
from redis_harness.deploy.connect import connect_node
from redis_harness.deploy.desired import Desired
from redis_harness.errors import HarnessError
from redis_harness.profile.credentials import PREVIOUS_SUFFIX, Secrets
from redis_harness.profile.model import Profile
from redis_harness.profile.topology import Node
from redis_harness.render.acl import SENTINEL_PEER_USER
from redis_harness.render.monitoring import exporter_service

# The users a data node or a Sentinel accepts whose passwords derive from the admin's (or are it).
INTERNAL_USERS = frozenset(
    {"admin", "healthcheck", "replication", "sentinel", "exporter", SENTINEL_PEER_USER, "node-lookup"}
)
# The secret files that carry those passwords.
INTERNAL_FILES = frozenset(
    {"healthcheck", "replication.conf", "sentinel.conf", "node-lookup", "exporter", "cluster-admin"}
)
PROOF_TIMEOUT_S = 30.0
POLL_S = 0.25


@dataclass(frozen=True)
class Member:
    """A data node or a Sentinel, and how to open an admin client to it with a given password."""

    service: str
    sentinel: bool
    open_client: Callable[[str], redis.Redis]


def members(profile: Profile) -> list[Member]:
    containers = running.running_containers(profile)
    found = [
        Member(n.service, False, _data_opener(profile, containers[n.service]))
        for n in profile.data_nodes
        if n.service in containers
    ]
    return found + [sentinel_member(profile, n) for n in profile.sentinel_nodes]


def _data_opener(profile: Profile, container: object) -> Callable[[str], redis.Redis]:
    return lambda password: running.node_client(profile, container, password)


def sentinel_member(profile: Profile, node: Node) -> Member:
    return Member(node.service, True, lambda password: connect_node(profile, node, "admin", password, retries=0))


def admin_login(member: Member, secrets: Secrets) -> tuple[redis.Redis, bool]:
    """(admin client, whether it took the previous password). HarnessError naming the member and
    the variable to set when neither password is accepted."""
    previous = secrets.admin.previous
    for password, is_previous in ((secrets.admin.password, False), (previous, True)):
        if password is None:
            continue
        try:
            client = member.open_client(password)  # a container that publishes no port raises here
        except redis.RedisError as exc:
            raise HarnessError(f"up: {member.service}: {exc}") from None
        try:
            client.ping()
            return client, is_previous
        except redis.AuthenticationError:
            client.close()
        except redis.RedisError as exc:
            client.close()
            raise HarnessError(f"up: {member.service}: {exc}") from None
    variable = secrets.admin.env + PREVIOUS_SUFFIX
    hint = "is not the one it runs with either" if previous else "is not set"
    raise HarnessError(
        f"up: {member.service} refuses the admin password and {variable} {hint}; set {variable} to the "
        "admin password the deployment runs with, and `up` rotates to the new one live"
    )


@contextmanager
def _admin(member: Member, secrets: Secrets) -> Iterator[redis.Redis]:
    client, _ = admin_login(member, secrets)
    try:
        yield client
    except redis.RedisError as exc:
        raise HarnessError(f"up: {member.service}: {exc}") from None
    finally:
        client.close()


def wanted_hashes(desired: Desired, sentinel: bool) -> dict[str, list[str]]:
    """user -> the hashes the rendered file gives it (users.acl, or the Sentinels' users in sentinel.conf)."""
    return {user: [t[1:] for t in line.split() if t.startswith("#")] for user, line in _user_lines(desired, sentinel)}


def _user_lines(desired: Desired, sentinel: bool) -> list[tuple[str, str]]:
    text = desired.files["sentinel.conf" if sentinel else "users.acl"]
    return [(line.split()[1], line) for line in text.splitlines() if line.startswith("user ")]


def _unfinished_marker(profile: Profile) -> Path:
    """Written when a rotation starts, removed when its proof passed: a rotation whose `up` died after
    the last password moved but before every link was proven is still one to finish."""
    return paths.state_dir(profile.name) / "rotation-unfinished"


def begin(profile: Profile) -> None:
    marker = _unfinished_marker(profile)
    marker.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%S%z\n"), encoding="utf-8")


def forget(profile: Profile) -> None:
    """The rotation is over: proven, or its deployment removed with its data."""
    _unfinished_marker(profile).unlink(missing_ok=True)


def behind(desired: Desired, secrets: Secrets) -> list[str]:
    """Why the deployment's internal passwords are not yet the profile's, one reason per member
    (empty: nothing to rotate). Reads only. A member that refuses both admin passwords raises."""
    reasons = []
    if _unfinished_marker(desired.profile).is_file():
        reasons.append("(all): a rotation started and its links were not proven")
    for member in members(desired.profile):
        client, on_previous = admin_login(member, secrets)
        try:
            if on_previous:
                reasons.append(f"{member.service}: accepts the previous admin password only")
                continue
            differ = users_not_as_rendered(desired, member, client)
        except redis.RedisError as exc:  # a node restarting (loading its data) answers nothing yet
            raise HarnessError(f"up: {member.service}: {exc}") from None
        finally:
            client.close()
        for user in sorted(set(differ) & INTERNAL_USERS):
            reasons.append(f"{member.service}: user {user} has {differ[user]} password(s), not the profile's one")
    return reasons


def users_not_as_rendered(desired: Desired, member: Member, client: redis.Redis) -> dict[str, int]:
    """user -> how many passwords it has, for each user whose password hashes on `member` are not the rendered ones."""
    listed = {line.split()[1]: line.split() for line in client.acl_list()}
    differ = {}
    for user, hashes in wanted_hashes(desired, member.sentinel).items():
        now = {t[1:] for t in listed.get(user, []) if t.startswith("#")}
        if now != set(hashes):
            differ[user] = len(now)
    return differ


def set_users_as_rendered(desired: Desired, member: Member, client: redis.Redis) -> None:
    """Every user of a Sentinel (which keeps them in its own copy of sentinel.conf, not in a file ACL
    LOAD reads) set to its rendered line: its passwords and rules, nothing else."""
    for user, line in _user_lines(desired, sentinel=True):
        client.execute_command("ACL", "SETUSER", user, "reset", *line.split()[2:])


def accept_new(desired: Desired, secrets: Secrets) -> None:
    """Phase 1: every member accepts the new passwords beside the ones it has."""
    for member in members(desired.profile):
        progress.note(f"{member.service}: accepting the new passwords beside the old")
        with _admin(member, secrets) as client:
            for user, hashes in wanted_hashes(desired, member.sentinel).items():
                if hashes:
                    client.execute_command("ACL", "SETUSER", user, *[f"#{h}" for h in hashes])


def switch_links(desired: Desired, secrets: Secrets) -> None:
    """Phase 2 (the secret files are rewritten by then): every link logs in with the new password."""
    profile = desired.profile
    spec = profile.topology.sentinel
    for member in members(profile):
        with _admin(member, secrets) as client:
            if member.sentinel and spec is not None:
                progress.note(f"{member.service}: SENTINEL SET auth-pass, SENTINEL CONFIG SET sentinel-pass")
                client.execute_command("SENTINEL", "SET", spec.master_name, "auth-pass", secrets.derived("sentinel"))
                client.execute_command(
                    "SENTINEL", "CONFIG", "SET", "sentinel-pass", secrets.derived(SENTINEL_PEER_USER)
                )
            elif not member.sentinel and profile.topology.has_replicas:
                progress.note(f"{member.service}: CONFIG SET masterauth")
                client.config_set("masterauth", secrets.derived("replication"))
    if profile.monitoring.enabled:
        services = [exporter_service(n.service) for n in profile.data_nodes]
        progress.note("restarting the exporters to read their new password")
        compose(profile, "restart", *services)


def drop_old(desired: Desired, secrets: Secrets) -> None:
    """Phase 3: the old hashes go. Data nodes load the rewritten users.acl; a Sentinel keeps its users
    in its own copy of sentinel.conf, so each is set to its rendered line."""
    for member in members(desired.profile):
        progress.note(f"{member.service}: dropping the old passwords")
        with _admin(member, secrets) as client:
            if member.sentinel:
                set_users_as_rendered(desired, member, client)
            else:
                client.execute_command("ACL", "LOAD")


def prove_links(desired: Desired, secrets: Secrets) -> float:
    """Phase 4: drop the internal users' connections, then wait until every link is back, made after
    the drop (a higher client id), so with the new passwords alone. A primary's replicas are dropped
    one at a time, each back online before the next goes, so min-replicas-to-write never refuses a
    write. Returns the seconds it took."""
    profile = desired.profile
    everyone = members(profile)
    started = time.monotonic()
    marks: dict[str, int] = {}
    for member in everyone:
        with _admin(member, secrets) as client:
            marks[member.service] = int(client.client_id())
            users = {SENTINEL_PEER_USER} if member.sentinel else {"sentinel"}
            for user in sorted(users & set(wanted_hashes(desired, member.sentinel))):
                client.execute_command("CLIENT", "KILL", "USER", user)
            if not member.sentinel and client.info("replication").get("role") == "master":
                _drop_replicas_one_by_one(member.service, client)
    progress.note("every internal link dropped; waiting for them to log in again with the new passwords")
    _wait_for(lambda: _links_missing(profile, everyone, secrets, marks))
    _previous_refused(everyone, secrets)
    forget(profile)
    return time.monotonic() - started


def _wait_for(missing: Callable[[], str | None]) -> None:
    deadline = time.monotonic() + PROOF_TIMEOUT_S
    while (problem := missing()) is not None:
        if time.monotonic() > deadline:
            raise HarnessError(f"up: not every link logged in again with the new passwords: {problem}")
        time.sleep(POLL_S)


def _online_replicas(client: redis.Redis) -> set[str]:
    info = client.info("replication")
    return {f"{v['ip']}:{v['port']}" for k, v in info.items() if k.startswith("slave") and v.get("state") == "online"}


def _drop_replicas_one_by_one(service: str, client: redis.Redis) -> None:
    expected = len(_online_replicas(client))
    for link in [c for c in client.client_list() if c.get("user") == "replication"]:
        client.execute_command("CLIENT", "KILL", "ID", link["id"])

        def back(killed: str = link["id"]) -> str | None:
            ids = {c["id"] for c in client.client_list() if c.get("user") == "replication"}
            online = len(_online_replicas(client))
            return None if killed not in ids and online >= expected else f"{service}: {online} of {expected} replicas"

        _wait_for(back)


def _links_missing(profile: Profile, everyone: list[Member], secrets: Secrets, marks: dict[str, int]) -> str | None:
    """What has not logged in again since the drop: Sentinels on each data node (a command and a
    hello link each), Sentinels on their peers."""
    sentinels = profile.topology.sentinel.sentinels if profile.topology.sentinel is not None else 0
    for member in everyone:
        with _admin(member, secrets) as client:
            fresh = [c for c in client.client_list() if int(c["id"]) > marks[member.service]]
        if member.sentinel:
            peers = sum(1 for c in fresh if c.get("user") == SENTINEL_PEER_USER)
            if peers < sentinels - 1:
                return f"{member.service}: {peers} of {sentinels - 1} peer Sentinels logged in"
            continue
        watching = sum(1 for c in fresh if c.get("user") == "sentinel")
        if watching < 2 * sentinels:
            return f"{member.service}: {watching} of {2 * sentinels} Sentinel links logged in"
    return None


def _previous_refused(everyone: list[Member], secrets: Secrets) -> None:
    """The end of a rotation: no member takes the previous admin password any more."""
    if not secrets.admin.previous:
        return
    for member in everyone:
        try:
            client = member.open_client(secrets.admin.previous)  # as in admin_login: may raise here
        except redis.RedisError as exc:
            raise HarnessError(f"up: {member.service}: {exc}") from None
        try:
            client.ping()
        except redis.AuthenticationError:
            continue
        except redis.RedisError as exc:
            raise HarnessError(f"up: {member.service}: {exc}") from None
        finally:
            client.close()
        raise HarnessError(f"up: {member.service} still accepts the previous admin password after the rotation")
