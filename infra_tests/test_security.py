"""Security: authentication, ACL confinement, container hardening, network exposure, secrets."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from redis_harness.deploy.connect import connect_node, endpoint
from redis_harness.deploy.containers import deployed_folder, project_containers
from redis_harness.deploy.tls_client import tls_kwargs
from redis_harness.profile.credentials import Secrets
from redis_harness.profile.model import Profile
from redis_harness.profile.topology import Node
from redis_harness.render.acl import SERVICE_DENIED
from redis_harness.verify import parsers, runner
from redis_harness.verify.check import Check

PROBE_TIMEOUT_S = 1
PROBE_LABEL = "io.redis-harness.probe"

# --------------------------------------------------------------------------- the server refuses


def _refusal(call: Any) -> str | None:
    """The server's error text, or None when it accepted the command.

    A Cluster node's MOVED answer counts as accepted: ACLs are checked before
    the slot, so the user was allowed and only sent to another node."""
    try:
        call()
    except redis.exceptions.MovedError:
        return None
    except redis.RedisError as exc:
        return str(exc).splitlines()[0]
    return None


def test_protected_mode_on(admin: redis.Redis, check: Check) -> None:
    check.equal("yes", admin.config_get("protected-mode")["protected-mode"])


def test_debug_command_refused(admin: redis.Redis, check: Check) -> None:
    """Even for admin (enable-debug-command no). DEBUG SLEEP 0 does nothing if it is wrongly allowed."""
    reply = _refusal(lambda: admin.execute_command("DEBUG", "SLEEP", "0"))
    refused = reply is not None and "not allowed" in reply
    check.that(refused, "DEBUG not allowed (also for admin)", reply or "DEBUG SLEEP 0 accepted")


def test_module_command_refused(admin: redis.Redis, check: Check) -> None:
    """MODULE LOAD is the protected part (MODULE LIST stays open); the path does not exist,
    so a wrongly allowed probe fails to load instead of answering "not allowed"."""
    reply = _refusal(lambda: admin.execute_command("MODULE", "LOAD", "/nonexistent/redis-harness-verify-probe.so"))
    refused = reply is not None and "not allowed" in reply
    check.that(refused, "MODULE LOAD not allowed (also for admin)", reply or "MODULE LOAD accepted")


def test_protected_configs_refused(admin: redis.Redis, check: Check) -> None:
    """CONFIG SET of a protected config (dir) fails even for admin.

    It sets dir to its current value: Redis refuses a protected config before
    looking at the value, and a wrongly accepted probe changes nothing.
    """
    current = admin.config_get("dir")["dir"]
    reply = _refusal(lambda: admin.config_set("dir", current))
    refused = reply is not None and "protected config" in reply
    check.that(refused, "CONFIG SET dir: can't set protected config", reply or f"CONFIG SET dir {current} accepted")


def _plain_client(profile: Profile, node: Node, username: str | None, password: str | None) -> redis.Redis:
    """RESP2 without retries or client name: the first command sent is exactly the one under test
    (a RESP3 client would send HELLO first and be refused for that instead). With TLS on it completes
    the handshake with the harness's certificate, so the password is what is under test."""
    host, _ = endpoint(profile)
    return redis.Redis(
        host=host,
        port=node.host_port,
        username=username,
        password=password,
        protocol=2,
        socket_connect_timeout=2,
        socket_timeout=2,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
        **tls_kwargs(profile, username),  # TLS with TLS on: the AUTH answer is what is checked, not the channel
    )


def test_unauthenticated_command_refused(profile: Profile, node: Node, check: Check) -> None:
    client = _plain_client(profile, node, None, None)
    try:
        reply = _refusal(client.ping)
    finally:
        client.close()
    # redis-py turns the NOAUTH reply into "Authentication required."
    refused = reply is not None and "authentication required" in reply.lower()
    check.that(refused, "PING without AUTH refused (NOAUTH)", reply or "PONG")


def test_wrong_password_refused(profile: Profile, secrets: Secrets, node: Node, check: Check) -> None:
    users = [secrets.default, secrets.admin, *secrets.services]
    accepted = []
    for user in users:
        client = _plain_client(profile, node, user.user, user.password + "-wrong")
        try:
            reply = _refusal(client.ping)
            if reply is None or "invalid username-password" not in reply:
                accepted.append(f"{user.user} ({reply or 'PONG'})")
        finally:
            client.close()
    check.that(
        not accepted,
        f"WRONGPASS for {len(users)} users",
        f"not refused for {' '.join(accepted)}" if accepted else "all refused",
    )


def test_no_user_has_nopass(live_acl: dict[str, parsers.AclEntry], check: Check) -> None:
    nopass = sorted(name for name, entry in live_acl.items() if entry.nopass or (entry.enabled and not entry.hashes))
    check.that(not nopass, "every user needs a password", " ".join(nopass) + " without" if nopass else "none")


def _dryrun_refusals(
    admin: redis.Redis, user: str, names: list[str], units: dict[str, parsers.CommandUnit], key: str
) -> list[str]:
    """The commands of `names` that ACL DRYRUN lets `user` run: checked, never executed."""
    pipe = admin.pipeline(transaction=False)
    for name in names:
        pipe.execute_command("ACL", "DRYRUN", user, *parsers.dryrun_argv(name, units[name].arity, key))
    replies = pipe.execute(raise_on_error=False)
    return [name for name, reply in zip(names, replies, strict=True) if reply == "OK"]


def test_default_user_at_most_one_service(
    profile: Profile, live_acl: dict[str, parsers.AclEntry], units: dict[str, parsers.CommandUnit], check: Check
) -> None:
    """`default` (a password-only login) is off, or has no more than the one service the profile names."""
    found = live_acl.get("default")
    service = profile.security.default_service
    if found is None or not found.enabled:
        check.that(service is None, f"default {profile.security.default_user}", "default off")
        return
    if service is None:
        check.that(False, "default off", f"default on: {found.summary(units)}")
        return
    own = live_acl.get(service.name)
    problems = []
    if own is None:
        problems.append(f"no user {service.name} to compare with")
    else:
        if not found.key_patterns <= own.key_patterns:
            problems.append("keys " + " ".join(sorted(found.key_patterns - own.key_patterns)))
        if not found.channel_patterns <= own.channel_patterns:
            problems.append("channels " + " ".join(sorted(found.channel_patterns - own.channel_patterns)))
        extra = parsers.allowed_commands(found.command_rules, units) - parsers.allowed_commands(
            own.command_rules, units
        )
        if extra:
            problems.append("also " + parsers.some_names(extra))
        if found.selectors:
            problems.append("selectors " + " ".join(found.selectors))
    check.that(not problems, f"default no more than {service.name}", "; ".join(problems) or "same rights or fewer")


def test_service_users_cannot_run_denied_commands(
    profile: Profile,
    admin: redis.Redis,
    live_acl: dict[str, parsers.AclEntry],
    units: dict[str, parsers.CommandUnit],
    check: Check,
) -> None:
    """Every service user (and `default`): none of the listing, cross-database, script/function
    administration or server commands, and no @dangerous or @admin command but INFO."""
    forbidden = {name for name in SERVICE_DENIED if name in units}
    forbidden |= {n for n, u in units.items() if {"@dangerous", "@admin"} & u.categories and n != "info"}
    names = sorted(forbidden)
    users = [s.name for s in profile.security.services]
    if live_acl.get("default") is not None and live_acl["default"].enabled:
        users.append("default")
    allowed = {}
    for user in users:
        prefix = next((s.key_pattern for s in profile.security.services if s.name == user), "x:*")
        if leaked := _dryrun_refusals(admin, user, names, units, prefix.replace("*", "probe")):
            allowed[user] = leaked
    check.that(
        not allowed,
        f"{len(users)} users denied {len(names)} commands (SCAN, FUNCTION FLUSH, SELECT, …)",
        "; ".join(f"{u} may run {parsers.some_names(c)}" for u, c in allowed.items()) or "all denied",
    )


def test_service_user_confined_to_prefix(
    service: str, profile: Profile, secrets: Secrets, node: Node, check: Check
) -> None:
    """A real login as the service: its own prefix reads, anything else is refused."""
    user = next(s for s in profile.security.services if s.name == service)
    own_key = user.key_pattern.replace("*", "verify-probe")
    outside = [f"other-{service}:verify-probe", "verify-probe"] + [
        s.key_pattern.replace("*", "verify-probe") for s in profile.security.services if s.name != service
    ]
    client = connect_node(profile, node, service, secrets.service(service).password)
    try:
        own = _refusal(lambda: client.get(own_key))
        leaked = [key for key in outside if "no permissions" not in (_refusal(lambda key=key: client.get(key)) or "")]
    finally:
        client.close()
    found = f"own prefix refused: {own}" if own else (f"may read {' '.join(leaked)}" if leaked else "confined")
    check.that(own is None and not leaked, f"reads {user.key_pattern} only", found)


# --------------------------------------------------------------------------- the container is hardened


def test_runs_as_non_root(redis_status: dict[str, str], check: Check) -> None:
    uids, gids = parsers.ids_of(redis_status, "Uid"), parsers.ids_of(redis_status, "Gid")
    check.that(bool(uids) and 0 not in uids and 0 not in gids, "uid and gid != 0", f"Uid {uids} Gid {gids}")


def test_root_filesystem_read_only(host: Any, redis_pid: int, inspect: dict[str, Any], check: Check) -> None:
    options = parsers.root_mount_options(host.file(f"/proc/{redis_pid}/mounts").content_string)
    flag = inspect["HostConfig"].get("ReadonlyRootfs", False)
    check.that(
        "ro" in options and flag,
        "/ mounted ro, ReadonlyRootfs true",
        f"/ mounted {options[0] if options else '?'}, ReadonlyRootfs {str(flag).lower()}",
    )


def test_effective_capabilities_zero(redis_status: dict[str, str], check: Check) -> None:
    check.equal("0000000000000000", redis_status.get("CapEff"))


def test_capability_bounding_set_empty(redis_status: dict[str, str], inspect: dict[str, Any], check: Check) -> None:
    """cap_drop ALL: nothing can be regained either (a non-root CapEff is 0 even with caps kept)."""
    bounding = redis_status.get("CapBnd")
    added = inspect["HostConfig"].get("CapAdd") or []
    check.that(
        bounding == "0000000000000000" and not added,
        "CapBnd 0000000000000000, no cap_add",
        f"CapBnd {bounding}, cap_add {added or 'none'}",
    )


def test_no_new_privileges(redis_status: dict[str, str], inspect: dict[str, Any], check: Check) -> None:
    opts = inspect["HostConfig"].get("SecurityOpt") or []
    in_inspect = any(o in ("no-new-privileges", "no-new-privileges:true") for o in opts)
    check.that(
        redis_status.get("NoNewPrivs") == "1" and in_inspect,
        "NoNewPrivs 1, security_opt no-new-privileges",
        f"NoNewPrivs {redis_status.get('NoNewPrivs')}, security_opt {opts or 'none'}",
    )


def test_not_privileged(inspect: dict[str, Any], check: Check) -> None:
    check.equal(False, inspect["HostConfig"].get("Privileged", False))


def test_no_host_namespaces(inspect: dict[str, Any], check: Check) -> None:
    config = inspect["HostConfig"]
    modes = {
        ns: config.get(key) or ""
        for ns, key in (("network", "NetworkMode"), ("pid", "PidMode"), ("ipc", "IpcMode"), ("uts", "UTSMode"))
    }
    shared = sorted(ns for ns, mode in modes.items() if mode == "host")
    check.that(
        not shared,
        "no host network/pid/ipc/uts namespace",
        f"shares host {' '.join(shared)}" if shared else "own namespaces",
    )


# --------------------------------------------------------------------------- network exposure


def _compose_ports(compose_file: Path, service: str) -> list[dict[str, Any]]:
    """The redis service's ports as Compose itself normalises them (short syntax included)."""
    result = subprocess.run(
        ["docker", "compose", "--file", str(compose_file), "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if result.returncode != 0:
        raise AssertionError(f"docker compose config failed: {result.stderr.strip().splitlines()[-1:]}")
    return json.loads(result.stdout)["services"][service].get("ports") or []


def test_published_port_loopback_only(profile: Profile, node: Node, inspect: dict[str, Any], check: Check) -> None:
    """The deployed compose file, docker inspect and the host's listening sockets: loopback only.

    The sockets are read from /proc/net of this process, i.e. the host's network
    namespace when verify runs on the Docker host (as CI does here).
    """
    problems = []
    compose_file = deployed_folder(profile) / "docker-compose.yml"
    for port in _compose_ports(compose_file, node.service):
        if not parsers.is_loopback(port.get("host_ip") or "0.0.0.0"):
            problems.append(f"compose file binds {port.get('host_ip') or '0.0.0.0'}:{port.get('published')}")
    published = []
    for bindings in (inspect["NetworkSettings"].get("Ports") or {}).values():
        for binding in bindings or []:
            published.append(int(binding["HostPort"]))
            if not parsers.is_loopback(binding.get("HostIp") or "0.0.0.0"):
                problems.append(f"inspect binds {binding.get('HostIp') or '0.0.0.0'}:{binding['HostPort']}")
    for port in published:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            listening = parsers.listening_addresses(Path(table).read_text(), port)
            problems += [f"host listens on {a}:{port}" for a in listening if not parsers.is_loopback(a)]
    if profile.network.publish == "loopback":
        expected = f"{profile.network.host}:{node.host_port} only"
        if set(published) != {node.host_port}:
            problems.append(f"published ports {published or 'none'}")
    else:
        expected = "no published port"
        if published:
            problems.append(f"published ports {published}")
    check.that(not problems, expected, "; ".join(problems) or f"{profile.network.host}:{published}")


def _declared_networks(profile: Profile, node: Node, expected_compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Docker network name -> spec, for the networks the node's service joins in a fresh render."""
    specs = expected_compose.get("networks") or {}
    joined = expected_compose["services"][node.service].get("networks") or []
    return {(specs.get(key) or {}).get("name") or f"{profile.project}_{key}": specs.get(key) or {} for key in joined}


def test_attached_only_to_declared_networks(
    profile: Profile, node: Node, expected_compose: dict[str, Any], inspect: dict[str, Any], check: Check
) -> None:
    expected = set(_declared_networks(profile, node, expected_compose))
    found = set(inspect["NetworkSettings"]["Networks"])
    check.that(found == expected, " ".join(sorted(expected)), " ".join(sorted(found)))


def test_internal_network_internal(
    profile: Profile, node: Node, expected_compose: dict[str, Any], docker: Any, check: Check
) -> None:
    declared = _declared_networks(profile, node, expected_compose)
    internal = [name for name, spec in declared.items() if spec.get("internal")]
    found = {name: docker.networks.get(name).attrs.get("Internal", False) for name in internal}
    check.that(
        bool(internal) and all(found.values()),
        " ".join(f"{n} internal" for n in internal) or "an internal network",
        " ".join(f"{n} internal={str(v).lower()}" for n, v in found.items()) or "none declared",
    )


PROBE_SCRIPT = (
    'for t in "$@"; do ('
    f' out=$(timeout {PROBE_TIMEOUT_S} redis-cli -h "$t" -p "$PORT" ping 2>&1); rc=$?;'
    ' printf "%s|%s|%s\\n" "$t" "$rc" "$(echo $out)"'
    ") & done; wait"
)


def _probe_network(docker: Any, profile: Profile) -> tuple[Any, bool]:
    """The network no profile declares; created for this check unless it already exists."""
    name = f"{profile.project}-{runner.UNDECLARED_NETWORK_SUFFIX}"
    existing = docker.networks.list(names=[name])
    if existing:
        return existing[0], False
    return docker.networks.create(name, labels={PROBE_LABEL: "verify"}), True


def test_unreachable_from_undeclared_network(
    profile: Profile, node: Node, container: Any, inspect: dict[str, Any], docker: Any, check: Check
) -> None:
    """A throwaway container (same image) on another network tries the names and every address of Redis."""
    targets = [container.name, node.service] + [
        n["IPAddress"] for n in inspect["NetworkSettings"]["Networks"].values() if n.get("IPAddress")
    ]
    network, created = _probe_network(docker, profile)
    probe = None
    try:
        probe = docker.containers.run(
            profile.image.ref,
            entrypoint=["/bin/sh", "-c", PROBE_SCRIPT, "probe"],
            command=targets,
            environment={"PORT": str(profile.network.container_port)},
            network=network.name,
            user="999:999",
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges:true"],
            mem_limit="64m",
            labels={PROBE_LABEL: "verify"},
            detach=True,
        )
        probe.wait(timeout=30)
        lines = probe.logs().decode(errors="replace").splitlines()
    finally:
        if probe is not None:
            probe.remove(force=True, v=True)  # and the anonymous /data volume the image declares
        if created:
            network.remove()
    answered = []
    for line in lines:
        target, rc, out = (line.split("|", 2) + ["", ""])[:3]
        if rc != "124" and "Could not connect" not in out and out.strip():
            answered.append(f"{target} answered {out.strip()[:30]!r}")
    if len(lines) != len(targets):
        pytest.fail(f"probe reported {len(lines)} of {len(targets)} targets: {lines}")
    check.that(not answered, f"no answer from {len(targets)} names/addresses", "; ".join(answered) or "unreachable")


# --------------------------------------------------------------------------- no plaintext secret


def _leaks(markers: list[str], texts: dict[str, str]) -> list[str]:
    return sorted({where for where, text in texts.items() for secret in markers if secret in text})


def _found(leaks: list[str], joiner: str = " ") -> str:
    return f"password or key in {joiner.join(leaks)}" if leaks else "none"


def test_no_plaintext_secret_in_environment(inspect: dict[str, Any], secret_markers: list[str], check: Check) -> None:
    env = {entry.partition("=")[0]: entry for entry in inspect["Config"].get("Env") or []}
    leaks = _leaks(secret_markers, env)
    check.that(not leaks, "no password or key in Config.Env", _found(leaks))


def test_no_plaintext_secret_in_labels(inspect: dict[str, Any], secret_markers: list[str], check: Check) -> None:
    labels = {key: f"{key}={value}" for key, value in (inspect["Config"].get("Labels") or {}).items()}
    leaks = _leaks(secret_markers, labels)
    check.that(not leaks, "no password or key in labels", _found(leaks))


def test_no_plaintext_secret_in_command_line(inspect: dict[str, Any], secret_markers: list[str], check: Check) -> None:
    config = inspect["Config"]
    texts = {
        "command": " ".join([inspect.get("Path") or "", *(inspect.get("Args") or [])]),
        "entrypoint": " ".join(config.get("Entrypoint") or []),
        "healthcheck": " ".join((config.get("Healthcheck") or {}).get("Test") or []),
    }
    leaks = _leaks(secret_markers, texts)
    check.that(not leaks, "no password or key in command, entrypoint, healthcheck", " ".join(leaks) or "none")


@pytest.mark.deployment_wide
def test_no_plaintext_secret_in_any_container_inspect(
    profile: Profile, secret_markers: list[str], check: Check
) -> None:
    """The whole `docker inspect` of every container of the deployment (Sentinels, one-shot containers too)."""
    texts = {c.name: json.dumps(c.attrs) for c in project_containers(profile)}
    leaks = _leaks(secret_markers, texts)
    check.that(not leaks, f"no password or key in docker inspect of {len(texts)} containers", _found(leaks, ", "))


def test_no_plaintext_secret_in_rendered_files(profile: Profile, secret_markers: list[str], check: Check) -> None:
    folder = deployed_folder(profile)
    texts = {p.name: p.read_text(encoding="utf-8", errors="replace") for p in sorted(folder.iterdir()) if p.is_file()}
    leaks = _leaks(secret_markers, texts)
    check.that(
        not leaks and bool(texts),
        f"no password or key in compose/{profile.name}/ ({len(texts)} files)",
        _found(leaks),
    )
