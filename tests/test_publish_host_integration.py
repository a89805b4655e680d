"""publish: host with an allow list, proven from other hosts (network namespaces, tests/netns.py).

One deployment (`netnspub`: ci, TLS on, published on 198.18.0.1:6740, allow = the allowed
host's /24) serves the module. From the allowed host a service user runs commands; from the
refused host the TCP handshake never completes; an `up` with another allow list swaps who gets
in without touching a container; verify's checks pass, and fail on rules that let everyone in;
`down` removes the rules. Each property is also shown failing on a deliberately broken variant.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from redis_harness.deploy import compose as deploy
from redis_harness.deploy import firewall
from redis_harness.deploy.desired import desired_state
from redis_harness.deploy.generations import latest
from redis_harness.deploy.plan import FIREWALL_NODE, make_plan
from redis_harness.deploy.running import running_containers
from redis_harness.profile.model import Profile

from .conftest import TLS_REQUIRED, Deployment, deployed, emit, variant_profile
from .netns import ALLOWED_NET, REFUSED_NET, OtherHosts
from .test_node_client import LIBRARIES, PROGRAM, assert_patterns, tls_node_env

pytestmark = pytest.mark.integration

NAME, PORT = "netnspub", 6740

# A service's code on the allowed host: the harness's own client path (deploy.connect ->
# RedisSettings -> redis-py), so it speaks TLS as soon as the profile's TLS reaches the client.
SERVICE = textwrap.dedent(
    """
    import os, sys
    import redis
    from redis_harness.deploy.connect import connect
    from redis_harness.profile.credentials import load_secrets
    from redis_harness.profile.model import load_profile

    profile = load_profile(sys.argv[1])
    secrets = load_secrets(profile, env=os.environ)
    client = connect(profile, "price", secrets.password_for("price"), timeout_s=3)
    client.set("price:v1:quote:btc", "42.5", ex=30)
    print("got", client.get("price:v1:quote:btc"))
    try:
        client.set("processing:v1:job:1", "x")
        print("wrote another service's key")
    except redis.exceptions.NoPermissionError:
        print("other prefix refused")
    """
)


# One connection held open on the allowed host, answering the test's "ping" lines: no retry, so a
# failure is this connection's own (a retry would open a new one).
HOLDER = textwrap.dedent(
    """
    import os, sys
    from redis_harness.client.connection import make_redis
    from redis_harness.deploy.connect import settings_for
    from redis_harness.profile.credentials import load_secrets
    from redis_harness.profile.model import load_profile

    profile = load_profile(sys.argv[1])
    secrets = load_secrets(profile, env=os.environ)
    settings = settings_for(profile, "price", secrets.password_for("price"), retries=0, socket_timeout_s=2)
    client = make_redis(settings)
    client.ping()
    print("connected", client.connection_pool._created_connections, flush=True)
    for line in sys.stdin:
        try:
            client.ping()
            print("ok", client.connection_pool._created_connections, flush=True)
        except Exception as exc:
            print("cut", type(exc).__name__, flush=True)
            break
    """
)


def profile_with(tmp: Path, allow: list[str], published: str) -> Profile:
    """The deployment's profile, always at the same path (its owner), with this allow list."""
    tmp.mkdir(exist_ok=True)
    network = {"publish": "host", "host": published, "port": PORT, "allow": allow}
    return variant_profile("ci", tmp, NAME, network=network, security=TLS_REQUIRED)


@pytest.fixture(scope="module")
def profile_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("netnspub")


@pytest.fixture(scope="module")
def published(other_hosts: OtherHosts, profile_dir: Path, secret_env: dict[str, str]) -> Iterator[Deployment]:
    firewall.ensure_rules()
    with deployed(profile_with(profile_dir, [ALLOWED_NET], other_hosts.published), secret_env) as deployment:
        yield deployment
    assert firewall.allowed_now(deployment.profile) == ()


def run_service(deployment: Deployment, other_hosts: OtherHosts, where: str) -> str:
    namespace = other_hosts.allowed if where == "allowed" else other_hosts.refused
    done = namespace.python(SERVICE, str(deployment.profile.source), env=deployment.env, timeout_s=60)
    return done.stdout + done.stderr


def reaches(deployment: Deployment, other_hosts: OtherHosts) -> dict[str, bool]:
    """Whether each namespace completes a TCP handshake with the published port (1 s each)."""
    host = deployment.profile.network.host
    return {
        "allowed": other_hosts.allowed.connects(host, PORT),
        "refused": other_hosts.refused.connects(host, PORT),
    }


def test_the_allowed_host_runs_commands_as_a_service_user(published: Deployment, other_hosts: OtherHosts) -> None:
    out = run_service(published, other_hosts, "allowed")
    assert "got 42.5" in out and "other prefix refused" in out, out
    refused = run_service(published, other_hosts, "refused")  # the same code from outside the list
    assert "got" not in refused and ("Timeout" in refused or "Error" in refused), refused


def test_the_refused_host_cannot_connect_and_without_the_list_it_could(
    published: Deployment, other_hosts: OtherHosts, profile_dir: Path
) -> None:
    assert reaches(published, other_hosts) == {"allowed": True, "refused": False}
    everyone = profile_with(profile_dir.parent / "everyone", ["198.18.0.0/15"], other_hosts.published)
    firewall.ensure_allow_rules(everyone)  # broken variant: the whole test range allowed
    try:
        weakened = reaches(published, other_hosts)
    finally:
        firewall.ensure_allow_rules(published.profile)
    assert weakened == {"allowed": True, "refused": True}, "a list allowing everyone should let the refused host in"
    firewall.remove_rules()  # broken variant: no harness rules at all (Docker publishes to everyone)
    try:
        unguarded = reaches(published, other_hosts)
    finally:
        firewall.ensure_rules()
    assert unguarded["refused"], "without the harness's rules Docker's own should let anyone in"
    assert reaches(published, other_hosts) == {"allowed": True, "refused": False}


def test_verify_checks_the_allow_list_and_a_refused_source(
    published: Deployment, other_hosts: OtherHosts, profile_dir: Path, tmp_path: Path
) -> None:
    from .test_verify import verify_outcomes

    checks = ("-k", "allow_list")
    guarded = verify_outcomes(published.profile, published.env, tmp_path, *checks)
    everyone = profile_with(profile_dir.parent / "everyone", ["198.18.0.0/15"], other_hosts.published)
    firewall.ensure_allow_rules(everyone)
    try:
        weakened = verify_outcomes(published.profile, published.env, tmp_path, *checks)
    finally:
        firewall.ensure_allow_rules(published.profile)
    names = ("host_firewall_allows_only_the_allow_list", "a_source_outside_the_allow_list_is_refused")
    assert guarded == dict.fromkeys(names, "pass"), guarded
    assert weakened == dict.fromkeys(names, "fail"), weakened


def test_up_with_another_allow_list_swaps_who_gets_in_without_touching_a_container(
    published: Deployment, other_hosts: OtherHosts, profile_dir: Path
) -> None:
    before = {service: c.id for service, c in running_containers(published.profile).items()}
    swapped = profile_with(profile_dir, [REFUSED_NET], other_hosts.published)
    holder = subprocess.Popen(
        ["ip", "netns", "exec", other_hosts.allowed.name, sys.executable, "-c", HOLDER, str(swapped.source)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=published.env,
    )
    try:
        plan = make_plan(desired_state(swapped, published.secrets), published.secrets, latest(swapped))
        assert [(c.node, c.setting, c.running, c.desired, c.how) for c in plan.changes] == [
            (FIREWALL_NODE, "allow", ALLOWED_NET, REFUSED_NET, "live")
        ]
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().split() == ["connected", "1"]
        holder.stdin.write("ping\n")
        holder.stdin.flush()
        assert holder.stdout.readline().split() == ["ok", "1"]
        # Control: a list rewritten with the allowed host still on it keeps the same connection answering.
        deploy.up(profile_with(profile_dir, [ALLOWED_NET, REFUSED_NET], other_hosts.published), published.secrets)
        holder.stdin.write("ping\n")
        holder.stdin.flush()
        assert holder.stdout.readline().split() == ["ok", "1"]
        swapped = profile_with(profile_dir, [REFUSED_NET], other_hosts.published)
        deploy.up(swapped, published.secrets)
        holder.stdin.write("ping\n")
        holder.stdin.flush()
        cut = holder.communicate(timeout=30)[0]
        assert cut.split()[:1] == ["cut"], f"the allowed host's open connection survived its removal: {cut}"
        assert firewall.allowed_now(swapped) == (REFUSED_NET,)
        assert reaches(published, other_hosts) == {"allowed": False, "refused": True}
        assert "got 42.5" in run_service(published, other_hosts, "refused")
    finally:
        holder.kill()
        holder.wait(10)
        deploy.up(profile_with(profile_dir, [ALLOWED_NET], other_hosts.published), published.secrets)
    assert reaches(published, other_hosts) == {"allowed": True, "refused": False}
    assert {service: c.id for service, c in running_containers(published.profile).items()} == before


# The load generator's lean RESP connection on the allowed host, over TLS as `raw` runs it.
LEAN = textwrap.dedent(
    """
    import os, sys
    from redis_harness.deploy.tls_client import client_ssl_context
    from redis_harness.load.resp import RespConnection, encode
    from redis_harness.profile.credentials import load_secrets
    from redis_harness.profile.model import load_profile

    profile = load_profile(sys.argv[1])
    secrets = load_secrets(profile, env=os.environ)
    tls = client_ssl_context(profile, "price")
    net = profile.network
    connection = RespConnection(net.host, net.port, "price", secrets.password_for("price"), 3.0, tls=tls)
    connection.execute(encode("SET", "price:v1:lean:1", "7", "EX", 30))
    print("lean", connection.execute(encode("GET", "price:v1:lean:1")), "tls", tls is not None)
    """
)


def node_in(namespace: str, env: dict[str, str], *args: str) -> dict:
    """tests/node/client.mjs run on another host (inside a namespace); its JSON line ({} when none)."""
    done = subprocess.run(
        ["ip", "netns", "exec", namespace, "node", str(PROGRAM), *args],
        env=env,
        cwd=PROGRAM.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def test_the_lean_load_user_and_node_clients_on_the_allowed_host(
    published: Deployment, other_hosts: OtherHosts
) -> None:
    """From the allowed host over TLS (the CA bundle, the server's certificate naming 198.18.0.1): the
    load generator's lean connection, and ioredis and node-redis running the service patterns; the
    same programs from the refused host get no connection."""
    lean = other_hosts.allowed.python(LEAN, str(published.profile.source), env=published.env, timeout_s=60)
    assert "lean b'7' tls True" in lean.stdout, lean.stdout + lean.stderr
    refused = other_hosts.refused.python(LEAN, str(published.profile.source), env=published.env, timeout_s=60)
    assert "lean" not in refused.stdout and refused.returncode != 0
    if shutil.which("node") is None or not (PROGRAM.parent / "node_modules" / "ioredis").is_dir():
        pytest.fail("Node or tests/node/node_modules missing: scripts/test installs them (npm ci in tests/node)")
    env = tls_node_env(published, "price")
    for library in LIBRARIES:
        result = node_in(other_hosts.allowed.name, env, library, "patterns")
        assert result.get("fatal") is None and result.get("user") == "price", result
        assert_patterns(result, "")
        outside = node_in(other_hosts.refused.name, env, library, "login", "1500")
        assert outside.get("library") == library and outside.get("outcome") != "connected", outside
        # Mutual TLS: the allowed host without the service's certificate gets no session either.
        bare = node_in(
            other_hosts.allowed.name, tls_node_env(published, "price", certificate=False), library, "login", "1500"
        )
        assert bare.get("library") == library and bare.get("outcome") != "connected", bare


# Commands on the allowed host for `seconds`, each client on one connection and no retry, so any
# failure is counted: redis-py (the harness's client path) and the lean RESP user, alternately.
TRAFFIC = textwrap.dedent(
    """
    import json, os, sys, time
    from redis_harness.client.connection import make_redis
    from redis_harness.deploy.connect import settings_for
    from redis_harness.deploy.tls_client import client_ssl_context
    from redis_harness.load.resp import RespConnection, encode
    from redis_harness.profile.credentials import load_secrets
    from redis_harness.profile.model import load_profile

    profile = load_profile(sys.argv[1])
    secrets = load_secrets(profile, env=os.environ)
    password = secrets.password_for("price")
    client = make_redis(settings_for(profile, "price", password, retries=0, socket_timeout_s=5))
    net = profile.network
    lean = RespConnection(net.host, net.port, "price", password, 5.0, tls=client_ssl_context(profile, "price"))
    counts = {"redis_py": 0, "lean": 0, "errors": 0}
    first_error = None
    deadline = time.monotonic() + float(sys.argv[2])
    print("started", flush=True)
    n = 0
    while time.monotonic() < deadline:
        n += 1
        try:
            client.set("price:v1:rotate", n, ex=60)
            assert int(client.get("price:v1:rotate")) == n
            counts["redis_py"] += 2
            lean.execute(encode("SET", "price:v1:rotate:lean", str(n), "EX", 60))
            assert lean.execute(encode("GET", "price:v1:rotate:lean")) == str(n).encode()
            counts["lean"] += 2
        except Exception as exc:
            counts["errors"] += 1
            first_error = first_error or f"{type(exc).__name__}: {exc}"
        time.sleep(0.002)
    counts["connections"] = client.connection_pool._created_connections
    print(json.dumps({**counts, "first_error": first_error}), flush=True)
    """
)


def test_clients_on_the_allowed_host_keep_working_through_cert_rotate(
    published: Deployment, other_hosts: OtherHosts, capsys: pytest.CaptureFixture[str]
) -> None:
    """redis-py, the lean user, ioredis and node-redis on the allowed host, mutual TLS, commands
    running while `cert rotate` loads new certificates: 0 failed commands, no connection made again."""
    seconds = 8.0
    namespace = other_hosts.allowed.name
    python = subprocess.Popen(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", TRAFFIC, str(published.profile.source), str(seconds)],
        env=published.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    writers = {
        library: subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                namespace,
                "node",
                str(PROGRAM),
                library,
                "writer",
                f"price:v1:rotate:{library}",
                str(int(seconds * 1000)),
            ],  # fmt: skip
            env=tls_node_env(published, "price"),
            cwd=PROGRAM.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for library in LIBRARIES
    }
    try:
        assert python.stdout is not None and python.stdout.readline().strip() == "started", python.stderr
        time.sleep(2.0)  # every client connected and busy
        rotated = subprocess.run(
            [sys.executable, "-m", "redis_harness.cli", "cert", "rotate", str(published.profile.source)],
            env=published.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        out, err = python.communicate(timeout=seconds + 60)
        node_results = {library: w.communicate(timeout=seconds + 60) for library, w in writers.items()}
    finally:
        for proc in (python, *writers.values()):
            if proc.poll() is None:
                proc.kill()
    assert rotated.returncode == 0 and "nodes serve new certificates" in rotated.stdout, rotated.stdout + rotated.stderr
    figures = json.loads(out.strip().splitlines()[-1])
    figures |= {library: summary(stdout, stderr) for library, (stdout, stderr) in node_results.items()}
    emit(capsys, "cert_rotate_from_the_allowed_host", figures | {"rotate": rotated.stdout.splitlines()[0]})
    assert figures["errors"] == 0 and figures["connections"] == 1, figures
    assert figures["redis_py"] > 0 and figures["lean"] > 0, figures
    for library in LIBRARIES:
        assert figures[library]["acked"] > 0 and figures[library]["errors"] == [], figures[library]


def summary(stdout: str, stderr: str) -> dict:
    """A Node writer's acknowledged count and its errors (the program's last JSON line)."""
    lines = stdout.strip().splitlines()
    assert lines, stderr[-2000:]
    result = json.loads(lines[-1])
    assert "fatal" not in result, result
    return {"acked": len(result["acked"]), "errors": result["errors"][:5]}


def test_down_removes_the_rules(published: Deployment, other_hosts: OtherHosts) -> None:
    """Runs last: takes the module's deployment down (the fixture's own down then finds nothing)."""
    chain = firewall.deployment_chain(published.profile)
    assert firewall.allowed_now(published.profile) == (ALLOWED_NET,)  # present while up: the check can see them
    published.down()
    assert firewall.allowed_now(published.profile) == ()
    assert firewall._iptables("-n", "-L", chain).returncode != 0
    assert f"-j {chain}" not in firewall._iptables("-S", firewall.PUBLISHED_CHAIN).stdout
    assert firewall.missing_rules() == []  # the shared rules stay for every other deployment
