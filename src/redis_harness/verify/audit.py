"""`verify` on a target: an audit of what a client can see of a Redis the harness did not deploy.

No container to inspect, so each check reads what the credentials given allow: as the admin
(CONFIG GET, ACL GETUSER, ACL DRYRUN) when its password is set, else as each service user
(INFO, and harmless probes). A probe never runs a command it tests for: the command is queued
inside MULTI and the transaction DISCARDed (Redis checks ACL permissions when it queues, so a
denied command answers -NOPERM and an allowed one only says QUEUED). The one write, that a
service can use its own prefix, goes to `<service>:harness-audit:<random>` and is deleted at once.
A check the credentials cannot run is reported as skipped, saying what it needs.
"""

from __future__ import annotations

import ipaddress
import secrets as pysecrets
import socket
import ssl
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from redis_harness import paths
from redis_harness.deploy.connect import connect
from redis_harness.errors import BadInput
from redis_harness.profile.credentials import TargetSecrets
from redis_harness.profile.model import Profile
from redis_harness.terminal import view_width
from redis_harness.verify.table import CheckResult, format_report

AUDIT_TAG = "harness-audit"
# A key no service prefix starts with: what a service must not be able to read or write.
ELSEWHERE = f"{AUDIT_TAG}-elsewhere:probe"
# Commands a service must not run, with arguments that pass Redis's arity check. Each is only ever
# queued inside MULTI and discarded, or asked about with ACL DRYRUN: never run.
DANGEROUS: tuple[tuple[str, ...], ...] = (
    ("FLUSHALL",),
    ("FLUSHDB",),
    ("KEYS", f"{AUDIT_TAG}:*"),
    ("SCAN", "0"),
    ("CONFIG", "SET", "maxmemory-policy", "noeviction"),
    ("CONFIG", "GET", "maxmemory"),
    ("CLIENT", "LIST"),
    ("CLIENT", "KILL", "ID", "0"),
    ("ACL", "SETUSER", f"{AUDIT_TAG}-probe"),
    ("DEBUG", "SLEEP", "0"),
    ("SWAPDB", "0", "1"),
    ("SELECT", "1"),
)
CERT_RENEW_S = 30 * 86400  # a certificate expiring sooner than this is a finding


@dataclass
class Audit:
    profile: Profile
    secrets: TargetSecrets
    timeout_s: float = 2.0

    def client(self, user: str | None, password: str) -> redis.Redis:
        return connect(
            self.profile, user, password, timeout_s=self.timeout_s, sentinel_password=self.secrets.sentinel_password
        )

    def admin(self) -> redis.Redis | None:
        admin = self.secrets.admin
        return None if admin is None else self.client(admin.user, admin.password)

    def service(self, name: str) -> redis.Redis:
        return self.client(*self.secrets.login(name))


def _result(name: str, ok: bool | None, expected: str, found: str, why: str = "") -> CheckResult:
    """ok None: could not be run with the credentials given (skipped, `why` says what it needs)."""
    status = "skip" if ok is None else "pass" if ok else "fail"
    return CheckResult(name, status, expected, found, why if ok is None else "")


def _no_admin(what: str) -> str:
    return f"not run: needs the admin's password ({what}); set target.admin and its variable"


def _config(audit: Audit, admin: redis.Redis | None, key: str) -> tuple[str | None, str]:
    """A setting via the admin's CONFIG GET, else what INFO shows a service user; (value, where read)."""
    if admin is not None:
        value = admin.config_get(key).get(key)
        return (None if value is None else str(value)), "CONFIG GET"
    info_key = {"maxmemory-policy": "maxmemory_policy", "maxmemory": "maxmemory", "appendonly": "aof_enabled"}.get(key)
    for service in audit.secrets.services:
        try:
            info = audit.service(service.user).info()
        except redis.exceptions.NoPermissionError:
            continue
        if info_key and info_key in info:
            value = info[info_key]
            if key == "appendonly":
                value = "yes" if str(value) == "1" else "no"
            return str(value), f"INFO as {audit.secrets.login(service.user)[0]}"
    return None, ""


def check_eviction_policy(audit: Audit, admin: redis.Redis | None) -> CheckResult:
    expected = audit.profile.target.eviction_policy if audit.profile.target else "volatile-lru"
    value, where = _config(audit, admin, "maxmemory-policy")
    if value is None:
        return _result("eviction_policy", None, expected, "", _no_admin("CONFIG GET or INFO"))
    return _result("eviction_policy", value == expected, expected, f"{value} ({where})")


def check_maxmemory(audit: Audit, admin: redis.Redis | None) -> CheckResult:
    expected = "maxmemory set (not 0): Redis evicts instead of growing until the host kills it"
    value, where = _config(audit, admin, "maxmemory")
    if value is None:
        return _result("maxmemory_set", None, expected, "", _no_admin("CONFIG GET or INFO"))
    return _result("maxmemory_set", int(value) > 0, expected, f"maxmemory {value} bytes ({where})")


def check_persistence(audit: Audit, admin: redis.Redis | None) -> CheckResult:
    expected = "AOF on or RDB snapshot rules: a restart does not come back empty"
    aof, where = _config(audit, admin, "appendonly")
    if aof is None:
        return _result("persistence", None, expected, "", _no_admin("CONFIG GET or INFO"))
    if aof == "yes":
        return _result("persistence", True, expected, f"appendonly yes ({where})")
    if admin is None:
        return _result("persistence", None, expected, f"appendonly no ({where})", _no_admin("CONFIG GET save"))
    save = str(admin.config_get("save").get("save") or "")
    return _result("persistence", bool(save.strip()), expected, f"appendonly no, save {save!r} (CONFIG GET)")


def check_no_password_refused(audit: Audit) -> CheckResult:
    """A client that sends no password at all is refused (-NOAUTH), whatever it asks: one PING on a bare
    connection (TLS when the target has it)."""
    expected = "a client without a password is refused (-NOAUTH)"
    try:
        with _bare_connection(audit) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(512).decode(errors="replace").strip()
    except (OSError, ssl.SSLError) as exc:
        return _result("no_password_refused", None, expected, "", f"not run: no connection ({exc})")
    target = audit.profile.target
    assert target is not None
    host, port = target.seeds[0]
    where = f"{'the Sentinel ' if target.kind == 'sentinel' else ''}{host}:{port}"
    return _result("no_password_refused", reply.startswith("-NOAUTH"), expected, f"PING to {where}: {reply}")


def _bare_connection(audit: Audit) -> socket.socket:
    """A socket to the target's first address, through TLS when the target has it (nothing sent yet)."""
    target = audit.profile.target
    assert target is not None
    host, port = target.seeds[0]
    raw = socket.create_connection((host, port), timeout=audit.timeout_s)
    if target.tls is None:
        return raw
    files = target.tls_files(audit.profile.source)
    context = ssl.create_default_context(cafile=files["ca_file"])
    if files["cert_file"]:
        context.load_cert_chain(files["cert_file"], files["key_file"])
    try:
        return context.wrap_socket(raw, server_hostname=host)
    except (OSError, ssl.SSLError):
        raw.close()
        raise


def _probe(client: redis.Redis, command: tuple[str, ...]) -> str:
    """'allowed', 'denied' or 'unknown: …': `command` queued in a transaction that is then discarded."""
    connection = client.connection_pool.get_connection()
    try:
        connection.send_command("MULTI")
        if str(connection.read_response()) not in ("OK", "b'OK'"):
            return "unknown: MULTI refused"
        try:
            connection.send_command(*command)
            reply = connection.read_response()
            answer = "allowed" if str(reply) in ("QUEUED", "b'QUEUED'") else f"unknown: {reply!r}"
        except redis.exceptions.NoPermissionError:
            answer = "denied"
        except redis.ResponseError as exc:
            # DEBUG switched off for every client (enable-debug-command no) is denied whatever the ACL says.
            answer = "denied" if "enable-debug-command" in str(exc) else f"unknown: {exc}"
        connection.send_command("DISCARD")
        connection.read_response()
        return answer
    except redis.ResponseError as exc:
        return f"unknown: {exc}"
    finally:
        client.connection_pool.release(connection)


def _dryrun(admin: redis.Redis, user: str, command: tuple[str, ...]) -> str:
    """'allowed' or 'denied', as the admin's ACL DRYRUN says (nothing runs)."""
    try:
        reply = admin.execute_command("ACL", "DRYRUN", user, *command)
    except redis.ResponseError as exc:
        return f"unknown: {exc}"
    return "allowed" if str(reply) == "OK" else "denied"


def _permission(audit: Audit, admin: redis.Redis | None, service: str) -> tuple[Callable[..., str], str]:
    """How a service's rights are read: ACL DRYRUN as admin, else probes as the service itself."""
    user = audit.secrets.login(service)[0] or "default"
    if admin is not None:
        return (lambda command: _dryrun(admin, user, command)), f"ACL DRYRUN {user}"
    client = audit.service(service)
    return (lambda command: _probe(client, command)), f"probes as {user} (MULTI … DISCARD)"


def check_service_prefix(audit: Audit, admin: redis.Redis | None, service: str) -> CheckResult:
    """The service reaches its own keys and no other's (a read and a write outside `<service>:*`)."""
    name = f"service_limited_to_prefix[{service}]"
    expected = f"{service}:* allowed; keys outside it denied (GET and SET {ELSEWHERE})"
    ask, how = _permission(audit, admin, service)
    outside = {
        "GET": ask(("GET", ELSEWHERE)),
        "SET": ask(("SET", ELSEWHERE, "x")),
    }
    inside = ask(("SET", f"{service}:{AUDIT_TAG}:probe", "x"))
    if any(a.startswith("unknown") for a in (*outside.values(), inside)):
        found = ", ".join(f"{c} outside: {a}" for c, a in outside.items()) + f"; inside: {inside}"
        return _result(name, None, expected, found, f"not run: {how} gave no clear answer")
    found = ", ".join(f"{c} outside {a}" for c, a in outside.items()) + f"; SET inside {inside} ({how})"
    ok = all(a == "denied" for a in outside.values()) and inside == "allowed"
    return _result(name, ok, expected, found)


def check_service_denied_dangerous(audit: Audit, admin: redis.Redis | None, service: str) -> CheckResult:
    name = f"service_denied_dangerous_commands[{service}]"
    shown = ", ".join(" ".join(c[:2]) if c[0] in ("CONFIG", "CLIENT", "ACL", "DEBUG") else c[0] for c in DANGEROUS)
    expected = f"denied: {shown}"
    ask, how = _permission(audit, admin, service)
    answers = {" ".join(c[:2]) if c[0] in ("CONFIG", "CLIENT", "ACL", "DEBUG") else c[0]: ask(c) for c in DANGEROUS}
    allowed = [c for c, a in answers.items() if a == "allowed"]
    unclear = [c for c, a in answers.items() if a.startswith("unknown")]
    if allowed:
        return _result(name, False, expected, f"allowed: {', '.join(allowed)} ({how})")
    if unclear:
        return _result(name, None, expected, f"unclear: {', '.join(unclear)}", f"not run: {how} gave no clear answer")
    return _result(name, True, expected, f"all {len(answers)} denied ({how})")


def check_service_own_prefix(audit: Audit, service: str) -> CheckResult:
    """The service can do its job: write, read and delete a key of its own prefix (the audit's only write,
    removed at once, with a 60 s expiry in case the delete never arrives)."""
    name = f"service_uses_own_prefix[{service}]"
    key = f"{service}:{AUDIT_TAG}:{pysecrets.token_hex(8)}"
    expected = f"SET, GET and DEL of {service}:{AUDIT_TAG}:<random> work"
    client = audit.service(service)
    try:
        client.set(key, "audit", px=60_000)
        read = client.get(key)
        removed = client.delete(key)
    except redis.RedisError as exc:
        client.delete(key) if not isinstance(exc, redis.exceptions.NoPermissionError) else None
        return _result(name, False, expected, f"{type(exc).__name__}: {exc}")
    finally:
        client.close()
    return _result(name, read == "audit" and removed == 1, expected, f"read back {read!r}, deleted {removed}")


def check_default_user(audit: Audit, admin: redis.Redis | None) -> CheckResult:
    """`default` (a password-only login) is off, or no more than one service's rights."""
    expected = "default off, or limited like a service (no FLUSHALL, no keys outside one prefix)"
    logins_as_default = [s.user for s in audit.secrets.services if audit.secrets.login(s.user)[0] == "default"]
    if admin is not None:
        try:
            flags = admin.acl_getuser("default").get("flags", [])
        except redis.ResponseError as exc:
            return _result("default_user_limited", None, expected, "", f"not run: ACL GETUSER refused ({exc})")
        if "off" in flags:
            return _result("default_user_limited", True, expected, "default is off (ACL GETUSER)")
        flush, elsewhere = _dryrun(admin, "default", ("FLUSHALL",)), _dryrun(admin, "default", ("SET", ELSEWHERE, "x"))
        ok = flush == "denied" and elsewhere == "denied"
        return _result("default_user_limited", ok, expected, f"on; FLUSHALL {flush}; SET outside {elsewhere}")
    if logins_as_default:
        flush = _probe(audit.service(logins_as_default[0]), ("FLUSHALL",))
        return _result(
            "default_user_limited", flush == "denied", expected, f"on (services log in as it); FLUSHALL {flush}"
        )
    return _result("default_user_limited", None, expected, "", _no_admin("ACL GETUSER default"))


def check_transport(audit: Audit) -> CheckResult:
    """TLS to a target off this host, with a certificate that is valid for a while yet; plaintext only on loopback."""
    target = audit.profile.target
    assert target is not None
    host, port = target.seeds[0]
    expected = "TLS, certificate valid > 30 days (plaintext only on a loopback address)"
    if target.tls is None:
        try:
            loopback = ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
        except OSError:
            loopback = False
        found = "plaintext on a loopback address" if loopback else f"plaintext to {host}: passwords and data readable"
        return _result("transport", loopback, expected, found)
    try:
        with _bare_connection(audit) as tls:
            assert isinstance(tls, ssl.SSLSocket)
            cert = tls.getpeercert() or {}
            version = tls.version()
    except (OSError, ssl.SSLError) as exc:
        return _result("transport", False, expected, f"TLS handshake failed: {exc}")
    expires = ssl.cert_time_to_seconds(str(cert.get("notAfter")))
    left = expires - time.time()
    names = ", ".join(value for _, value in cert.get("subjectAltName", ()))
    when = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%d")
    return _result(
        "transport",
        left > CERT_RENEW_S,
        expected,
        f"{version}, names {names or '-'}, expires {when} ({left / 86400:.0f} d)",
    )


def run_audit(profile: Profile, secrets: TargetSecrets) -> list[CheckResult]:
    """Every audit check against the target, in the order a reader takes them."""
    audit = Audit(profile, secrets)
    assert profile.target is not None
    first = secrets.services[0].user
    try:  # a target that does not answer, or a wrong password, is bad input (exit 2), not a finding
        audit.service(first).ping()
        admin = audit.admin()
        if admin is not None:
            admin.ping()
    except redis.RedisError as exc:
        raise BadInput(f"target: {profile.target.where} does not answer an authenticated PING ({exc})") from None
    try:
        results = [
            check_transport(audit),
            check_no_password_refused(audit),
            check_default_user(audit, admin),
            check_eviction_policy(audit, admin),
            check_maxmemory(audit, admin),
            check_persistence(audit, admin),
        ]
        for service in secrets.services:
            results += [
                check_service_own_prefix(audit, service.user),
                check_service_prefix(audit, admin, service.user),
                check_service_denied_dangerous(audit, admin, service.user),
            ]
        return results
    finally:
        if admin is not None:
            admin.close()


def as_json(profile: Profile, results: list[CheckResult], code: int) -> dict[str, Any]:
    assert profile.target is not None
    return {
        "profile": profile.name,
        "target": profile.target.where,
        "source": str(profile.source),
        "exit_code": code,
        "passed": code == 0,
        "counts": {s: sum(r.status == s for r in results) for s in ("pass", "fail", "error", "warn", "skip")},
        "checks": [r.as_dict() for r in results],
    }


def exit_code(results: list[CheckResult]) -> int:
    """0: no finding (checks that could not run are listed, not failed); 1: a finding."""
    return 1 if any(r.status in ("fail", "error") for r in results) else 0


def format_audit(profile: Profile, secrets: TargetSecrets, results: list[CheckResult], elapsed_s: float, *,
                 verbose: bool = False) -> str:  # fmt: skip
    """verify's report for a target: the verdict, each finding, (-v) every check, the counts, then the
    checks that could not run with the credentials given and what each needs."""
    assert profile.target is not None
    named = paths.profile_argument(profile.name, profile.source)
    who = f"as {secrets.admin.user}" if secrets.admin else "without admin credentials"
    text = format_report(f"audit of {profile.target.where} ({who})", [("", results)], elapsed_s, source=named,
                         verbose=verbose)  # fmt: skip
    skipped = [r for r in results if r.status == "skip"]
    if skipped:
        lines = ["not run with the credentials given:"]
        lines += [f"  {r.name}: {r.message}" for r in skipped]
        text += "\n" + "\n".join(textwrap.fill(line, view_width(), subsequent_indent="    ") for line in lines)
    return text
