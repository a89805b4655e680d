"""`redis-harness verify`: the pure parts without containers, then real deployments.

Every check must be able to fail: deliberately broken variants of the ci
deployment are brought up (ports 6390-6392, never dev's or ci's) and verify
must fail naming exactly the checks each mutation breaks, no more, no less.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from redis.backoff import NoBackoff
from redis.retry import Retry

from redis_harness import paths
from redis_harness.cli import build_parser
from redis_harness.deploy import compose as deploy
from redis_harness.deploy import containers
from redis_harness.deploy.containers import project_containers
from redis_harness.deploy.engine import docker_client
from redis_harness.profile.credentials import Secrets, load_secrets
from redis_harness.profile.model import Profile, load_profile
from redis_harness.render.acl import acl_users
from redis_harness.render.conf_text import config_directives
from redis_harness.render.files import render, render_files
from redis_harness.render.secret_files import secret_path, write_secret_files
from redis_harness.verify import parsers, runner
from redis_harness.verify.check import Check, HostSettingWarning
from redis_harness.verify.table import CheckResult, ResultCollector, check_name, format_report, format_table

from .conftest import generated_env, variant_profile

ZERO_CAPS = "0000000000000000"

# --------------------------------------------------------------------------- unit: redis.conf and ACL


def test_config_directives_reads_the_rendered_conf_like_config_get() -> None:
    profile = load_profile("ci")
    conf = render_files(profile, load_secrets(profile, env=generated_env()))["redis.conf"]
    directives = config_directives(conf)
    assert directives["maxmemory"] == str(profile.memory.maxmemory_bytes)
    assert directives["maxmemory-policy"] == profile.memory.policy
    assert directives["save"] == "3600 1 300 100 60 10000"  # quoted in the file, one value for CONFIG GET
    assert directives["appenddirname"] == "appendonlydir"
    assert directives["logfile"] == ""


def test_config_directives_accumulates_repeats_and_skips_what_config_get_cannot_report() -> None:
    text = "# comment\nsave 900 1\nsave 300 10\ninclude /x.conf\nuser bob on nopass\nBIND 127.0.0.1 ::1\n"
    assert config_directives(text) == {"save": "900 1 300 10", "bind": "127.0.0.1 ::1"}


def test_parse_acl_line_applies_rules_in_order() -> None:
    entry = parsers.parse_acl_line("user svc on #ABC ~svc:* resetchannels &svc:* -@all +get nopass")
    assert entry.enabled and entry.nopass and entry.hashes == frozenset()
    assert entry.key_patterns == {"~svc:*"} and entry.channel_patterns == {"&svc:*"}
    assert entry.command_rules == ("-@all", "+get")
    keyless = parsers.parse_acl_line("user hc on #abc resetkeys resetchannels -@all +ping")
    assert keyless.key_patterns == frozenset() and keyless.channel_patterns == frozenset()
    assert keyless.hashes == {"abc"}


def test_parse_acl_line_keeps_a_selector_whole() -> None:
    entry = parsers.parse_acl_line("user u on #aa ~a:* +get (~b:* +set) (%R~c:* +get)")
    assert entry.selectors == ("(~b:* +set)", "(%R~c:* +get)")


def test_parse_acl_line_reads_every_line_the_harness_renders() -> None:
    profile = load_profile("ci")
    secrets = load_secrets(profile, env=generated_env())
    for user in acl_users(profile, secrets):
        entry = parsers.parse_acl_line(user.line)
        assert entry.name == user.name and entry.enabled and not entry.nopass
        assert entry.hashes == set(user.password_hashes)


UNITS = {
    "get": parsers.CommandUnit(2, frozenset({"@read", "@string", "@fast"})),
    "set": parsers.CommandUnit(-3, frozenset({"@write", "@string", "@slow"})),
    "keys": parsers.CommandUnit(2, frozenset({"@keyspace", "@read", "@slow", "@dangerous"})),
    "flushall": parsers.CommandUnit(-1, frozenset({"@keyspace", "@write", "@slow", "@dangerous"})),
    "client": parsers.CommandUnit(-2, frozenset({"@slow"})),
    "client|kill": parsers.CommandUnit(-3, frozenset({"@admin", "@slow", "@dangerous", "@connection"})),
    "client|setname": parsers.CommandUnit(3, frozenset({"@slow", "@connection"})),
    "ping": parsers.CommandUnit(-1, frozenset({"@fast", "@connection"})),
}


def test_allowed_commands_applies_categories_commands_and_subcommands_in_order() -> None:
    assert parsers.allowed_commands(["+@all", "-@dangerous"], UNITS) == {
        "get",
        "set",
        "client",
        "client|setname",
        "ping",
    }
    assert parsers.allowed_commands(["-@all", "+ping"], UNITS) == {"ping"}
    assert parsers.allowed_commands(["nocommands", "+client", "-client|kill"], UNITS) == {"client", "client|setname"}
    assert parsers.allowed_commands(["allcommands", "-@all"], UNITS) == frozenset()


def test_rules_written_differently_but_granting_the_same_are_equal() -> None:
    # What Redis 7.0's ACL LIST prints for "-@all +@read -@dangerous": categories become commands.
    ours = parsers.parse_acl_line("user s on #aa ~s:* &s:* -@all +@read -@dangerous")
    live = parsers.parse_acl_line("user s on #aa ~s:* resetchannels &s:* -@all +@read -keys")
    assert parsers.acl_differences(ours, live, UNITS) == []


def test_acl_differences_names_what_drifted() -> None:
    ours = parsers.parse_acl_line("user default on #aa ~* &* +@all -@dangerous")
    live = parsers.parse_acl_line("user default on nopass ~* &* +@all")
    diffs = parsers.acl_differences(ours, live, UNITS)
    assert "nopass" in diffs and "password hashes differ" in diffs
    assert "also allows client|kill flushall keys" in diffs
    narrowed = parsers.parse_acl_line("user default on #aa ~x:* &* +@all -@dangerous -get")
    assert parsers.acl_differences(ours, narrowed, UNITS) == ["keys ~x:*", "denies get"]
    unsanitized = parsers.parse_acl_line("user default on #aa ~* &* skip-sanitize-payload +@all -@dangerous")
    assert parsers.acl_differences(ours, unsanitized, UNITS) == ["flags skip-sanitize-payload"]


def test_dryrun_argv_meets_the_arity() -> None:
    assert parsers.dryrun_argv("flushall", -1) == ["flushall"]
    assert parsers.dryrun_argv("get", 2) == ["get", "x"]
    assert parsers.dryrun_argv("config|set", -4) == ["config", "set", "x", "x"]
    assert parsers.dryrun_argv("client|kill", -3) == ["client", "kill", "x"]


# --------------------------------------------------------------------------- unit: /proc, cgroups, sockets

PROC_STATUS = """Name:\tredis-server
Uid:\t999\t999\t999\t999
Gid:\t999\t999\t999\t999
CapEff:\t0000000000000000
CapBnd:\t00000000a80425fb
NoNewPrivs:\t1
"""


def test_proc_status_fields() -> None:
    status = parsers.proc_status(PROC_STATUS)
    assert parsers.ids_of(status, "Uid") == [999, 999, 999, 999]
    assert parsers.capability_mask(status, "CapEff") == 0
    assert parsers.capability_mask(status, "CapBnd") == 0xA80425FB
    assert status["NoNewPrivs"] == "1"


def test_root_mount_options_takes_the_last_mount_of_root() -> None:
    mounts = (
        "overlay / overlay rw,relatime,lowerdir=/a 0 0\n"
        "proc /proc proc rw,nosuid 0 0\n"
        "overlay / overlay ro,relatime,lowerdir=/a 0 0\n"
    )
    assert parsers.root_mount_options(mounts)[0] == "ro"
    assert parsers.root_mount_options("proc /proc proc rw 0 0\n") == []


def test_cgroup_values_v1_and_v2() -> None:
    assert parsers.cgroup_limit("134217728\n") == 134217728
    assert parsers.cgroup_limit("9223372036854771712") is None  # v1 unlimited
    assert parsers.cgroup_limit("max\n") is None  # v2 unlimited
    assert parsers.cgroup_cpus("100000 100000") == 1.0
    assert parsers.cgroup_cpus("50000 100000") == 0.5
    assert parsers.cgroup_cpus("-1 100000") is None
    assert parsers.cgroup_cpus("max 100000") is None


PROC_NET_TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:18F9 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 00000000:18FA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0100007F:18FA 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0
"""
PROC_NET_TCP6 = """  sl  local_address                         remote_address                        st
   0: 00000000000000000000000001000000:18F9 00000000000000000000000000000000:0000 0A 00000000:00000000
   1: 00000000000000000000000000000000:18F9 00000000000000000000000000000000:0000 0A 00000000:00000000
"""


def test_listening_addresses_decodes_ipv4_and_ipv6_and_only_listen_sockets() -> None:
    assert parsers.listening_addresses(PROC_NET_TCP, 6393) == ["127.0.0.1"]
    assert parsers.listening_addresses(PROC_NET_TCP, 6394) == ["0.0.0.0"]  # the ESTABLISHED one is skipped
    assert parsers.listening_addresses(PROC_NET_TCP6, 6393) == ["::1", "::"]
    assert [parsers.is_loopback(a) for a in ("127.0.0.1", "::1", "0.0.0.0", "::", "")] == [
        True,
        True,
        False,
        False,
        False,
    ]


def test_thp_mode_reads_the_bracketed_choice() -> None:
    assert parsers.thp_mode("always [madvise] never\n") == "madvise"
    assert parsers.thp_mode("[always] madvise never") == "always"


def test_healthcheck_without_credentials_blanks_the_mounted_secret() -> None:
    profile = load_profile("ci")
    compose = yaml.safe_load(render_files(profile, load_secrets(profile, env=generated_env()))["docker-compose.yml"])
    test = compose["services"]["redis"]["healthcheck"]["test"]
    # Compose turns $$ into $ before Docker sees the command.
    stripped = parsers.healthcheck_without_credentials([test[0], test[1].replace("$$", "$")])
    assert "/run/secrets/" not in stripped and "cat /dev/null" in stripped
    assert parsers.healthcheck_without_credentials(["CMD", "redis-cli", "ping"]) == "redis-cli ping"
    with pytest.raises(ValueError):
        parsers.healthcheck_without_credentials(["NONE"])


# --------------------------------------------------------------------------- unit: recording and reporting


def test_check_records_expected_found_and_status() -> None:
    recorded: list[tuple[str, str]] = []
    check = Check(recorded.append)
    check.equal("yes", "yes")
    assert recorded == [("expected", "yes"), ("found", "yes"), ("status", "pass")]
    recorded.clear()
    with pytest.raises(AssertionError, match="expected 0, found 1"):
        check.equal(0, 1)
    assert ("status", "fail") in recorded
    recorded.clear()
    with pytest.warns(HostSettingWarning):
        check.warn_unless(False, "vm.overcommit_memory = 1", "0")
    assert ("status", "warn") in recorded


def test_table_and_summary_name_the_failed_checks() -> None:
    results = [
        CheckResult("runs_as_non_root", "pass", "uid != 0", "999"),
        CheckResult("config_matches_profile[maxmemory]", "fail", "93952409", "127506841"),
        CheckResult("host_overcommit_memory", "warn", "1", "0"),
        CheckResult("aof_receives_writes", "error", "", "", "ConnectionError: refused"),
    ]
    table = format_table(results)
    assert table.splitlines()[0].split() == ["CHECK", "EXPECTED", "FOUND", "RESULT"]
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines()[1:]}
    assert rows["config_matches_profile[maxmemory]"] == ["93952409", "127506841", "FAIL"]
    assert "ConnectionError: refused" in table
    report = format_report("verify x", [("redis", results)], 1.5, drift_hint="`redis-harness plan x` shows the drift")
    lines = report.splitlines()
    assert lines[0] == "verify x: 2 failed, 1 warning"
    assert lines[-2] == "4 checks: 1 passed, 2 failed, 1 warnings, 0 skipped in 1.5 s"
    assert lines[-1] == "`redis-harness plan x` shows the drift"
    # Failures first, each with its whole name on its status line; then the warning; passing checks not at all.
    status_lines = [line for line in lines if line[:1].isupper() and not line.startswith(("verify", "`"))]
    assert status_lines == [
        "FAIL  config_matches_profile[maxmemory]",
        "ERROR aof_receives_writes",
        "WARN  host_overcommit_memory",
    ]
    assert "runs_as_non_root" not in report and "ConnectionError: refused" in report
    assert check_name("infra_tests/test_security.py::test_runs_as_non_root") == "runs_as_non_root"


def test_exit_codes() -> None:
    collector = ResultCollector()
    assert runner.exit_code(0, collector) == 0
    assert runner.exit_code(1, collector) == 1
    assert runner.exit_code(5, collector) == 2  # -k matched nothing
    assert runner.exit_code(3, collector) == 2
    collector.collection_errors.append("infra_tests/test_x.py: SyntaxError")
    assert runner.exit_code(1, collector) == 2


def test_cli_has_the_verify_command() -> None:
    args = build_parser().parse_args(["verify", "ci", "--junit", "out.xml", "-k", "security"])
    assert (args.profile, args.junit, args.keyword) == ("ci", Path("out.xml"), "security")


def test_verify_refuses_an_invalid_profile(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: vbad-invalid\nmemory: {maxmemory_ratio: 1.5}\n")
    result = run_verify(str(bad), {**os.environ, **generated_env()})
    assert result.returncode == 2
    assert "memory.maxmemory_ratio" in result.stderr


# --------------------------------------------------------------------------- integration helpers


def run_verify(
    profile: str, env: dict[str, str], *extra: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The real command line, as CI runs it."""
    return subprocess.run(
        [sys.executable, "-m", "redis_harness.cli", "verify", profile, *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def junit_outcomes(path: Path) -> dict[str, str]:
    """Check name -> pass | fail | warn | skip | error, read back from the JUnit XML."""
    root = ET.parse(path).getroot()
    outcomes = {}
    for case in root.iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        if case.find("failure") is not None:
            status = "fail"
        elif case.find("error") is not None:
            status = "error"
        elif case.find("skipped") is not None:
            status = "skip"
        else:
            status = props.get("status", "pass")
        outcomes[check_name(str(case.get("name")))] = status
    return outcomes


def failed(outcomes: dict[str, str]) -> set[str]:
    return {name for name, status in outcomes.items() if status in ("fail", "error")}


def verify_outcomes(profile: Profile, env: dict[str, str], tmp: Path, *extra: str) -> dict[str, str]:
    junit = tmp / f"{profile.name}-{time.monotonic_ns()}.xml"
    result = run_verify(str(profile.source), env, "--junit", str(junit), *extra)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    outcomes = junit_outcomes(junit)
    assert (result.returncode == 0) == (not failed(outcomes)), result.stdout
    for name in failed(outcomes):  # each failure has its block, the whole name on the status line
        assert any(
            line.split()[1:2] == [name] for line in result.stdout.splitlines() if line.startswith(("FAIL ", "ERROR "))
        ), result.stdout
    return outcomes


def compose_up(profile: Profile, secrets: Secrets, env: dict[str, str], *, healthcheck: bool) -> None:
    compose_file = paths.deployment_dir(profile.name) / "docker-compose.yml"
    cmd = ["docker", "compose", "--project-name", profile.project, "--file", str(compose_file), "up", "--detach"]
    # --wait refuses a container without a healthcheck: then wait for Redis to answer instead.
    wait = ["--wait", "--wait-timeout", "90"] if healthcheck else []
    result = subprocess.run([*cmd, *wait], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    if not healthcheck:
        wait_for(lambda: answers(profile, secrets), 30, f"{profile.project} to answer PING")


def answers(profile: Profile, secrets: Secrets) -> bool:
    client = admin_client(profile, secrets)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def bring_up_broken(
    profile: Profile,
    secrets: Secrets,
    env: dict[str, str],
    *,
    compose: Callable[[dict[str, Any]], None] | None = None,
    conf: Callable[[str], str] | None = None,
    acl: Callable[[str], str] | None = None,
    healthcheck: bool = True,
) -> None:
    """Render the profile, break the rendered files, and start them as they are."""
    deploy.down(profile, volumes=True, take_over=True)
    target = render(profile, secrets)
    write_secret_files(profile, secrets)
    if compose is not None:
        compose_file = target / "docker-compose.yml"
        document = yaml.safe_load(compose_file.read_text())
        compose(document)
        compose_file.write_text(yaml.safe_dump(document, sort_keys=False))
    for name, edit in (("redis.conf", conf), ("users.acl", acl)):
        if edit is not None:
            (target / name).write_text(edit((target / name).read_text()))
    compose_up(profile, secrets, env, healthcheck=healthcheck)


def tear_down(profile: Profile) -> None:
    """Down with the data volume, and the generated folders of a variant nobody will use again."""
    deploy.down(profile, volumes=True, take_over=True)
    shutil.rmtree(paths.deployment_dir(profile.name), ignore_errors=True)
    shutil.rmtree(paths.state_dir(profile.name), ignore_errors=True)


def admin_client(profile: Profile, secrets: Secrets) -> redis.Redis:
    """No retries: a command must not be replayed on a restarted server."""
    return redis.Redis(
        host=profile.network.host,
        port=profile.network.port,
        username="admin",
        password=secrets.admin.password,
        protocol=2,
        socket_connect_timeout=2,
        socket_timeout=5,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )


def redis_container(profile: Profile) -> Any:
    container = containers.running_container(profile)
    container.reload()
    return container


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def health(profile: Profile) -> tuple[str, int]:
    """Health status and restart count; ("restarting", n) while Docker brings it back."""
    containers = project_containers(profile)
    if not containers:
        return "absent", 0
    attrs = containers[0].attrs
    status = attrs["State"]["Status"]
    if status != "running":
        return status, attrs["RestartCount"]
    return (attrs["State"].get("Health") or {}).get("Status", "none"), attrs["RestartCount"]


# --------------------------------------------------------------------------- integration: not running


@pytest.mark.integration
def test_verify_exits_2_when_the_deployment_is_not_running(tmp_path: Path, cli_env: dict[str, str]) -> None:
    profile = variant_profile("ci", tmp_path, "vbad-absent", network={"port": 6393})
    result = run_verify(str(profile.source), cli_env)
    assert result.returncode == 2
    # The hint names the profile as the user gave it: a path here, never the bare name of another file.
    assert "not running" in result.stderr and f"redis-harness up {profile.source}`" in result.stderr


# --------------------------------------------------------------------------- integration: a good deployment


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory, secret_env: dict[str, str]) -> Iterator[tuple[Profile, Secrets]]:
    """A ci deployment exactly as `up` makes it, under its own name and port."""
    profile = variant_profile("ci", tmp_path_factory.mktemp("good"), "vbad-runtime", network={"port": 6392})
    secrets = load_secrets(profile, env=secret_env)
    deploy.down(profile, volumes=True, take_over=True)
    deploy.up(profile, secrets)
    try:
        yield profile, secrets
    finally:
        tear_down(profile)


@pytest.mark.integration
def test_verify_passes_on_what_up_produces_and_writes_junit(
    good: tuple[Profile, Secrets], cli_env: dict[str, str], tmp_path: Path
) -> None:
    profile, _ = good
    junit = tmp_path / "verify.xml"
    started = time.monotonic()
    result = run_verify(str(profile.source), cli_env, "--junit", str(junit))
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("name") == f"redis-harness-verify-{profile.name}"
    assert int(suite.get("tests", 0)) > 50 and suite.get("failures") == "0" and suite.get("errors") == "0"
    outcomes = junit_outcomes(junit)
    assert failed(outcomes) == set()
    assert outcomes["host_somaxconn_covers_tcp_backlog"] == "pass"  # backlog 511 fits this host's somaxconn
    # A host warning follows the host: Redis wants vm.overcommit_memory = 1.
    overcommit = Path("/proc/sys/vm/overcommit_memory").read_text().strip()
    assert outcomes["host_overcommit_memory"] == ("pass" if overcommit == "1" else "warn")
    # Failure-first: a verdict, the warnings' blocks, the counts; no row of a passing check.
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"verify {profile.project}: passed"), lines[0]
    assert "PASS" not in result.stdout and "runs_as_non_root" not in result.stdout
    assert ("WARN  host_overcommit_memory  on redis" in lines) == (overcommit != "1")
    assert lines[-2].startswith(f"{len(outcomes)} checks: ") and lines[-1] == f"JUnit XML: {junit}"
    print(f"verify: {len(outcomes)} checks in {elapsed:.1f} s")


@pytest.mark.integration
def test_verify_fails_on_config_set_at_run_time(
    good: tuple[Profile, Secrets], cli_env: dict[str, str], tmp_path: Path
) -> None:
    profile, secrets = good
    admin = admin_client(profile, secrets)
    admin.config_set("maxmemory-policy", "allkeys-lru")
    admin.config_set("timeout", "5")
    try:
        outcomes = verify_outcomes(profile, cli_env, tmp_path, "-k", "config or maxmemory")
    finally:
        admin.config_set("maxmemory-policy", profile.memory.policy)
        admin.config_set("timeout", str(profile.server.timeout_s))
        admin.close()
    assert failed(outcomes) == {
        "config_matches_profile[maxmemory-policy]",
        "config_matches_profile[timeout]",
        "maxmemory_policy_matches_profile",
    }
    assert "runs_as_non_root" not in outcomes  # -k selected the config checks only


@pytest.mark.integration
def test_verify_exits_2_when_k_selects_no_check(good: tuple[Profile, Secrets], cli_env: dict[str, str]) -> None:
    profile, _ = good
    result = run_verify(str(profile.source), cli_env, "-k", "no_such_check")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("redis-harness")]
    assert errors == ["redis-harness: -k: no check matches 'no_such_check'; run without -k to see every check's name"]


@pytest.mark.integration
def test_verify_fails_when_redis_joins_an_undeclared_network(
    good: tuple[Profile, Secrets], cli_env: dict[str, str], tmp_path: Path
) -> None:
    profile, _ = good
    client = docker_client()
    network = client.networks.create(f"{profile.project}-{runner.UNDECLARED_NETWORK_SUFFIX}")
    container = redis_container(profile)
    network.connect(container)
    try:
        outcomes = verify_outcomes(profile, cli_env, tmp_path, "-k", "network")
    finally:
        network.disconnect(container)
        network.remove()
    assert failed(outcomes) == {"attached_only_to_declared_networks", "unreachable_from_undeclared_network"}


@pytest.mark.integration
def test_verify_fails_on_rendered_files_a_port_or_a_secret_was_edited_into(
    good: tuple[Profile, Secrets], cli_env: dict[str, str], tmp_path: Path
) -> None:
    """File edits only: the non-loopback port is never started, only written."""
    profile, secrets = good
    folder = paths.deployment_dir(profile.name)
    originals = {name: (folder / name).read_text() for name in ("docker-compose.yml", "redis.conf")}
    loopback = f'"{profile.network.host}:{profile.network.port}:'
    assert loopback in originals["docker-compose.yml"]
    (folder / "docker-compose.yml").write_text(
        originals["docker-compose.yml"].replace(loopback, f'"0.0.0.0:{profile.network.port}:')
    )
    (folder / "redis.conf").write_text(originals["redis.conf"] + f"# admin password: {secrets.admin.password}\n")
    try:
        outcomes = verify_outcomes(profile, cli_env, tmp_path)
    finally:
        for name, text in originals.items():
            (folder / name).write_text(text)
    assert failed(outcomes) == {"published_port_loopback_only", "no_plaintext_secret_in_rendered_files"}


@pytest.mark.integration
def test_verify_fails_while_the_healthcheck_fails(
    good: tuple[Profile, Secrets], cli_env: dict[str, str], tmp_path: Path
) -> None:
    profile, secrets = good
    secret_file = secret_path(profile, "healthcheck")
    secret_file.write_text("not-the-healthcheck-password")  # in place: the container sees the same inode
    try:
        wait_for(lambda: health(profile)[0] == "unhealthy", 40, "the container to turn unhealthy")
        outcomes = verify_outcomes(profile, cli_env, tmp_path, "-k", "healthcheck")
    finally:
        secret_file.write_text(secrets.healthcheck_password)
        wait_for(lambda: health(profile)[0] == "healthy", 30, "the container to turn healthy again")
    assert failed(outcomes) == {"healthcheck_healthy"}


@pytest.mark.integration
def test_verify_fails_after_an_oom_kill_and_restart(
    good: tuple[Profile, Secrets], cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Last on this deployment: a restart cannot be undone."""
    profile, secrets = good
    admin = admin_client(profile, secrets)
    # No AOF for the filler (the restart must not replay it) and no maxmemory to stop it.
    admin.config_set("appendonly", "no")
    admin.config_set("maxmemory", 0)
    blob = "x" * (1 << 20)
    try:
        for i in range(4 * profile.resources.memory_bytes // len(blob)):
            admin.set(f"oom-filler:{i}", blob)
    except redis.ConnectionError:
        pass  # the kernel killed the server: what this test wants
    finally:
        admin.close()
    wait_for(lambda: health(profile) == ("healthy", 1), 60, "the restarted container to be healthy")
    outcomes = verify_outcomes(profile, cli_env, tmp_path)
    assert failed(outcomes) == {"not_oom_killed", "no_unexpected_restart"}


# Like the official image: no procps (ps) and no iproute2 (ss), no Python.
MINIMAL_DOCKERFILE = """FROM {base}
USER root
RUN rm -f /bin/ps /usr/bin/ps /bin/ss /usr/bin/ss /sbin/ss /usr/sbin/ss /usr/bin/python3*
USER redis
"""


@pytest.mark.integration
def test_verify_needs_no_ps_or_ss_in_the_image(
    tmp_path: Path, secret_env: dict[str, str], cli_env: dict[str, str]
) -> None:
    client = docker_client()
    base = load_profile("ci").image.ref
    tag = "redis-harness/redis:vbad-minimal"
    client.images.build(fileobj=io.BytesIO(MINIMAL_DOCKERFILE.format(base=base).encode()), tag=tag, rm=True)
    profile = variant_profile("ci", tmp_path, "vbad-minimal", network={"port": 6395}, image={"ref": tag})
    secrets = load_secrets(profile, env=secret_env)
    deploy.down(profile, volumes=True, take_over=True)  # one a killed run of another checkout left
    try:
        deploy.up(profile, secrets)
        gone = redis_container(profile).exec_run(["sh", "-c", "command -v ps || command -v ss || echo none"])
        assert gone.output.decode().strip() == "none"
        outcomes = verify_outcomes(profile, cli_env, tmp_path)
    finally:
        tear_down(profile)
        client.images.remove(tag)
    assert failed(outcomes) == set()


# --------------------------------------------------------------------------- integration: broken containers


def _break_container(profile: Profile, retag: str) -> Callable[[dict[str, Any]], None]:
    def mutate(document: dict[str, Any]) -> None:
        document["networks"]["internal"]["internal"] = False
        service = document["services"]["redis"]
        service["volumes"].remove("data-redis:/data")  # /data in the container's own writable layer
        service["image"] = retag  # the same image under another tag
        service["user"] = "0:0"
        service["read_only"] = False
        service.pop("cap_drop")
        service.pop("security_opt")
        service["ipc"] = "host"
        service["mem_limit"] = service["memswap_limit"] = profile.resources.memory_bytes * 3 // 2
        service["cpus"] = profile.resources.cpus / 2
        service["pids_limit"] = profile.resources.pids // 2
        service["restart"] = "no"
        # Answers NOAUTH with exit 0: healthy whatever the server says.
        service["healthcheck"]["test"] = ["CMD", "redis-cli", "ping"]
        # Interpolated by Compose at `up`: in the container, not in the rendered file.
        service["environment"] = {"LEAKED": "${VBAD_LEAK}"}
        service["labels"]["io.redis-harness.leak"] = "${VBAD_LEAK}"
        service["command"] = [*service["command"], "--masterauth", "${VBAD_LEAK}"]

    return mutate


@pytest.mark.integration
def test_verify_names_each_broken_container_property(
    tmp_path: Path, secret_env: dict[str, str], cli_env: dict[str, str]
) -> None:
    profile = variant_profile("ci", tmp_path, "vbad-container", network={"port": 6390})
    secrets = load_secrets(profile, env=secret_env)
    client = docker_client()
    retag = "redis-harness/redis:vbad-retagged"
    client.images.get(profile.image.ref).tag(retag)
    try:
        env = {**cli_env, "VBAD_LEAK": secrets.admin.password}
        bring_up_broken(profile, secrets, env, compose=_break_container(profile, retag))
        outcomes = verify_outcomes(profile, cli_env, tmp_path)
    finally:
        tear_down(profile)
        client.images.remove(retag)
    assert failed(outcomes) == {
        "runs_as_non_root",
        "root_filesystem_read_only",
        "effective_capabilities_zero",
        "capability_bounding_set_empty",
        "no_new_privileges",
        "no_host_namespaces",
        "internal_network_internal",
        "data_dir_is_a_volume",
        "memory_limit_matches_profile",
        "cpu_limit_matches_profile",
        "pids_limit_matches_profile",
        "restart_policy_matches_profile",
        "healthcheck_can_fail",
        "image_is_profile_image",
        "no_plaintext_secret_in_environment",
        "no_plaintext_secret_in_labels",
        "no_plaintext_secret_in_command_line",
        "no_plaintext_secret_in_any_container_inspect",
    }


@pytest.mark.integration
def test_verify_names_a_privileged_container(
    tmp_path: Path, secret_env: dict[str, str], cli_env: dict[str, str]
) -> None:
    """On its own: an engine inside a sandbox that lacks some capability cannot start one at all."""
    profile = variant_profile("ci", tmp_path, "vbad-privileged", network={"port": 6394})
    secrets = load_secrets(profile, env=secret_env)

    def privileged(document: dict[str, Any]) -> None:
        document["services"]["redis"]["privileged"] = True

    try:
        try:
            bring_up_broken(profile, secrets, cli_env, compose=privileged)
        except AssertionError as exc:
            if "unable to apply caps" in str(exc):
                pytest.skip("this Docker engine cannot start privileged containers (it lacks capabilities itself)")
            raise
        outcomes = verify_outcomes(profile, cli_env, tmp_path)
    finally:
        tear_down(profile)
    # Privileged brings every capability (only a non-root process keeps CapEff at zero).
    assert failed(outcomes) == {"not_privileged", "capability_bounding_set_empty"}


# --------------------------------------------------------------------------- integration: broken server config


def _break_conf(profile: Profile) -> Callable[[str], str]:
    too_much = int(profile.resources.memory_bytes * 0.95)

    def mutate(text: str) -> str:
        replacements = {
            f"maxmemory {profile.memory.maxmemory_bytes}\n": f"maxmemory {too_much}\n",
            "protected-mode yes\n": "protected-mode no\n",
            "enable-debug-command no\n": "enable-debug-command yes\n",
            "enable-module-command no\n": "enable-module-command yes\n",
            "enable-protected-configs no\n": "enable-protected-configs yes\n",
            "appendonly yes\n": "appendonly no\n",
            f"appendfsync {profile.persistence.appendfsync}\n": "appendfsync always\n",
        }
        for old, new in replacements.items():
            assert old in text, old
            text = text.replace(old, new)
        return text

    return mutate


def _break_acl(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if line.startswith("user default "):
            line = "user default on nopass ~* &* +@all"  # no password, every command
        elif line.startswith("user price "):
            line = line.replace("~price:*", "~*")
        lines.append(line)
    lines.append("user intruder on #" + "ab" * 32 + " ~* &* +@all")
    return "\n".join(lines) + "\n"


@pytest.mark.integration
def test_verify_names_each_broken_server_setting(
    tmp_path: Path, secret_env: dict[str, str], cli_env: dict[str, str]
) -> None:
    # A backlog above this host's somaxconn: a host warning, not a failure.
    profile = variant_profile("ci", tmp_path, "vbad-config", network={"port": 6391}, server={"tcp_backlog": 65535})
    secrets = load_secrets(profile, env=secret_env)

    def break_service(document: dict[str, Any]) -> None:
        service = document["services"]["redis"]
        service["healthcheck"] = {"disable": True}
        # An empty volume (nothing copied from the image): /data stays root-owned, not writable by uid 999.
        service["volumes"] = [
            {"type": "volume", "source": "data-redis", "target": "/data", "volume": {"nocopy": True}},
            *(v for v in service["volumes"] if v != "data-redis:/data"),
        ]

    try:
        bring_up_broken(
            profile,
            secrets,
            cli_env,
            compose=break_service,
            conf=_break_conf(profile),
            acl=_break_acl,
            healthcheck=False,
        )
        outcomes = verify_outcomes(profile, cli_env, tmp_path)
    finally:
        tear_down(profile)
    assert failed(outcomes) == {
        "config_matches_profile[maxmemory]",
        "config_matches_profile[protected-mode]",
        "config_matches_profile[enable-debug-command]",
        "config_matches_profile[enable-module-command]",
        "config_matches_profile[enable-protected-configs]",
        "config_matches_profile[appendonly]",
        "config_matches_profile[appendfsync]",
        "appendfsync_matches_profile",
        "data_dir_writable_by_redis_user",
        "maxmemory_matches_derived_value",
        "maxmemory_within_ratio_of_container_limit",
        "protected_mode_on",
        "debug_command_refused",
        "module_command_refused",
        "protected_configs_refused",
        "aof_enabled_as_profile",
        "aof_receives_writes",
        "acl_user_matches_profile[default]",
        "acl_user_matches_profile[price]",
        "no_acl_users_beyond_profile",
        "unauthenticated_command_refused",
        "wrong_password_refused",
        "no_user_has_nopass",
        "default_user_at_most_one_service",
        "service_users_cannot_run_denied_commands",
        "only_sentinel_user_publishes_hello",
        "service_user_confined_to_prefix[price]",
        "healthcheck_defined",
        "healthcheck_healthy",
        "healthcheck_can_fail",
    }
    assert outcomes["host_somaxconn_covers_tcp_backlog"] == "warn"


def test_listening_sockets_lists_every_listen_socket_with_its_port() -> None:
    assert parsers.listening_sockets(PROC_NET_TCP) == [("127.0.0.1", 6393), ("0.0.0.0", 6394)]
    assert parsers.listening_sockets(PROC_NET_TCP6) == [("::1", 6393), ("::", 6393)]


def test_pem_body_lines_are_the_full_lines_of_a_key() -> None:
    body = ["A" * 64, "B" * 64, "C" * 20]
    text = "\n".join(["-----BEGIN PRIVATE KEY-----", *body, "-----END PRIVATE KEY-----", ""])
    assert parsers.pem_body_lines(text) == ["A" * 64, "B" * 64]  # the short last line could occur by chance
    assert parsers.pem_body_lines("no key here") == []
