"""The Node client a service would use (ioredis 5, node-redis 4), against a real deployment.

tests/node/client.mjs connects exactly as a Node service does (REDIS_HOST, REDIS_PORT,
REDIS_PASSWORD, REDIS_DB, REDIS_USERNAME from the environment), as `default` and as each
service user, and runs the service patterns. Across a `fault kill` with a data set that takes
about a second to load, an ioredis writer must see no `LOADING` error and lose no acknowledged
write: ioredis's ready check (INFO) holds its queue until Redis has loaded. Figures go to
reports/client/node_kill.json; what is asserted is what the client and Redis promise.

The deployment closes idle connections after 2 s (`server.timeout`, 10 s in the shipped
profiles) so that the idle tests wait seconds, not tens of seconds: with the README's
settings both libraries carry on after idling past it, and node-redis without its ping or
its error listener is shown failing and crashing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets as pysecrets
import shutil
import subprocess
import time
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis

from redis_harness import paths
from redis_harness.deploy.connect import connect
from redis_harness.deploy.containers import service_container
from redis_harness.faults import inject as faults
from redis_harness.render.certificates import client_paths, issue_ca

from .conftest import Deployment, deployed, emit, variant_profile

pytestmark = pytest.mark.integration

NODE_DIR = Path(__file__).resolve().parent / "node"
PROGRAM = NODE_DIR / "client.mjs"
READY_CHECK_WARNING = "Skipping the ready check"
SERVICES = ("price", "processing", "acquisition")
LIBRARIES = ("ioredis", "node-redis")
# Small string keys: ~900k of them take Redis about a second to load from its AOF.
DATASET_KEYS = 900_000
WRITER_MS = 8_000
IDLE_TIMEOUT_S = 2
K = TypeVar("K", bound=Hashable)


@pytest.fixture(scope="module")
def node_installed() -> None:
    if shutil.which("node") is None or not (NODE_DIR / "node_modules" / "ioredis").is_dir():
        pytest.fail("Node or tests/node/node_modules missing: scripts/test installs them (npm ci in tests/node)")


@pytest.fixture(scope="module")
def node_deployment(
    node_installed: None, tmp_path_factory: pytest.TempPathFactory, secret_env: dict[str, str]
) -> Iterator[Deployment]:
    # Memory for the data set that makes loading take a second; a short idle timeout for the
    # idle tests; ci otherwise.
    profile = variant_profile(
        "ci",
        tmp_path_factory.mktemp("nodeci"),
        "nodeci",
        network={"port": 6600},
        resources={"memory": "512mb"},
        server={"timeout": IDLE_TIMEOUT_S},
    )
    with deployed(profile, secret_env) as deployment:
        yield deployment


def node_env(deployment: Deployment, user: str | None, password: str, **extra: str) -> dict[str, str]:
    """What a Node service's container gets: its .env names, nothing of the harness's."""
    profile = deployment.profile
    env = {
        "PATH": os.environ["PATH"],
        "REDIS_HOST": profile.network.host,
        "REDIS_PORT": str(profile.network.port),
        "REDIS_DB": "0",
        "REDIS_PASSWORD": password,
        **extra,
    }
    if user is not None:
        env["REDIS_USERNAME"] = user
    return env


@dataclass(frozen=True)
class NodeRun:
    """One client.mjs process: its exit code, its JSON line (None when it printed none) and stderr."""

    args: tuple[str, ...]
    returncode: int
    result: dict[str, Any] | None
    stderr: str

    def ok(self) -> dict[str, Any]:
        assert self.result is not None, f"no output from client.mjs {self.args}: {self.stderr[-2000:]}"
        fatal = self.result.get("fatal")
        assert fatal is None, f"client.mjs {self.args} failed: {fatal} / {self.stderr[-2000:]}"
        assert self.returncode == 0, self.stderr[-2000:]
        return self.result


def run_nodes(runs: Mapping[K, tuple[dict[str, str], tuple[str, ...]]], timeout_s: float = 60) -> dict[K, NodeRun]:
    """Several client.mjs processes at once (env, arguments each), so their waits overlap."""
    procs = {
        name: subprocess.Popen(
            ["node", str(PROGRAM), *args],
            env=env,
            cwd=NODE_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (env, args) in runs.items()
    }
    done: dict[K, NodeRun] = {}
    for name, proc in procs.items():
        try:
            stdout, stderr = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        lines = stdout.strip().splitlines()
        done[name] = NodeRun(runs[name][1], proc.returncode, json.loads(lines[-1]) if lines else None, stderr)
    return done


def run_node(env: dict[str, str], *args: str, timeout_s: float = 60) -> tuple[dict[str, Any], str]:
    run = run_nodes({"run": (env, args)}, timeout_s)["run"]
    return run.ok(), run.stderr


def as_user(deployment: Deployment, user: str) -> dict[str, str]:
    """`default` logs in with REDIS_PASSWORD only and has the rights of security.default_user."""
    if user == "default":
        service = deployment.profile.security.default_service
        assert service is not None, "this profile switches default off"
        return node_env(deployment, None, deployment.secrets.default.password, REDIS_SERVICE=service.name)
    return node_env(deployment, user, deployment.secrets.service(user).password)


def assert_patterns(result: dict[str, Any], stderr: str) -> None:
    p = result["patterns"]
    assert p["cache_aside"] == {
        "first_hit": False,
        "second_hit": True,
        "origin_loads": 1,
        "same_value": True,
        "ttl_s": p["cache_aside"]["ttl_s"],
    }
    assert 0 < p["cache_aside"]["ttl_s"] <= 30
    assert p["pipeline"] == {"commands": 100, "errors": 0, "values_match": True}
    assert p["multi"]["replies"] == [1, 2, 1]
    assert p["rate_limiter"] == {"allowed": 5, "denied": 3}
    assert p["lock"] == {"acquired": "OK", "contended": None, "wrong_release": 0, "released": 1, "reacquired": "OK"}
    assert p["info_ok"] is True
    assert result["warnings"] == [] and READY_CHECK_WARNING not in stderr


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("user", ("default", *SERVICES))
def test_service_patterns(node_deployment: Deployment, user: str, library: str) -> None:
    result, stderr = run_node(as_user(node_deployment, user), library, "patterns")
    assert result["user"] == user
    assert_patterns(result, stderr)


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("user", SERVICES)
def test_service_user_cannot_read_another_services_key(node_deployment: Deployment, user: str, library: str) -> None:
    admin = connect(node_deployment.profile, "admin", node_deployment.secrets.admin.password)
    others = [s for s in SERVICES if s != user]
    own, foreign = f"{user}:v1:probe:1", f"{others[0]}:v1:probe:1"
    admin.set(own, "mine", ex=60)
    admin.set(foreign, "theirs", ex=60)
    mine, _ = run_node(as_user(node_deployment, user), library, "probe", own)
    assert mine["error"] is None and mine["value"] == "mine"  # the probe itself reads
    theirs, _ = run_node(as_user(node_deployment, user), library, "probe", foreign)
    assert theirs["error"] is not None and "NOPERM" in theirs["error"]
    assert "value" not in theirs or theirs.get("value") is None


def test_warning_is_seen_when_info_is_refused(node_deployment: Deployment) -> None:
    """The warning check can fail: a user without INFO makes ioredis print it, and it is caught."""
    admin = connect(node_deployment.profile, "admin", node_deployment.secrets.admin.password)
    password = pysecrets.token_hex(16)
    admin.execute_command("ACL", "SETUSER", "nodeci-noinfo", "on", f">{password}", "~price:*", "+@all", "-info")
    try:
        env = node_env(node_deployment, "nodeci-noinfo", password, REDIS_SERVICE="price")
        result, stderr = run_node(env, "ioredis", "patterns")
    finally:
        admin.execute_command("ACL", "DELUSER", "nodeci-noinfo")
    assert any(READY_CHECK_WARNING in w for w in result["warnings"]) and READY_CHECK_WARNING in stderr
    with pytest.raises(AssertionError):
        assert_patterns(result, stderr)


# How each client idles past the server's timeout: library, extra environment, rounds.
# node-redis PINGs at half the timeout, as the README says for 10 s (pingInterval 5000).
IDLE_RUNS: dict[str, tuple[str, dict[str, str], int]] = {
    "ioredis": ("ioredis", {}, 2),
    # The event loop is blocked over the close: the next command is written to a connection
    # Redis has already closed (a command sent at the moment of the close, every time).
    "ioredis_at_close": ("ioredis", {"REDIS_IDLE_BLOCK": "1"}, 2),
    "node-redis": ("node-redis", {"REDIS_PING_MS": str(IDLE_TIMEOUT_S * 1000 // 2)}, 2),
    # The broken variants: node-redis's own defaults for the ping and the listener.
    "node-redis_no_ping": ("node-redis", {"REDIS_PING_MS": "0"}, 1),
    "node-redis_no_ping_at_close": ("node-redis", {"REDIS_PING_MS": "0", "REDIS_IDLE_BLOCK": "1"}, 1),
    "node-redis_no_ping_no_listener": ("node-redis", {"REDIS_PING_MS": "0", "REDIS_ERROR_LISTENER": "0"}, 1),
}


@pytest.fixture(scope="module")
def idle_runs(node_deployment: Deployment) -> dict[str, NodeRun]:
    """Every idle variant at once, as `price`, each idling twice the server's timeout per round."""
    admin = connect(node_deployment.profile, "admin", node_deployment.secrets.admin.password)
    timeout_s = int(admin.config_get("timeout")["timeout"])
    assert timeout_s == node_deployment.profile.server.timeout_s == IDLE_TIMEOUT_S
    idle_ms = str(timeout_s * 2 * 1000)
    base = as_user(node_deployment, "price")
    return run_nodes(
        {
            name: ({**base, **extra}, (library, "idle", idle_ms, str(rounds)))
            for name, (library, extra, rounds) in IDLE_RUNS.items()
        }
    )


def events(run: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [e for r in run["rounds"] for e in r["events"] if e["event"] == name]


def assert_idle_survived(run: dict[str, Any]) -> None:
    """Every command after every idle succeeded, each INCR counted once, no 'error' event."""
    rounds = run["rounds"]
    assert [r.get("incr") for r in rounds] == list(range(1, len(rounds) + 1)), rounds
    assert all("client_id_after" in r for r in rounds), rounds
    assert run["counter"] == len(rounds)
    assert events(run, "error") == []


@pytest.mark.parametrize("variant", ("ioredis", "ioredis_at_close"))
def test_ioredis_idles_past_the_server_timeout(idle_runs: dict[str, NodeRun], variant: str) -> None:
    """ioredis reconnects quietly and resends what it had sent on the closed connection."""
    run = idle_runs[variant].ok()
    assert_idle_survived(run)
    # The idle really outlasted the timeout: Redis closed each connection and ioredis made another.
    assert all(r["client_id_after"] != r["client_id_before"] for r in run["rounds"])
    assert len(events(run, "close")) == len(run["rounds"])


def test_node_redis_with_ping_idles_past_the_server_timeout(idle_runs: dict[str, NodeRun]) -> None:
    """pingInterval below the timeout: the connection never goes idle, so Redis never closes it."""
    run = idle_runs["node-redis"].ok()
    assert_idle_survived(run)
    assert all(r["client_id_after"] == r["client_id_before"] for r in run["rounds"])
    assert len(events(run, "ping-interval")) >= 2 * len(run["rounds"])
    assert events(run, "reconnecting") == []


def idle_figures(runs: dict[str, NodeRun]) -> dict[str, Any]:
    """Per variant: how each command after the idle ended, and when (ms into the idle) the
    library saw the connection close, reconnect or fail; pings counted."""
    figures: dict[str, Any] = {"server_timeout_s": IDLE_TIMEOUT_S}
    for name, run in runs.items():
        if run.result is None or "rounds" not in run.result:
            thrown = [line for line in run.stderr.splitlines() if "Error:" in line][:1]
            figures[name] = {"exit_code": run.returncode, "thrown": thrown}
            continue
        figures[name] = [
            {
                "after_idle": r.get("incr_error", "ok"),
                "same_connection": r.get("client_id_after") == r["client_id_before"],
                "pings": sum(e["event"] == "ping-interval" for e in r["events"]),
                "events_ms": [f"{e['event']} {e['at_ms']}" for e in r["events"] if e["event"] != "ping-interval"],
            }
            for r in run.result["rounds"]
        ]
    return figures


def test_node_redis_without_ping_is_closed_and_fails(
    idle_runs: dict[str, NodeRun], capsys: pytest.CaptureFixture[str]
) -> None:
    """The broken variants: without the ping, Redis closes the idle connection and node-redis emits
    'error'; a command sent at the moment of the close fails; with no listener the process dies."""
    emit(capsys, "node_idle", idle_figures(idle_runs))
    quiet = idle_runs["node-redis_no_ping"].ok()
    with pytest.raises(AssertionError):
        assert_idle_survived(quiet)
    assert [e["message"] for e in events(quiet, "error")] == ["Socket closed unexpectedly"]
    assert quiet["rounds"][0]["client_id_after"] != quiet["rounds"][0]["client_id_before"]

    at_close = idle_runs["node-redis_no_ping_at_close"].ok()
    assert at_close["rounds"][0].get("incr_error") == "Socket closed unexpectedly"
    assert at_close["counter"] == 0

    crashed = idle_runs["node-redis_no_ping_no_listener"]
    assert crashed.returncode != 0 and crashed.result is None
    assert "Unhandled 'error' event" in crashed.stderr and "SocketClosedUnexpectedlyError" in crashed.stderr


def test_wrong_pair_fails_once(node_deployment: Deployment) -> None:
    """REDIS_USERNAME=price with `default`'s password (the .env's REDIS_PASSWORD): one WRONGPASS
    and the client gives up; without the give-up both libraries retry it forever."""
    wrong = node_env(node_deployment, "price", node_deployment.secrets.default.password)
    runs = run_nodes(
        {
            (library, variant): (env, (library, "login", "1000"))
            for library in LIBRARIES
            for variant, env in (
                ("given_up", wrong),
                ("retrying", {**wrong, "REDIS_AUTH_GIVE_UP": "0"}),
                ("right_pair", as_user(node_deployment, "price")),
            )
        }
    )
    for library in LIBRARIES:
        given_up, retrying = runs[library, "given_up"].ok(), runs[library, "retrying"].ok()
        assert given_up["outcome"].startswith("refused: "), given_up  # connect() rejects; it never hangs
        assert given_up["errors"] == ["WRONGPASS invalid username-password pair or user is disabled."]
        assert given_up["error_events"] == 1 and given_up["reconnects"] == 0, given_up
        assert retrying["errors"] == given_up["errors"] and retrying["reconnects"] >= 2, retrying
        assert runs[library, "right_pair"].ok()["outcome"] == "connected"


# ----------------------------------------------------------------------------- over TLS


def tls_node_env(deployment: Deployment, user: str, *, certificate: bool = True) -> dict[str, str]:
    """A service's .env for a TLS deployment: the CA bundle and (mutual TLS) the certificate the harness
    wrote for that service, under the same names the Python library reads."""
    ca, cert, key = client_paths(paths.state_dir(deployment.profile.name), user)
    env = {**as_user(deployment, user), "REDIS_TLS_CA_FILE": str(ca)}
    if certificate:
        env |= {"REDIS_TLS_CERT_FILE": str(cert), "REDIS_TLS_KEY_FILE": str(key)}
    return env


def test_service_patterns_over_tls(node_installed: None, tls_deployment: Deployment) -> None:
    """Both libraries, every service user, over TLS with client certificates required (no plaintext port)."""
    runs = run_nodes(
        {
            (library, user): (tls_node_env(tls_deployment, user), (library, "patterns"))
            for library in LIBRARIES
            for user in SERVICES
        }
    )
    for (_, user), run in runs.items():
        result = run.ok()
        assert result["user"] == user
        assert_patterns(result, run.stderr)


def test_node_client_without_certificate_is_refused(
    node_installed: None, tls_deployment: Deployment, tmp_path: Path
) -> None:
    """client_auth required: with the CA but no certificate, or in plaintext, neither library gets a
    connection, and trusting another CA it refuses the server itself; the same login with the
    service's certificate and the deployment's CA connects (in the same run)."""
    other_ca = tmp_path / "other-ca.crt"
    other_ca.write_text(issue_ca(tls_deployment.profile, dt.datetime.now(dt.UTC))[0])
    variants = {
        "certificate": tls_node_env(tls_deployment, "price"),
        "no_certificate": tls_node_env(tls_deployment, "price", certificate=False),
        "plaintext": as_user(tls_deployment, "price"),
        "other_ca": {**tls_node_env(tls_deployment, "price"), "REDIS_TLS_CA_FILE": str(other_ca)},
    }
    runs = run_nodes(
        {(library, name): (env, (library, "login", "1500")) for library in LIBRARIES for name, env in variants.items()}
    )
    for library in LIBRARIES:
        assert runs[library, "certificate"].ok()["outcome"] == "connected"
        for refused in ("no_certificate", "plaintext", "other_ca"):
            result = runs[library, refused].ok()
            assert result["outcome"] != "connected" and result["error_events"] > 0, (library, refused, result)
        assert runs[library, "other_ca"].ok()["errors"] == ["self-signed certificate in certificate chain"]


def load_dataset(deployment: Deployment) -> None:
    """Several hundred thousand small keys, written as admin in pipelines, under a prefix no test uses."""
    admin = connect(deployment.profile, "admin", deployment.secrets.admin.password, timeout_s=30)
    if admin.dbsize() >= DATASET_KEYS:
        return
    batch = 10_000
    for start in range(0, DATASET_KEYS, batch):
        pipe = admin.pipeline(transaction=False)
        for i in range(start, start + batch):
            pipe.set(f"bulk:v1:row:{i}", i)
        pipe.execute()


def loaded_in_s(deployment: Deployment, since: float) -> float | None:
    """Redis's own figure for its last load (container log), after the kill."""
    logs = service_container(deployment.profile).logs(since=int(since)).decode(errors="replace")
    found = re.findall(r"DB loaded from (?:append only file|disk): ([\d.]+) seconds", logs)
    return float(found[-1]) if found else None


def writer_across_kill(deployment: Deployment, extra_env: dict[str, str], library: str = "ioredis") -> dict[str, Any]:
    """A writer as `price` pushes 1, 2, 3, ... one at a time; Redis is SIGKILLed once it is going."""
    list_key = f"price:v1:sequence:kill-{pysecrets.token_hex(4)}"
    # Reconnects every 25 ms: one surely lands inside the load, whatever this machine's speed.
    env = {**as_user(deployment, "price"), "REDIS_RETRY_MS": "25", **extra_env}
    admin = connect(deployment.profile, "admin", deployment.secrets.admin.password, timeout_s=10)
    proc = subprocess.Popen(
        ["node", str(PROGRAM), library, "writer", list_key, str(WRITER_MS)],
        env=env,
        cwd=NODE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while admin.llen(list_key) < 200:
            assert time.monotonic() < deadline and proc.poll() is None, "the writer never got going"
            time.sleep(0.05)
        time.sleep(1.5)
        record = faults.kill(deployment.profile)
        faults.wait_running(deployment.profile, timeout_s=60)
        stdout, stderr = proc.communicate(timeout=WRITER_MS / 1000 + 60)
    finally:
        if proc.poll() is None:
            proc.kill()
    result = json.loads(stdout.strip().splitlines()[-1])
    assert "fatal" not in result, f"{result['fatal']} / {stderr[-2000:]}"
    admin = connect(deployment.profile, "admin", deployment.secrets.admin.password, timeout_s=10)
    stored = {int(v) for v in admin.lrange(list_key, 0, -1)}
    acked = [(int(v), float(at)) for v, at in result["acked"]]
    errors = result["errors"]
    after_kill = [e for e in errors if e["at"] >= record.requested_at]
    ack_times = [at for _, at in acked]
    lost = {v: at for v, at in acked if v not in stored}
    gaps = [b - a for a, b in zip(ack_times, ack_times[1:], strict=False) if b >= record.requested_at]
    return {
        "dataset_keys": admin.dbsize(),
        "load_s": loaded_in_s(deployment, record.requested_at - 1),
        "acked_writes": len(acked),
        "lost_acked_writes": len(lost),
        # appendfsync everysec: Redis skips an AOF write (yet replies) while an fsync is slow, for
        # up to 2 s; writes acknowledged earlier, or by the restarted server, must all be there.
        "lost_outside_everysec_window": len(
            [at for at in lost.values() if at < record.requested_at - 2.0 or at > record.in_place_at + 0.5]
        ),
        "loading_errors": sum(1 for e in errors if e["code"] == "LOADING"),
        "other_errors": sum(1 for e in errors if e["code"] != "LOADING"),
        "error_codes": sorted({e["code"] for e in errors}),
        "error_window_after_kill_s": (max(e["at"] for e in after_kill) - record.requested_at) if after_kill else 0.0,
        "longest_ack_gap_s": max(gaps) if gaps else None,
        "warnings": result["warnings"],
        "ready_check_warning_in_stderr": READY_CHECK_WARNING in stderr,
    }


def test_ioredis_writer_across_kill(node_deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    """0 LOADING errors and no acknowledged write lost beyond everysec's window across a SIGKILL
    with a second-long load."""
    profile = node_deployment.profile
    assert profile.persistence.aof and profile.restart in ("always", "unless-stopped", "on-failure")
    try:
        admin = connect(profile, "admin", node_deployment.secrets.admin.password, timeout_s=30)
    except redis.RedisError as exc:  # pragma: no cover - a deployment that is not up fails here plainly
        pytest.fail(f"nodeci not reachable: {exc}")
    load_dataset(node_deployment)
    admin.close()
    figures = writer_across_kill(node_deployment, {})
    emit(capsys, "node_kill", figures)
    assert figures["dataset_keys"] >= DATASET_KEYS
    assert figures["loading_errors"] == 0
    assert figures["lost_outside_everysec_window"] == 0
    assert figures["acked_writes"] > 0
    assert figures["warnings"] == [] and not figures["ready_check_warning_in_stderr"]
    # The same writer without the ready check: the LOADING errors it would have had are counted.
    unchecked = writer_across_kill(node_deployment, {"REDIS_READY_CHECK": "0"})
    emit(capsys, "node_kill_without_ready_check", unchecked)
    assert unchecked["loading_errors"] > 0, f"the control met no load window: {unchecked}"


def test_node_redis_writer_across_kill(node_deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    """node-redis 4 has no ready check: its LOADING errors are reported, not asserted; what Redis
    promises (no acknowledged write lost to a process kill, beyond everysec's window) is."""
    load_dataset(node_deployment)
    figures = writer_across_kill(node_deployment, {}, library="node-redis")
    emit(capsys, "node_kill_node_redis", figures)
    assert figures["acked_writes"] > 0
    assert figures["lost_outside_everysec_window"] == 0
