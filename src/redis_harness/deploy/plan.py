"""The difference between what runs and what the profile (with its secrets and image) says.

Per node, each setting that differs, with how `up` will apply it:
- live      CONFIG SET or ACL LOAD on the running server, SENTINEL SET on a Sentinel
            (same container, no key lost)
- restart   the same container restarted: Redis reads the rewritten file at start
            (settings Redis takes only at start; the admin password, since the server
            knows only the old one and nothing else may load the ACL)
- recreate  a new container (limits, image, ports, networks), the data volume kept
- rolling   restart or recreate of the data nodes of a replicated deployment, one at a
            time: replicas first, the primary last and (with Sentinel) after a failover
- create    a container that does not exist yet; remove: one the profile no longer has
- rebuild   the image (image.updates: newest) rebuilt from Debian's update archives
            before its containers are replaced

With security.tls, a node whose served certificate (one handshake) is not the one its file in
.state/ should hold (renewed within renew_before, `cert rotate`) is loaded live on a data node
(CONFIG SET tls-* makes Redis re-read the files) and restarted on a Sentinel, which takes neither
CONFIG SET nor SENTINEL CONFIG SET for tls-* (Redis 7.0).

A publish: host deployment's allow list in the host firewall is one more row, node
`(host firewall)`, applied live (its chain rewritten; no container touched).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import redis

from redis_harness.deploy import firewall, image_check, rotation, running
from redis_harness.deploy.desired import Desired
from redis_harness.deploy.generations import Generation
from redis_harness.deploy.image import built_suite
from redis_harness.deploy.running import HASH_LABEL, Server
from redis_harness.deploy.tls_served import served_certificate
from redis_harness.errors import HarnessError
from redis_harness.profile.credentials import PREVIOUS_SUFFIX, Secrets
from redis_harness.profile.topology import Node
from redis_harness.profile.units import format_size
from redis_harness.render.certificates import node_files, read_cert, renewal_reasons, tls_file_names
from redis_harness.render.conf_text import config_directives
from redis_harness.render.secret_files import read_secret_files, secret_path

# redis.conf directives Redis takes only at start (CONFIG SET refuses them, or
# `enable-protected-configs no` does).
RESTART_ONLY = frozenset(
    {
        "daemonize",
        "tcp-backlog",
        "logfile",
        "dir",
        "dbfilename",
        "appenddirname",
        "aclfile",
        "enable-debug-command",
        "enable-module-command",
        "enable-protected-configs",
        "cluster-enabled",
        "cluster-config-file",
        "databases",
        "supervised",
        "pidfile",
        "io-threads",
    }
)
# Values that come from a secret file: compared, never printed.
SECRET_DIRECTIVES = frozenset({"masterauth", "requirepass"})
# The directives whose CONFIG SET (even to the same value) makes Redis 7 load its TLS files again.
TLS_FILE_DIRECTIVES = ("tls-cert-file", "tls-key-file", "tls-ca-cert-file")
CERTIFICATE_SETTING = "tls certificate"
ORDER = {"refused": -1, "rebuild": 0, "create": 1, "remove": 2, "recreate": 3, "rolling": 4, "restart": 5, "live": 6}


@dataclass(frozen=True)
class Change:
    node: str
    setting: str
    running: str
    desired: str
    how: str
    risk: str = ""  # what could be lost; empty when nothing

    def as_dict(self) -> dict[str, str]:
        return {
            "node": self.node,
            "setting": self.setting,
            "running": self.running,
            "desired": self.desired,
            "how": self.how,
            "data_at_risk": self.risk or "no",
        }


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    live_config: dict[str, dict[str, str]] = field(default_factory=dict)  # service -> directive -> value
    acl_load: set[str] = field(default_factory=set)
    sentinel_set: dict[str, dict[str, str]] = field(default_factory=dict)  # Sentinel service -> option -> value
    sentinel_users: set[str] = field(default_factory=set)  # Sentinels whose users are set to the rendered lines
    restart: set[str] = field(default_factory=set)
    recreate: set[str] = field(default_factory=set)
    create: set[str] = field(default_factory=set)
    remove: set[str] = field(default_factory=set)
    secret_files: set[str] = field(default_factory=set)
    rebuild: str = ""  # the suite to rebuild the image from: it is behind its archives (image.updates: newest)
    renewals: list[str] = field(default_factory=list)  # "file: reason" of each certificate `up` issues again
    firewall: bool = False  # the deployment's allow list in the host firewall is to be (re)written
    refusal: str = ""  # why `up` will not apply this plan (nothing is changed); empty when it will
    rotation: bool = False  # the admin password (and those derived from it) rotates live (rotation.py)
    servers: dict[str, Server] = field(default_factory=dict)  # what was read from each data node

    @property
    def in_sync(self) -> bool:
        return not self.changes

    def add(self, change: Change) -> None:
        self.changes.append(change)

    def sorted_changes(self) -> list[Change]:
        return sorted(self.changes, key=lambda c: (c.node, ORDER.get(c.how, 9), c.setting))


def fingerprint(text: str) -> str:
    return "sha256 " + hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _ports(container: Any) -> list[str]:
    bindings = container.attrs.get("HostConfig", {}).get("PortBindings") or {}
    out = []
    for inner, hosts in sorted(bindings.items()):
        for h in hosts or []:
            out.append(f"{h.get('HostIp', '')}:{h.get('HostPort', '')}:{inner.split('/')[0]}")
    return sorted(out)


def _container_rows(service: str, container: Any, spec: dict[str, Any], desired: Desired) -> list[tuple[str, str, str]]:
    """(setting, running, desired) of the container settings compose decides on."""
    host = container.attrs.get("HostConfig", {})
    project = desired.profile.project
    running_networks = sorted(
        n.removeprefix(f"{project}_") for n in (container.attrs.get("NetworkSettings", {}).get("Networks") or {})
    )
    wanted_networks = sorted(spec.get("networks") or ["default"])
    rows = [
        # Each service's own image: the monitoring containers run another one than the nodes.
        ("image", container.attrs.get("Config", {}).get("Image", "?"), str(spec.get("image", desired.image_ref))),
        ("memory limit", format_size(host.get("Memory") or 0), format_size(int(spec.get("mem_limit", 0)))),
        ("cpus", f"{(host.get('NanoCpus') or 0) / 1e9:g}", f"{float(spec.get('cpus', 0)):g}"),
        ("pids limit", str(host.get("PidsLimit")), str(spec.get("pids_limit"))),
        ("ports", " ".join(_ports(container)) or "none", " ".join(sorted(spec.get("ports") or [])) or "none"),
        ("restart policy", (host.get("RestartPolicy") or {}).get("Name", ""), str(spec.get("restart", "no"))),
        ("networks", " ".join(running_networks), " ".join(wanted_networks)),
    ]
    return [row for row in rows if row[1] != row[2]]


def _risk_of_new_container(desired: Desired, server: Server | None, spec: dict[str, Any]) -> str:
    persistence = config_directives(desired.files["redis.conf"])
    if persistence.get("appendonly") != "yes" and not persistence.get("save"):
        return "yes: persistence is off, every key is lost"
    limit = int(spec.get("mem_limit", 0))
    if server is not None and server.used_memory and limit and server.used_memory > 0.9 * limit:
        return f"yes: {format_size(server.used_memory)} of data in a {format_size(limit)} container"
    return ""


def _config_rows(plan: Plan, service: str, desired: Desired, server: Server) -> None:
    wanted = config_directives(desired.files["redis.conf"])
    for name in ("replication.conf",):
        if name in desired.secret_files:
            wanted.update(config_directives(desired.secret_files[name]))
    for directive, value in sorted(wanted.items()):
        current = server.config.get(directive)
        if current is None or current == value:
            continue
        secret = directive in SECRET_DIRECTIVES
        shown_running, shown_desired = ("(secret)", "(another secret)") if secret else (current, value)
        risk = ""
        if directive == "maxmemory" and value.isdigit() and server.used_memory and int(value) < server.used_memory:
            risk = f"evictions: {format_size(server.used_memory)} used > new maxmemory {format_size(int(value))}"
        if directive in RESTART_ONLY:
            plan.restart.add(service)
            plan.add(Change(service, directive, shown_running, shown_desired, "restart", risk))
        else:
            plan.live_config.setdefault(service, {})[directive] = value
            plan.add(Change(service, directive, shown_running, shown_desired, "live", risk))


def _acl_user(line: str) -> str:
    return line.split()[1] if line.startswith("user ") and len(line.split()) > 1 else line


def _acl_tokens(line: str | None) -> list[str]:
    """An ACL LIST line as a sorted list of its rules: Redis 7.0 lists single commands in its
    hash table's order, which changes with every process (a restarted node is no drift)."""
    return sorted(line.split()) if line is not None else []


def _acl_summary(line: str | None) -> str:
    if line is None:
        return "absent"
    tokens = line.split()[2:]
    hashes = [t[1:9] for t in tokens if t.startswith("#")]
    rules = " ".join(t for t in tokens if not t.startswith("#") and t != "sanitize-payload")
    return f"hash {','.join(hashes) or 'none'}; {rules}"


def _acl_rows(plan: Plan, service: str, desired: Desired, server: Server, previous: Generation | None) -> None:
    wanted = {_acl_user(line): line for line in desired.files["users.acl"].splitlines() if line.startswith("user ")}
    now = {_acl_user(line): line for line in server.acl_list}
    recorded_file = previous.files.get("users.acl") if previous else None
    recorded_list = previous.acl_list(service) if previous else None
    applied = {_acl_user(line): line for line in (recorded_file or "").splitlines() if line.startswith("user ")}
    listed = {_acl_user(line): line for line in recorded_list or []}
    changed = []
    for user in sorted(set(wanted) | set(now)):
        if user not in wanted or user not in now:
            changed.append(user)
            continue
        wanted_hashes = {t for t in wanted[user].split() if t.startswith("#")}
        now_hashes = {t for t in now[user].split() if t.startswith("#")}
        if wanted_hashes != now_hashes:
            changed.append(user)
        elif recorded_list is None or recorded_file is None:
            continue  # no record of what the rules looked like once applied: only passwords compared
        elif applied.get(user) != wanted[user] or _acl_tokens(listed.get(user)) != _acl_tokens(now[user]):
            changed.append(user)
    for user in changed:
        plan.acl_load.add(service)
        plan.add(
            Change(service, f"ACL user {user}", _acl_summary(now.get(user)), _acl_summary(wanted.get(user)), "live")
        )


def make_plan(desired: Desired, secrets: Secrets, previous: Generation | None, *, updates: bool = True) -> Plan:
    """Read what runs and compare it with `desired`. Reads only; changes nothing. `updates=False`
    (a rollback, which runs what a generation ran and never builds) skips the archives check."""
    profile = desired.profile
    plan = Plan()
    containers = running.running_containers(profile)
    specs = {name: spec for name, spec in desired.services.items() if not spec.get("profiles")}
    data_services = {n.service for n in profile.data_nodes}
    wanted_image_id = running.image_id(desired.image_ref)
    for service in sorted(set(containers) - set(specs)):
        if service in desired.services:
            continue  # one-off jobs (cluster-init) come and go
        plan.remove.add(service)
        plan.add(Change(service, "container", containers[service].status, "absent", "remove"))
    for service, spec in sorted(specs.items()):
        container = containers.get(service)
        if container is None:
            plan.create.add(service)
            plan.add(Change(service, "container", "absent", "created", "create"))
            continue
        server = None
        # An unpublished deployment's servers are out of the host's reach: only its
        # containers are compared (a changed file then reaches Redis at the next restart).
        if service in data_services and container.status == "running" and profile.published:
            server = running.read_node(profile, container, secrets.admin.password)
            if server.auth_failed and secrets.admin.previous:
                # Mid-rotation, or about to start one: the node still runs with the previous admin password.
                server = running.read_node(profile, container, secrets.admin.previous)
            plan.servers[service] = server
        rows = _container_rows(service, container, spec, desired)
        if spec.get("image", desired.image_ref) != desired.image_ref:
            pass  # a monitoring container: its image is the monitoring stack's, not the one `up` builds
        elif wanted_image_id is not None and container.attrs.get("Image") != wanted_image_id:
            if not any(r[0] == "image" for r in rows):
                rows.append(("image id", str(container.attrs.get("Image"))[7:19], wanted_image_id[7:19]))
        elif wanted_image_id is None:
            rows.append(("image id", str(container.attrs.get("Image"))[7:19], f"{desired.image_ref} (to be built)"))
        hash_now, hash_wanted = container.labels.get(HASH_LABEL, ""), desired.service_hashes.get(service, "")
        if not rows and hash_now != hash_wanted:
            rows.append(("service definition", f"config hash {hash_now[:12]}", f"config hash {hash_wanted[:12]}"))
        if rows:
            plan.recreate.add(service)
            risk = _risk_of_new_container(desired, server, spec) if service in data_services else ""
            for setting, now, wanted in rows:
                plan.add(Change(service, setting, now, wanted, "recreate", risk))
        if container.status != "running" and service not in plan.recreate:
            plan.restart.add(service)
            plan.add(Change(service, "state", container.status, "running", "restart"))
        if server is None:
            continue
        if server.auth_failed and (profile.topology.has_replicas or profile.topology.cluster is not None):
            # Replication's, Sentinel's and the Cluster bus's passwords derive from admin's: nodes
            # restarted one at a time with the new ones could not reach the others still on the old.
            plan.refusal = (
                f"up: the admin password differs from the one {profile.name} runs with, and its internal users' "
                f"passwords derive from it; set {secrets.admin.env}{PREVIOUS_SUFFIX} to the one it runs with and "
                "`up` rotates every node to the new one live (or put the old value back)"
            )
            plan.add(Change(service, "ACL user admin", "another password", "the profile's", "refused"))
        elif server.auth_failed:
            plan.restart.add(service)
            plan.add(Change(service, "ACL user admin", "another password", "the profile's", "restart"))
        elif server.error:
            plan.restart.add(service)
            plan.add(Change(service, "server", f"unreadable: {server.error}", "answering", "restart"))
        else:
            _config_rows(plan, service, desired, server)
            _acl_rows(plan, service, desired, server, previous)
    shown = _certificate_rows(plan, desired, containers)
    _secret_file_rows(plan, desired, containers, shown)
    _firewall_rows(plan, desired)
    if profile.published and containers and not plan.refusal:
        _rotation_rows(plan, desired, secrets)
    _sentinel_rows(plan, desired, secrets, previous, containers)
    if updates:
        _image_rows(plan, desired, containers)
    if profile.topology.has_replicas:
        # One data node at a time, replicas first, the primary after a failover (Sentinel).
        plan.changes = [
            Change(c.node, c.setting, c.running, c.desired, "rolling", c.risk)
            if c.node in data_services and c.how in ("recreate", "restart")
            else c
            for c in plan.changes
        ]
    if plan.rotation:
        _rotation_alone(plan)
    # A node that gets a new container or a restart reads every file anew: its live steps are moot.
    for service in plan.recreate | plan.restart:
        plan.live_config.pop(service, None)
        plan.sentinel_set.pop(service, None)
        plan.sentinel_users.discard(service)
        plan.acl_load.discard(service)
    return plan


def _rotation_rows(plan: Plan, desired: Desired, secrets: Secrets) -> None:
    """The admin password's live rotation, when some node or Sentinel is not on the new internal
    passwords yet (a node that takes neither admin password leaves it to the rows above)."""
    try:
        behind = rotation.behind(desired, secrets)
    except HarnessError:
        return
    for reason in behind:
        member, what = reason.split(": ", 1)
        plan.add(Change(member, "admin and internal passwords", what, "the new ones alone", "live"))
    plan.rotation = bool(behind)


def _is_rotation_row(change: Change) -> bool:
    secret_file = change.setting.removeprefix("secret file ")
    return (
        change.setting in ("admin and internal passwords", "masterauth")
        or change.setting.startswith("ACL user ")
        or (change.setting != secret_file and secret_file in rotation.INTERNAL_FILES)
    )


def _rotation_alone(plan: Plan) -> None:
    """A rotation is resumed, never rolled back (rotation.py), so nothing else may ride with it."""
    others = [c for c in plan.changes if not _is_rotation_row(c)]
    if others and not plan.refusal:
        first = others[0]
        plan.refusal = (
            f"up: the admin password rotates live, and {len(others)} other change(s) are pending "
            f"({first.node}: {first.setting}); a rotation runs alone: undo the other changes in the profile, "
            "run `up` to rotate, then make them"
        )


def _image_rows(plan: Plan, desired: Desired, containers: dict[str, Any]) -> None:
    """With image.updates: newest, an image behind the -security or -updates archive is rebuilt
    and every container running it replaced (one at a time, as for any new image)."""
    if desired.profile.image.updates != "newest" or running.image_id(desired.image_ref) is None:
        return  # pinned, or not built yet (up builds it from the archives anyway)
    suite = built_suite(desired.image_ref)  # an image built with --suite is compared with, and rebuilt from, it
    pending = image_check.pending_updates(desired.image_ref, suite)
    if not pending:
        return
    plan.rebuild = suite
    security = sum(1 for p in pending if p.security)
    behind = f"{len(pending)} package(s) behind ({security} security): {', '.join(p.package for p in pending[:3])}"
    plan.add(Change("(image)", desired.image_ref, behind, "rebuilt with the archives' newest", "rebuild"))
    for service in sorted(containers):
        if desired.services.get(service, {}).get("image") == desired.image_ref and service not in plan.recreate:
            plan.recreate.add(service)
            plan.add(Change(service, "image", "current build", "rebuilt", "recreate"))


def _served(cert: Any) -> str:
    return f"serial {cert.short_serial}, until {cert.not_after:%Y-%m-%d}"


def _certificate_rows(plan: Plan, desired: Desired, containers: dict[str, Any]) -> set[str]:
    """A row for each running node that serves another certificate than the one desired: live
    (CONFIG SET tls-*) on a data node, a restart on a Sentinel. Returns the files the rows stand for."""
    profile = desired.profile
    on_disk = read_secret_files(profile, tls_file_names(profile))
    due = renewal_reasons(profile, on_disk)
    plan.renewals = [f"{file}: {reason}" for file, reason in due.items()]
    if not profile.tls.enabled or not profile.published:
        return set()  # an unpublished node's certificate reaches it at its next restart
    conf = config_directives(desired.files["redis.conf"])
    data = {n.service for n in profile.data_nodes}
    shown: set[str] = set()
    for node in profile.nodes:
        cert, key = node_files(node)
        container = containers.get(node.service)
        if cert not in desired.secret_files or container is None or container.status != "running":
            continue
        if node.service in plan.recreate:
            continue  # a new container reads the new files anyway
        wanted = read_cert(cert, desired.secret_files[cert])
        served = served_certificate(profile, node)
        if not isinstance(served, str) and served.serial == wanted.serial:
            continue
        shown.update({cert, key})
        current = read_cert(cert, on_disk[cert]) if cert in on_disk else None
        running_text = f"unreadable: {served}" if isinstance(served, str) else _served(served)
        if current is not None and current.serial == wanted.serial:
            reason = "its file's certificate is not loaded"
        else:
            reason = due.get(cert) or due.get(next(iter(due), ""), "new certificate (cert rotate)")
        if node.service in data:
            plan.live_config.setdefault(node.service, {}).update({d: conf[d] for d in TLS_FILE_DIRECTIVES})
            how = "live"
        else:
            plan.restart.add(node.service)
            how = "restart"
        plan.add(Change(node.service, CERTIFICATE_SETTING, running_text, f"{_served(wanted)}: {reason}", how))
    return shown


FIREWALL_NODE = "(host firewall)"


def _firewall_rows(plan: Plan, desired: Desired) -> None:
    """publish: host: the allow list the host firewall holds for the deployment against the profile's
    (also a chain left behind by a publish: host profile that publishes otherwise now)."""
    profile = desired.profile
    now, wanted = firewall.allowed_now(profile), profile.network.allow
    if now == wanted and not firewall.missing_allow_rules(profile):
        return
    plan.firewall = True
    shown_now, shown_wanted = " ".join(now) or "none", " ".join(wanted) or "none"
    if now == wanted:
        shown_now = f"{shown_now} (rules incomplete)"
    plan.add(Change(FIREWALL_NODE, "allow", shown_now, shown_wanted, "live"))


def _secret_file_rows(plan: Plan, desired: Desired, containers: dict[str, Any], shown: set[str]) -> None:
    for name, content in sorted(desired.secret_files.items()):
        path = secret_path(desired.profile, name)
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == content:
            continue
        plan.secret_files.add(name)
        if containers and name not in shown:
            plan.add(
                Change(
                    "(all)",
                    f"secret file {name}",
                    fingerprint(current) if current is not None else "absent",
                    fingerprint(content),
                    "live",
                )
            )


# What SENTINEL SET changes on a running Sentinel (and SENTINEL MASTER reads back).
SENTINEL_LIVE = ("quorum", "down-after-milliseconds", "failover-timeout", "parallel-syncs")
_SENTINEL_LINE = re.compile(r"^sentinel (down-after-milliseconds|failover-timeout|parallel-syncs) \S+ (\d+)$")
_MONITOR_LINE = re.compile(r"^(sentinel monitor \S+ \S+ \d+) (\d+)$")


def sentinel_settings(conf_text: str) -> dict[str, str]:
    """The SENTINEL SET options a rendered sentinel.conf asks for."""
    found = {}
    for line in conf_text.splitlines():
        if match := _SENTINEL_LINE.match(line.strip()):
            found[match[1]] = match[2]
        elif match := _MONITOR_LINE.match(line.strip()):
            found["quorum"] = match[2]
    return found


def _without_live_settings(conf_text: str) -> str:
    """sentinel.conf with what SENTINEL SET can change taken out: what a restart is for."""
    lines = []
    for line in conf_text.splitlines():
        if _SENTINEL_LINE.match(line.strip()):
            continue
        monitor = _MONITOR_LINE.match(line.strip())
        lines.append(monitor[1] if monitor else line)
    return "\n".join(lines)


def read_sentinel_settings(desired: Desired, secrets: Secrets, service: str) -> dict[str, str] | str:
    """A running Sentinel's SENTINEL MASTER figures for SENTINEL_LIVE, or why they could not be read."""
    node = next(n for n in desired.profile.sentinel_nodes if n.service == service)
    spec = desired.profile.topology.sentinel
    assert spec is not None
    try:
        client, _ = rotation.admin_login(rotation.sentinel_member(desired.profile, node), secrets)
    except HarnessError as exc:
        return str(exc).removeprefix("up: ")
    try:
        master = client.sentinel_master(spec.master_name)
    except redis.RedisError as exc:
        return str(exc)
    finally:
        client.close()
    return {option: str(master.get(option)) for option in SENTINEL_LIVE}


def _without_rotated_lines(conf_text: str) -> str:
    """sentinel.conf without what a rotation sets live too: its users (their hashes)."""
    return _without_live_settings("\n".join(line for line in conf_text.splitlines() if not line.startswith("user ")))


def _sentinel_rows(
    plan: Plan, desired: Desired, secrets: Secrets, previous: Generation | None, containers: dict[str, Any]
) -> None:
    """A Sentinel's SENTINEL SET options are compared with what it runs and set live; anything
    else in sentinel.conf (or its secret part) is copied at start, so it means a restart."""
    if "sentinel.conf" not in desired.files:
        return
    wanted_conf = desired.files["sentinel.conf"]
    recorded = previous.files.get("sentinel.conf") if previous is not None else None
    # No record of what the Sentinels started with: their own state is the truth. Their users are
    # set live (ACL SETUSER), and a rotation sets their passwords live too (rotation.py).
    restart = recorded is not None and _without_rotated_lines(recorded) != _without_rotated_lines(wanted_conf)
    restart = restart or ("sentinel.conf" in plan.secret_files and not plan.rotation)
    rules_changed = recorded is not None and _user_lines(recorded) != _user_lines(wanted_conf)
    wanted = sentinel_settings(wanted_conf)
    for node in desired.profile.sentinel_nodes:
        container = containers.get(node.service)
        if container is None or node.service in plan.recreate:
            continue
        if restart:
            plan.restart.add(node.service)
            plan.add(Change(node.service, "sentinel.conf", "as started", "rewritten", "restart"))
            continue
        if container.status != "running" or not desired.profile.published:
            continue
        now = read_sentinel_settings(desired, secrets, node.service)
        if isinstance(now, str):
            plan.restart.add(node.service)
            plan.add(Change(node.service, "sentinel", f"unreadable: {now}", "answering", "restart"))
            continue
        for option, value in sorted(wanted.items()):
            if now.get(option) != value:
                plan.sentinel_set.setdefault(node.service, {})[option] = value
                plan.add(Change(node.service, f"sentinel {option}", now.get(option, "?"), value, "live"))
        if not plan.rotation:
            _sentinel_user_rows(plan, desired, secrets, node, rules_changed)


def _user_lines(conf_text: str) -> list[str]:
    return [line for line in conf_text.splitlines() if line.startswith("user ")]


def _sentinel_user_rows(plan: Plan, desired: Desired, secrets: Secrets, node: Node, rules_changed: bool) -> None:
    """A Sentinel's users (the default user's password, a service's previous one, new rules) are set live."""
    member = rotation.sentinel_member(desired.profile, node)
    try:
        client, _ = rotation.admin_login(member, secrets)
    except HarnessError:
        return  # the row above says it is unreadable
    try:
        differ = rotation.users_not_as_rendered(desired, member, client)
    except redis.RedisError:
        return
    finally:
        client.close()
    if differ or rules_changed:
        plan.sentinel_users.add(node.service)
        users = ", ".join(sorted(differ)) or "rules"
        plan.add(Change(node.service, "sentinel ACL users", f"{users}: other passwords", "as rendered", "live"))
