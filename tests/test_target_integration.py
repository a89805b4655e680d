"""load, monitor and verify (the audit) against Redis servers the harness did not start, from a hand-written
redis.conf (tests/external_redis.py), each run two ways: the harness's image with a plain `docker run`, and
Debian's redis-server as a plain process of this host. One permissive
(a password on `default`, no other user, no maxmemory, allkeys-lru, no persistence) and one locked down
(the harness's service rules for `price`, an admin, volatile-lru, AOF). Each with and without the admin's
password. The permissive server is the broken variant every audit check is shown failing on."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis

from redis_harness.bench import measure as bench
from redis_harness.errors import HarnessError
from redis_harness.load.scenarios import raw_key
from redis_harness.profile.credentials import target_secrets
from redis_harness.profile.model import load_profile
from redis_harness.verify.audit import AUDIT_TAG

from .external_redis import (
    HOWS,
    ExternalRedis,
    ExternalTls,
    ExternalTopology,
    external_redis,
    external_tls,
    external_topology,
    target_profile,
)
from .test_cli import run_cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("external")
    path.chmod(0o755)  # the image's redis user reads the config mounted from here
    return path


# Load runs (~30 s each) once, on the plain process: the docker-run servers answer the same protocol,
# and the audit and monitor tests cover both.
ON_THE_PROCESS_ONLY = pytest.mark.parametrize("how", ["process"], indirect=True)


@pytest.fixture(scope="module", params=HOWS)
def how(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def permissive(folder: Path, how: str) -> Iterator[ExternalRedis]:
    with external_redis("permissive", folder, how) as server:
        yield server


@pytest.fixture(scope="module")
def locked(folder: Path, how: str) -> Iterator[ExternalRedis]:
    with external_redis("locked", folder, how) as server:
        yield server


def profiles(folder: Path, server: ExternalRedis, kind: str) -> dict[str, Path]:
    """The server's target profile with and without the admin (on the permissive one the service and the
    admin are both its `default` user)."""
    login, admin = ("default", "default") if kind == "permissive" else ("price", "admin")
    return {
        "admin": target_profile(folder, f"external-{kind}", server.port, login=login, admin=admin),
        "no admin": target_profile(folder, f"external-{kind}-noadmin", server.port, login=login, admin=None),
    }


def audit(path: Path, server: ExternalRedis) -> tuple[int, dict[str, dict[str, str]]]:
    result = run_cli("verify", str(path), "--json", env=server.env)
    assert "Traceback" not in result.stderr and result.stdout, result.stderr
    document = json.loads(result.stdout)
    return result.returncode, {c["name"]: c for c in document["checks"]}


CHECKS = (
    "transport",
    "no_password_refused",
    "default_user_limited",
    "eviction_policy",
    "maxmemory_set",
    "persistence",
    "service_uses_own_prefix[price]",
    "service_limited_to_prefix[price]",
    "service_denied_dangerous_commands[price]",
)


def test_audit_passes_the_locked_down_server(folder: Path, locked: ExternalRedis) -> None:
    paths = profiles(folder, locked, "locked")
    code, checks = audit(paths["admin"], locked)
    assert code == 0 and tuple(checks) == CHECKS
    assert all(c["status"] == "pass" for c in checks.values()), checks
    assert "ACL DRYRUN price" in checks["service_denied_dangerous_commands[price]"]["found"]
    # Without the admin: probes as price; what needs the admin is listed as not run, not failed.
    code, checks = audit(paths["no admin"], locked)
    assert code == 0
    assert checks["default_user_limited"]["status"] == "skip"
    assert "needs the admin's password" in checks["default_user_limited"]["message"]
    assert "probes as price" in checks["service_denied_dangerous_commands[price]"]["found"]
    assert {n for n, c in checks.items() if c["status"] == "pass"} == set(CHECKS) - {"default_user_limited"}
    text = run_cli("verify", str(paths["no admin"]), env=locked.env)
    assert text.returncode == 0 and "not run with the credentials given:" in text.stdout
    assert max(len(line) for line in text.stdout.splitlines()) <= 100


def test_audit_finds_each_weakness_of_the_permissive_server(folder: Path, permissive: ExternalRedis) -> None:
    paths = profiles(folder, permissive, "permissive")
    findings = {
        "default_user_limited",
        "eviction_policy",
        "maxmemory_set",
        "persistence",
        "service_limited_to_prefix[price]",
        "service_denied_dangerous_commands[price]",
    }
    code, checks = audit(paths["admin"], permissive)
    assert code == 1
    assert {n for n, c in checks.items() if c["status"] == "fail"} == findings, checks
    assert "allkeys-lru" in checks["eviction_policy"]["found"] and "0 bytes" in checks["maxmemory_set"]["found"]
    assert "FLUSHALL" in checks["service_denied_dangerous_commands[price]"]["found"]
    # Without the admin the same findings come from INFO and probes; the save rules need CONFIG GET.
    code, checks = audit(paths["no admin"], permissive)
    assert code == 1
    assert {n for n, c in checks.items() if c["status"] == "fail"} == findings - {"persistence"}
    assert checks["persistence"]["status"] == "skip"
    text = run_cli("verify", str(paths["no admin"]), env=permissive.env).stdout
    for finding in findings - {"persistence"}:
        assert f"FAIL  {finding}" in text, text


def test_audit_writes_only_its_own_key_and_removes_it(folder: Path, permissive: ExternalRedis) -> None:
    admin = permissive.client(None, permissive.env["REDIS_PASSWORD"])
    before = set(admin.scan_iter(count=1000))
    audit(profiles(folder, permissive, "permissive")["admin"], permissive)
    audit(profiles(folder, permissive, "permissive")["no admin"], permissive)
    assert set(admin.scan_iter(count=1000)) == before  # nothing left, and the probes ran nothing (no FLUSHALL)
    assert not [k for k in admin.scan_iter(match=f"*{AUDIT_TAG}*")]


def test_a_client_without_password_is_a_finding_when_served(folder: Path, permissive: ExternalRedis) -> None:
    """The broken variant of no_password_refused: `default` switched to nopass for the test."""
    admin = permissive.client(None, permissive.env["REDIS_PASSWORD"])
    path = profiles(folder, permissive, "permissive")["admin"]
    assert audit(path, permissive)[1]["no_password_refused"]["status"] == "pass"
    admin.execute_command("ACL", "SETUSER", "default", "nopass")
    try:
        assert audit(path, permissive)[1]["no_password_refused"]["status"] == "fail"
    finally:
        admin.execute_command("ACL", "SETUSER", "default", "resetpass", f">{permissive.env['REDIS_PASSWORD']}")


def test_a_service_without_its_prefix_is_a_finding(folder: Path, locked: ExternalRedis) -> None:
    """The broken variant of service_uses_own_prefix: a user whose keys are another prefix."""
    admin = locked.client("admin", locked.env["REDIS_ADMIN_PASSWORD"])
    admin.execute_command("ACL", "SETUSER", "quote", "on", f">{locked.env['REDIS_PRICE_PASSWORD']}",
                          "resetkeys", "~other:*", "-@all", "+get", "+set", "+del", "+ping", "+info", "+multi",
                          "+discard")  # fmt: skip
    path = folder / "external-quote.yaml"
    path.write_text(
        json.dumps(
            {
                "name": "external-quote",
                "target": {
                    "address": f"127.0.0.1:{locked.port}",
                    "services": {"quote": {"password_env": "REDIS_PRICE_PASSWORD"}},
                },
            }
        )
    )
    try:
        code, checks = audit(path, locked)
    finally:
        admin.execute_command("ACL", "DELUSER", "quote")
    assert code == 1
    assert checks["service_uses_own_prefix[quote]"]["status"] == "fail"
    assert checks["service_limited_to_prefix[quote]"]["status"] == "fail"  # its own prefix denied


def load(path: Path, server: ExternalRedis, report: Path) -> tuple[int, dict]:
    result = run_cli("load", str(path), "--scenario", "smoke", "--report", str(report), env=server.env)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    return result.returncode, json.loads((report / "report.json").read_text())


def gate(report: dict, name: str) -> dict:
    return next(g for g in report["gates"] if g["name"] == name)


@ON_THE_PROCESS_ONLY
def test_load_smoke_on_the_locked_server(folder: Path, locked: ExternalRedis) -> None:
    paths = profiles(folder, locked, "locked")
    code, report = load(paths["admin"], locked, folder / f"run-locked-{locked.how}")
    assert code == 0 and report["passed"] and report["server_figures"] is True
    assert gate(report, "memory")["judged"] and gate(report, "memory")["passed"]
    assert not gate(report, "no_oom_kill")["judged"]  # no container of the harness's to ask
    assert report["findings"]["workloads_left_out"] == ["DataAcquisition", "DataProcessing", "LockContention"]
    code, report = load(paths["no admin"], locked, folder / f"run-locked-noadmin-{locked.how}")
    assert code == 0 and report["server_figures"] is False
    assert not gate(report, "memory")["judged"] and "admin password" in gate(report, "memory")["detail"]
    # No INFO was read: the server's figures are not available (None), never zero.
    assert report["server"]["maxmemory"] is None and report["server"]["used_memory_max"] is None


@ON_THE_PROCESS_ONLY
def test_load_smoke_on_the_permissive_server(folder: Path, permissive: ExternalRedis) -> None:
    paths = profiles(folder, permissive, "permissive")
    admin = permissive.client(None, permissive.env["REDIS_PASSWORD"])
    admin.flushall()
    code, report = load(paths["admin"], permissive, folder / f"run-permissive-{permissive.how}")
    # The memory gate judges a Redis without maxmemory as it would the harness's own: a failure.
    assert code == 1 and not gate(report, "memory")["passed"] and gate(report, "memory")["judged"]
    assert "maxmemory is 0" in gate(report, "memory")["detail"]
    assert gate(report, "error_rate")["passed"]
    code, report = load(paths["no admin"], permissive, folder / f"run-permissive-noadmin-{permissive.how}")
    assert code == 0 and not gate(report, "memory")["judged"]
    # Nothing was written outside the service's prefix (the calibration key included), though the
    # permissive server would have allowed it.
    assert {k.split(":", 1)[0] for k in admin.scan_iter(count=1000)} == {"price"}


def monitor(path: Path, server: ExternalRedis) -> dict:
    result = run_cli("monitor", str(path), "--once", "--json", "--interval", "0.5", env=server.env)
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
    return json.loads(result.stdout)


def test_monitor_once_json_on_both_servers(folder: Path, locked: ExternalRedis, permissive: ExternalRedis) -> None:
    paths = profiles(folder, locked, "locked")
    full = monitor(paths["admin"], locked)
    assert full["target"] == f"127.0.0.1:{locked.port}" and full["container_figures"] is False
    assert full["read_as"] == "admin" and full["not_available"] == [] and full["memory"]["maxmemory"] == 64 * 2**20
    assert full["clients"] and all(a.get("available", True) for a in full["alerts"])
    limited = monitor(paths["no admin"], locked)
    assert limited["read_as"] == "price"
    assert {"slowlog", "client list"} <= set(limited["not_available"])
    assert limited["slowest"] == [] and limited["clients"] == {}
    slow = next(a for a in limited["alerts"] if a["name"] == "slow_updates")
    assert slow["available"] is False and slow["value"] is None and not slow["firing"]
    assert limited["memory"]["used"] is not None  # INFO is a service command in the harness's rules
    for path in profiles(folder, permissive, "permissive").values():
        seen = monitor(path, permissive)
        assert seen["read_as"] == "default" and seen["not_available"] == [] and seen["policy"] == "allkeys-lru"


def test_monitor_terminal_view_on_a_target(folder: Path, locked: ExternalRedis) -> None:
    path = profiles(folder, locked, "locked")["no admin"]
    result = run_cli("monitor", str(path), "--once", "--interval", "0.5", env=locked.env)
    assert result.returncode == 0, result.stderr
    assert "n/a" in result.stdout and "not available to this user" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 100


def test_the_servers_are_not_the_harness_s(locked: ExternalRedis) -> None:
    """What makes these targets: a container with no compose labels, started by plain docker run, or a
    process of this host outside any container, run from Debian's package."""
    if locked.how == "process":
        process = psutil.Process(locked.pid)
        assert process.exe() == os.path.realpath("/usr/bin/redis-server") and process.is_running()
        assert "docker" not in Path(f"/proc/{locked.pid}/cgroup").read_text()
        assert (f"127.0.0.1:{locked.port}", "LISTEN") in {
            (f"{c.laddr.ip}:{c.laddr.port}", c.status) for c in process.net_connections()
        }
        return
    labels = subprocess.run(
        ["docker", "inspect", "-f", "{{json .Config.Labels}}", locked.name], capture_output=True, text=True, check=True
    ).stdout
    assert "com.docker.compose" not in labels


@ON_THE_PROCESS_ONLY
def test_bench_on_a_target_with_its_admin(folder: Path, locked: ExternalRedis) -> None:
    """redis-benchmark beside the raw scenario on a Redis the harness did not deploy: its admin makes and
    removes redis-benchmark's temporary user; without the admin bench refuses before anything runs."""
    paths = profiles(folder, locked, "locked")
    run_dir = folder / f"bench-{locked.how}"
    result = run_cli("bench", str(paths["admin"]), "--duration", "1s", "--report", str(run_dir), env=locked.env)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    bench = json.loads((run_dir / "bench.json").read_text())
    assert bench["endpoint"] == f"127.0.0.1:{locked.port}"
    assert bench["redis_benchmark"]["closed_loop"]["ops_s"] > 0
    assert all(run["ops_s"] > 0 for run in bench["harness"].values()), bench["harness"]
    admin = locked.client("admin", locked.env["REDIS_ADMIN_PASSWORD"])
    assert [u for u in admin.acl_users() if u.startswith("bench-")] == []  # its user is gone
    left = [k for pattern in ("key:*", raw_key(0).rsplit(":", 1)[0] + ":*") for k in admin.scan_iter(match=pattern)]
    assert left == [], "redis-benchmark's key:* or raw's keys were left behind"
    refused = run_cli("bench", str(paths["no admin"]), "--report", str(folder / "bench-refused"), env=locked.env)
    assert refused.returncode == 2 and refused.stderr.strip().startswith("redis-harness: target.admin:")
    assert len(refused.stderr.strip().splitlines()) == 1 and not (folder / "bench-refused").exists()


@pytest.fixture(scope="module", params=["sentinel", "cluster"])
def topology(request: pytest.FixtureRequest, folder: Path) -> Iterator[ExternalTopology]:
    with external_topology(str(request.param), folder) as found:
        yield found


def test_load_monitor_and_audit_on_a_sentinel_or_cluster_target(folder: Path, topology: ExternalTopology) -> None:
    """A Sentinel set-up (the primary asked of the Sentinel) and a three-primary Cluster (the slots learned
    from a seed node), both locked down as the harness's own: the smoke run passes with the server's
    figures, monitor reads them, and the audit passes; without the admin, figures are not available."""
    with_admin, without_admin = topology.profile(folder), topology.profile(folder, admin=False)
    run = folder / f"run-{topology.kind}"
    result = run_cli("load", str(with_admin), "--scenario", "smoke", "--report", str(run), env=topology.env)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    report = json.loads((run / "report.json").read_text())
    assert result.returncode == 0 and report["passed"] and report["server_figures"] is True, result.stderr[-2000:]
    assert report["commands"]["cache.get price"]["count"] > 0
    seen = monitor(with_admin, topology)
    assert seen["read_as"] == "admin" and seen["not_available"] == [], seen
    assert seen["memory"]["maxmemory"] == 64 * 2**20 and seen["policy"] == "volatile-lru"
    limited = monitor(without_admin, topology)
    assert limited["read_as"] == "price" and {"slowlog", "client list"} <= set(limited["not_available"])
    audited = run_cli("verify", str(with_admin), "--json", env=topology.env)
    assert "Traceback" not in audited.stderr and audited.stdout, audited.stderr
    checks = {c["name"]: c["status"] for c in json.loads(audited.stdout)["checks"]}
    assert audited.returncode == 0 and "fail" not in checks.values(), checks
    if topology.kind == "sentinel":
        # The broken variant: a Sentinel that serves clients without a password (which could then move the
        # primary with SENTINEL FAILOVER) is a finding.
        sentinel = redis.Redis(port=topology.ports[2], password=topology.env["REDIS_PASSWORD"])
        sentinel.execute_command("ACL", "SETUSER", "default", "nopass")
        try:
            opened = run_cli("verify", str(with_admin), "--json", env=topology.env)
        finally:
            sentinel.execute_command("ACL", "SETUSER", "default", "resetpass", f">{topology.env['REDIS_PASSWORD']}")
        found = {c["name"]: c for c in json.loads(opened.stdout)["checks"]}["no_password_refused"]
        assert opened.returncode == 1 and found["status"] == "fail", found
        assert found["found"] == f"PING to the Sentinel 127.0.0.1:{topology.ports[2]}: +PONG", found
    # The load wrote only under price: on every primary (the Cluster's three; the Sentinel's one).
    primaries = topology.ports if topology.kind == "cluster" else topology.ports[:1]
    prefixes = {k.split(":", 1)[0] for p in primaries for k in topology.admin(p).scan_iter(count=1000)}
    assert prefixes <= {"price"}, prefixes


def test_bench_on_a_sentinel_or_cluster_target(folder: Path, topology: ExternalTopology) -> None:
    """bench on the primary the Sentinel names, or across the Cluster's primaries (redis-benchmark --cluster,
    the lean user by slot): every call of the harness's runs succeeds, the temporary user and every key go
    from every node. The --cluster run writes on each primary; the same run without --cluster (the
    broken variant) stops at the first -MOVED, and bench says so rather than reporting a figure."""
    path = topology.profile(folder)
    run_dir = folder / f"bench-{topology.kind}"
    result = run_cli("bench", str(path), "--duration", "1s", "--report", str(run_dir), env=topology.env)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    measured = json.loads((run_dir / "bench.json").read_text())
    primary = f"127.0.0.1:{topology.ports[0]}"
    if topology.kind == "sentinel":
        assert measured["endpoint"] == primary  # the primary, not the Sentinel the profile names
    else:
        assert measured["endpoint"].endswith("and the Cluster's other primaries"), measured["endpoint"]
    assert measured["redis_benchmark"]["closed_loop"]["ops_s"] > 0
    for run in measured["harness"].values():
        assert run["ops_s"] > 0 and all(c["errors"] == 0 for c in run["latency"].values()), run
    data_nodes = topology.ports if topology.kind == "cluster" else topology.ports[:2]
    for port in data_nodes:
        admin = topology.admin(port)
        assert [u for u in admin.acl_users() if u.startswith("bench-")] == [], port
        assert list(admin.scan_iter(match="key:*")) == [], f"redis-benchmark's keys left on {port}"
    if topology.kind == "cluster":
        profile = load_profile(str(path))
        secrets = target_secrets(profile, topology.env)
        at = bench.bench_endpoint(profile, secrets)
        binary = shutil.which("redis-benchmark") or "redis-benchmark"

        def primaries_written(endpoint: bench.Endpoint) -> int:
            with bench.temporary_user(profile, secrets) as user:
                bench.run_redis_benchmark(binary, profile, endpoint, user, 10, 3000, timeout_s=60)
                return sum(any(topology.admin(p).scan_iter(match="key:*", count=1000)) for p in topology.ports)

        assert primaries_written(at) == 3
        with pytest.raises(HarnessError, match="redis-benchmark exited 1: .*MOVED"):
            primaries_written(dataclasses.replace(at, cluster=False))


@pytest.fixture(scope="module")
def tls_server(folder: Path) -> Iterator[ExternalTls]:
    with external_tls(folder) as server:
        yield server


def test_a_tls_target_asking_for_client_certificates(folder: Path, tls_server: ExternalTls) -> None:
    """A Redis serving TLS only, every client needing a certificate from its CA: with the CA bundle and
    the service's certificate, the smoke run, monitor and the audit (transport included) pass; without
    the certificate, with another CA, or in plaintext, `load` refuses in one line (exit 2)."""
    files = {name: str(path) for name, path in tls_server.files.items()}
    good = tls_server.profile(
        folder, "external-tls", ca_file=files["ca"], cert_file=files["cert"], key_file=files["key"]
    )
    run = folder / "run-tls"
    result = run_cli("load", str(good), "--scenario", "smoke", "--report", str(run), env=tls_server.env)
    report = json.loads((run / "report.json").read_text())
    assert result.returncode == 0 and report["passed"] and report["server_figures"] is True, result.stderr[-2000:]
    seen = monitor(good, tls_server)
    assert seen["read_as"] == "admin" and seen["memory"]["maxmemory"] == 64 * 2**20, seen
    audited = run_cli("verify", str(good), "--json", env=tls_server.env)
    checks = {c["name"]: c for c in json.loads(audited.stdout)["checks"]}
    assert audited.returncode == 0 and checks["transport"]["status"] == "pass", checks["transport"]
    refused = {
        "no client certificate": tls_server.profile(folder, "external-tls-nocert", ca_file=files["ca"]),
        "another CA": tls_server.profile(
            folder, "external-tls-otherca", ca_file=files["other_ca"], cert_file=files["cert"], key_file=files["key"]
        ),
        "plaintext": target_profile(folder, "external-tls-plain", tls_server.port),
    }
    for why, path in refused.items():
        attempt = run_cli("load", str(path), "--scenario", "smoke", "--report", str(folder / "x"), env=tls_server.env)
        lines = attempt.stderr.strip().splitlines()
        assert attempt.returncode == 2 and len(lines) == 1 and "does not answer" in lines[0], (why, attempt.stderr)
