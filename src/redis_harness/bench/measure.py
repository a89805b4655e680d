"""`redis-harness bench PROFILE`: redis-benchmark beside the harness's `raw` scenario, same deployment, same mix.

Both sides run GET and SET 1:1 over 10,000 keys with 3-byte values against
the same primary, one after the other in one invocation, so the figures are
comparable: the harness's own overhead (Python, Locust, its lean user) is the
ratio between them. The primary is a standalone's address, the one the
Sentinels name when bench starts, or on a Cluster each slot's (redis-benchmark
--cluster, the lean user by slot); a deployed Cluster is refused, its nodes
announcing names only the harness's own clients map. Two shapes:

- closed loop at 50 connections: throughput (redis-benchmark -c 50 vs 50
  Locust users, in one process and with 2 worker processes);
- one connection: latency percentiles (redis-benchmark -c 1 vs 1 user).

Against a deployment with security.tls on, both sides speak TLS with the harness's
client settings (redis-benchmark --tls --cacert, and --cert/--key when the
deployment asks clients for a certificate). `--plaintext TWIN` measures a
plaintext deployment of the same shape in the same invocation, each run paired
with its twin's back to back, so the TLS cost (plaintext vs TLS, for
redis-benchmark and the harness) comes from one run.

Figures, not asserts: the command exits 0 whatever the numbers are.
"""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from secrets import token_hex, token_urlsafe
from typing import Any

from redis.cluster import RedisCluster

from redis_harness import progress
from redis_harness.client.connection import TlsSettings
from redis_harness.deploy.connect import connect
from redis_harness.deploy.tls_client import client_tls
from redis_harness.errors import BadInput, HarnessError
from redis_harness.load import run as load_run
from redis_harness.load.generator import BUSY_PERCENT, process_label
from redis_harness.load.routes import routes_for
from redis_harness.load.run import LoadOptions
from redis_harness.load.scenarios import RAW_KEYSPACE, RAW_USER, get_scenario
from redis_harness.profile.credentials import AnySecrets, Secrets, TargetSecrets
from redis_harness.profile.model import Profile
from redis_harness.report.analysis import build
from redis_harness.report.saturation import CONSEQUENCE
from redis_harness.report.text import summary
from redis_harness.terminal import MAX_WIDTH, Group, table, wrapped

KEYSPACE = RAW_KEYSPACE  # -r: the raw scenario's keyspace
BENCH_KEY_PREFIX = "key:"  # redis-benchmark's own key names: key:__rand_int__
# The keys `-r KEYSPACE` makes of key:__rand_int__ (12 digits): removed with the temporary user.
BENCH_KEYS = tuple(f"{BENCH_KEY_PREFIX}{n:012d}" for n in range(KEYSPACE))
BENCH_USER_PREFIX = "bench-"
VALUE_SIZE = 3  # -d: the raw scenario's value length
CLOSED_LOOP_CLIENTS = 50
WORKERS = 2
PROBE_REQUESTS = {CLOSED_LOOP_CLIENTS: 20_000, 1: 5_000}  # a short first run to size the measured one
MIN_REQUESTS, MAX_REQUESTS = 1_000, 5_000_000
DEFAULT_DURATION = "5s"
# The harness runs: (key in bench.json, Locust users, worker processes; 0 = Locust in one process).
HARNESS_RUNS = (
    ("closed_loop_1_process", CLOSED_LOOP_CLIENTS, 0),
    (f"closed_loop_{WORKERS}_workers", CLOSED_LOOP_CLIENTS, WORKERS),
    ("one_connection", 1, 0),
)
# The share of redis-benchmark's closed-loop throughput the lean user is meant to keep (plaintext and TLS):
# shown beside the best closed-loop ratio, never enforced (a figure of a shared machine).
LEAN_FLOOR = 0.6
# What must match for a plaintext deployment to stand beside a TLS one: everything but security and network.
SHAPE = ("topology_kind", "image", "resources", "memory", "persistence", "server", "replication", "sentinel", "cluster")


@dataclass(frozen=True)
class BenchmarkLine:
    """One test of redis-benchmark's --csv output; latencies converted from ms to µs."""

    test: str
    rps: float
    avg_us: float
    min_us: float
    p50_us: float
    p95_us: float
    p99_us: float
    max_us: float


# ----------------------------------------------------------------------------- pure parts


def parse_csv(text: str) -> dict[str, BenchmarkLine]:
    """Tests by name from `redis-benchmark --csv` output (7.0 prints latency columns in ms).

    Lines before the header (e.g. "WARNING: Could not fetch server CONFIG" when
    the user may not run CONFIG) are skipped.
    """
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith('"test"')), None)
    if start is None:
        raise HarnessError("bench: redis-benchmark printed no CSV header; it said: " + " | ".join(lines[-3:]))
    result: dict[str, BenchmarkLine] = {}
    for row in csv.DictReader(io.StringIO("\n".join(lines[start:]))):
        try:
            result[row["test"]] = BenchmarkLine(
                test=row["test"],
                rps=float(row["rps"]),
                avg_us=_ms_to_us(row["avg_latency_ms"]),
                min_us=_ms_to_us(row["min_latency_ms"]),
                p50_us=_ms_to_us(row["p50_latency_ms"]),
                p95_us=_ms_to_us(row["p95_latency_ms"]),
                p99_us=_ms_to_us(row["p99_latency_ms"]),
                max_us=_ms_to_us(row["max_latency_ms"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise HarnessError(f"bench: unexpected redis-benchmark CSV row {row!r} ({exc})") from None
    if not result:
        raise HarnessError("bench: redis-benchmark printed a CSV header but no results")
    return result


def _ms_to_us(value: str) -> float:
    return round(float(value) * 1000.0, 1)


def mix_throughput(tests: dict[str, BenchmarkLine]) -> float:
    """Operations per second of the whole GET+SET run.

    redis-benchmark runs its tests one after the other with the same number of
    requests each, so the run's rate is the harmonic mean of the per-test
    rates (total requests / total time), not their arithmetic mean.
    """
    rates = [line.rps for line in tests.values() if line.rps > 0]
    return len(rates) / sum(1.0 / r for r in rates) if rates else 0.0


def requests_for(rate: float, duration_s: float, tests: int = 2) -> int:
    """-n so that `tests` consecutive redis-benchmark tests at `rate` ops/s take about duration_s together."""
    wanted = rate * duration_s / tests
    return int(min(MAX_REQUESTS, max(MIN_REQUESTS, wanted)))


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 3)


def harness_latency(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    """p50/p99 per command (GET, SET) from a load report, keyed like redis-benchmark's tests."""
    return {
        name.split()[0]: {"p50_us": c["p50_us"], "p99_us": c["p99_us"], "count": c["count"], "errors": c["errors"]}
        for name, c in report["commands"].items()
    }


# ----------------------------------------------------------------------------- redis-benchmark


def _redis_benchmark() -> str:
    path = shutil.which("redis-benchmark")
    if path is None:
        raise BadInput("bench: redis-benchmark not found; install Debian's redis-tools (scripts/bootstrap-host does)")
    return path


def _redis_benchmark_version(binary: str) -> str:
    result = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    return result.stdout.strip()


@dataclass(frozen=True)
class BenchUser:
    """A temporary ACL user for redis-benchmark: its own key prefix, GET/SET/PING only, deleted after the run."""

    name: str
    password: str


def bench_user_rules(password: str, cluster: bool = False) -> list[str]:
    """ACL SETUSER arguments: redis-benchmark's keys (key:__rand_int__; key:{tag}:__rand_int__ with --cluster)
    and its three commands, nothing else; on a Cluster also CLUSTER NODES, which --cluster reads the
    primaries from (again after a -MOVED).

    The password goes in as its SHA-256 hash, so not even the ACL command carries it in clear.
    """
    digest = hashlib.sha256(password.encode()).hexdigest()
    rules = ["reset", "on", f"#{digest}", f"~{BENCH_KEY_PREFIX}*", "resetchannels", "-@all", "+get", "+set", "+ping"]
    return rules + (["+cluster|nodes"] if cluster else [])


@contextmanager
def temporary_user(profile: Profile, secrets: AnySecrets) -> Iterator[BenchUser]:
    """Create the benchmark's user (as admin; on every node of a Cluster), yield it, delete it and the keys
    redis-benchmark wrote (they have no TTL: left behind they would set off keys_without_ttl); a killed
    bench's users go first.

    redis-benchmark 7.0 takes a password only on its command line (-a; it ignores
    REDISCLI_AUTH), where every local user can read it: so the password it gets
    belongs to this user, lives for one `bench`, and opens only its own keys.
    """
    assert secrets.admin is not None  # check_ready refused a target without one
    admin_user = secrets.admin.user if isinstance(secrets, TargetSecrets) else "admin"
    admin = connect(profile, admin_user, secrets.admin.password, sentinel_password=secrets.sentinel_password)
    # ACL users are each node's own: on a Cluster every node gets (and loses) the user.
    on_every_node: dict[str, Any] = {"target_nodes": RedisCluster.ALL_NODES} if isinstance(admin, RedisCluster) else {}
    try:
        stale = admin.execute_command("ACL", "USERS", **on_every_node)
        for name in _bench_users(stale):
            admin.execute_command("ACL", "DELUSER", name, **on_every_node)
        user = BenchUser(f"{BENCH_USER_PREFIX}{token_hex(4)}", token_urlsafe(24))
        rules = bench_user_rules(user.password, cluster=bool(on_every_node))
        admin.execute_command("ACL", "SETUSER", user.name, *rules, **on_every_node)
        try:
            yield user
        finally:
            if isinstance(admin, RedisCluster):
                # --cluster puts each primary's keys under a hash tag of its slots: key:{tag}:<n>.
                load_run.remove_keys(admin, list(admin.scan_iter(match=f"{BENCH_KEY_PREFIX}{{*", count=1000)))
            else:
                load_run.remove_keys(admin, BENCH_KEYS)
            admin.execute_command("ACL", "DELUSER", user.name, **on_every_node)
    finally:
        admin.close()


def _bench_users(reply: Any) -> set[str]:
    """bench's users among ACL USERS' answer (a list; a Cluster's, a list per node)."""
    lists = reply.values() if isinstance(reply, dict) else [reply]
    names = {(n.decode() if isinstance(n, bytes) else str(n)) for names in lists for n in names}
    return {n for n in names if n.startswith(BENCH_USER_PREFIX)}


def tls_arguments(tls: TlsSettings | None) -> list[str]:
    """redis-benchmark's flags for a client's TLS settings: the CA it checks the server with, and the
    client's own certificate when the deployment asks for one (file paths only, no secret)."""
    if tls is None:
        return []
    arguments = ["--tls", "--cacert", tls.ca_file]
    if tls.cert_file and tls.key_file:
        arguments += ["--cert", tls.cert_file, "--key", tls.key_file]
    return arguments


def benchmark_command(
    binary: str, profile: Profile, endpoint: Endpoint, user: BenchUser, clients: int, requests: int
) -> list[str]:
    """`-t get,set -r 10000 -d 3` as `user`; over TLS with the harness's client certificate (the ACL user is
    the temporary one, the TLS identity the harness's own); with --cluster on a Cluster."""
    return [binary, "-h", endpoint.host, "-p", str(endpoint.port), *(["--cluster"] if endpoint.cluster else []),
            "--user", user.name, "-a", user.password,
            "-t", "get,set", "-r", str(KEYSPACE), "-d", str(VALUE_SIZE), "-c", str(clients), "-n", str(requests),
            "--csv", *tls_arguments(client_tls(profile, user.name))]  # fmt: skip


def run_redis_benchmark(
    binary: str, profile: Profile, endpoint: Endpoint, user: BenchUser, clients: int, requests: int, timeout_s: float
) -> dict[str, BenchmarkLine]:
    """One `-t get,set -r 10000 -d 3` run; bounded by timeout_s (it retries forever when the port is closed,
    and spins when a TLS handshake is refused)."""
    cmd = benchmark_command(binary, profile, endpoint, user, clients, requests)
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise HarnessError(
            f"bench: redis-benchmark -c {clients} -n {requests} did not finish within {timeout_s:.0f} s"
        ) from None
    if result.returncode != 0:
        said = " | ".join((result.stdout + result.stderr).strip().splitlines()[-3:])
        raise HarnessError(f"bench: redis-benchmark exited {result.returncode}: {said}")
    return parse_csv(result.stdout)


def sized_redis_benchmark(
    binary: str, target: Target, user: BenchUser, clients: int, duration_s: float
) -> tuple[int, dict[str, BenchmarkLine]]:
    """redis-benchmark takes a request count, not a time: a short probe (also a warm-up) sizes the real run."""
    profile, endpoint = target.profile, target.endpoint
    progress.note(f"redis-benchmark -c {clients} on {profile.name}: sizing probe")
    probe = run_redis_benchmark(binary, profile, endpoint, user, clients, PROBE_REQUESTS[clients], timeout_s=60)
    progress.note(f"redis-benchmark -c {clients} on {profile.name}: measuring")
    requests = requests_for(mix_throughput(probe), duration_s)
    # Generous bound: the real run is sized to take duration_s; a slower machine gets 4x that.
    bound = 60 + 4 * duration_s
    return requests, run_redis_benchmark(binary, profile, endpoint, user, clients, requests, timeout_s=bound)


# ----------------------------------------------------------------------------- the harness side


def run_harness(
    profile: Profile, secrets: AnySecrets, run_dir: Path, users: int, workers: int, duration_s: float
) -> dict[str, Any]:
    """One `raw` scenario run; its summary goes to summary.txt. The report is returned: a benchmark
    records the gates' verdict rather than enforcing it."""
    options = LoadOptions(
        users=users,
        spawn_rate=users * 10,  # all users at once: a ramp would count as run time with fewer users
        duration_s=duration_s,
        workers=workers,
        report_dir=run_dir,
    )
    finished = load_run.run(profile, secrets, get_scenario("raw"), options)
    report = build(finished.run_dir)
    (run_dir / "summary.txt").write_text(summary(report, run_dir) + "\n")
    return report


def _harness_figures(report: dict[str, Any], run_dir: Path, users: int, workers: int) -> dict[str, Any]:
    return {
        "users": users,
        "workers": workers,
        "ops_s": report["throughput_ops_s"],
        "duration_s": report["duration_s"],
        "latency": harness_latency(report),
        "gates_passed": report["passed"],
        "generator": report.get("generator"),
        "calibration": report.get("calibration"),
        "run_dir": str(run_dir),
    }


def _benchmark_figures(clients: int, requests: int, tests: dict[str, BenchmarkLine]) -> dict[str, Any]:
    return {
        "clients": clients,
        "requests_per_test": requests,
        "ops_s": round(mix_throughput(tests), 1),
        "tests": {name: asdict(line) for name, line in tests.items()},
    }


# ----------------------------------------------------------------------------- the command


@dataclass(frozen=True)
class Endpoint:
    """Where redis-benchmark sends its commands: one primary, or a Cluster node it asks for the others."""

    host: str
    port: int
    cluster: bool = False

    def __str__(self) -> str:
        return f"{self.host}:{self.port}" + (" and the Cluster's other primaries" if self.cluster else "")


def bench_endpoint(profile: Profile, secrets: AnySecrets) -> Endpoint:
    """The address both sides measure, asked now: a standalone's, the primary the Sentinels name (the
    harness's raw users go there too), or a Cluster node, from which redis-benchmark --cluster finds every
    primary as the harness's users do by slot (load/routes.py)."""
    routes = routes_for(profile, secrets, RAW_USER)
    host, port = routes.address()
    return Endpoint(host, port, cluster=routes.kind == "cluster")


def _check_target(profile: Profile, secrets: AnySecrets) -> None:
    """A target needs an admin for redis-benchmark's user; a deployed Cluster's nodes announce names the
    host cannot reach, which redis-benchmark (unlike the harness's clients) has no map for."""
    if profile.target is None:
        if profile.topology.cluster is not None:
            raise BadInput(
                f"bench: {profile.name}'s Cluster nodes announce their container names, which "
                "redis-benchmark --cluster cannot reach from the host; run `load "
                f"{profile.name} --scenario raw` for the harness's side, or bench a Cluster whose nodes "
                "announce addresses this host reaches (a target)"
            )
        return
    if secrets.admin is None:
        raise BadInput(
            f"target.admin: bench creates a temporary ACL user for redis-benchmark as the admin; name the "
            f"target's admin (user, password_env) in {profile.source.name}"
        )


def check_ready(profile: Profile, secrets: AnySecrets) -> str:
    """Everything that can refuse a benchmark, before anything is written; returns redis-benchmark's path."""
    _check_target(profile, secrets)
    load_run.require_deployment(profile, secrets)
    return _redis_benchmark()


def check_twin(profile: Profile, twin: Profile) -> None:
    """A plaintext deployment may stand beside a TLS one only when they differ in nothing but TLS and address."""
    if not profile.tls.enabled:
        raise BadInput(
            f"--plaintext: {profile.name} has security.tls off; give the TLS deployment as PROFILE "
            "and its plaintext twin to --plaintext"
        )
    if twin.tls.enabled:
        raise BadInput(f"--plaintext: {twin.name} has security.tls on; give a deployment with TLS off")
    if twin.name == profile.name:
        raise BadInput(f"--plaintext: {twin.name} is PROFILE itself; give another deployment of the same shape")
    for field in SHAPE:
        if getattr(twin, field) != getattr(profile, field):
            raise BadInput(
                f"--plaintext: {twin.name} differs from {profile.name} in {field}; the TLS cost compares "
                "deployments of the same shape (only security and network may differ)"
            )


@dataclass(frozen=True)
class Target:
    """One deployment (or target) bench measures, and where its harness runs go."""

    profile: Profile
    secrets: AnySecrets
    run_dir: Path
    endpoint: Endpoint


def measure(
    profile: Profile,
    secrets: AnySecrets,
    run_dir: Path,
    duration_s: float,
    plaintext: tuple[Profile, Secrets] | None = None,
) -> dict[str, Any]:
    """Both sides on `profile`; with `plaintext` (a TLS-off twin, check_twin), the same on it and the TLS cost.

    With a twin every run goes TLS then plaintext back to back (redis-benchmark -c 50 on both, then -c 1,
    then each harness run), so a change in what else the machine runs lands on both sides of a pair
    rather than on one whole half of the comparison."""
    binary = check_ready(profile, secrets)
    targets = [Target(profile, secrets, run_dir, bench_endpoint(profile, secrets))]
    if plaintext is not None:
        check_ready(*plaintext)
        targets.append(Target(*plaintext, run_dir / "plaintext", bench_endpoint(*plaintext)))
    started = time.time()
    benchmarks: list[dict[str, Any]] = [{} for _ in targets]
    with ExitStack() as users:
        bench_users = [users.enter_context(temporary_user(t.profile, t.secrets)) for t in targets]
        for shape, clients in (("closed_loop", CLOSED_LOOP_CLIENTS), ("one_connection", 1)):
            for target, user, figures in zip(targets, bench_users, benchmarks, strict=True):
                requests, tests = sized_redis_benchmark(binary, target, user, clients, duration_s)
                figures[shape] = _benchmark_figures(clients, requests, tests)
    harness: list[dict[str, Any]] = [{} for _ in targets]
    for key, users_n, workers in HARNESS_RUNS:
        for target, runs in zip(targets, harness, strict=True):
            sub_dir = target.run_dir / f"harness-{key.replace('_', '-')}"
            sub_dir.mkdir(parents=True, exist_ok=True)
            where = f" on {target.profile.name}" if len(targets) > 1 else ""
            progress.note(f"harness raw, {users_n} users, {workers or 1} process{'es' if workers else ''}{where}")
            report = run_harness(target.profile, target.secrets, sub_dir, users_n, workers, duration_s)
            runs[key] = _harness_figures(report, sub_dir, users_n, workers)
    version = _redis_benchmark_version(binary)
    results = [
        _result(t.profile, t.endpoint, rb, hs, duration_s, started, version)
        for t, rb, hs in zip(targets, benchmarks, harness, strict=True)
    ]
    result = results[0]
    if plaintext is not None:
        result["plaintext"] = results[1]
        result["tls_cost"] = tls_cost(result, results[1])
    return result


def _result(
    profile: Profile,
    endpoint: Endpoint,
    redis_benchmark: dict[str, Any],
    harness: dict[str, dict[str, Any]],
    duration_s: float,
    started: float,
    version: str,
) -> dict[str, Any]:
    # Each harness run against redis-benchmark with the same number of connections.
    ratios = {
        f"{key}_vs_redis_benchmark": ratio(
            figures["ops_s"], redis_benchmark["one_connection" if key == "one_connection" else "closed_loop"]["ops_s"]
        )
        for key, figures in harness.items()
    }
    ratios["one_connection_get_p50_vs_redis_benchmark"] = ratio(
        harness["one_connection"]["latency"].get("GET", {}).get("p50_us"),
        redis_benchmark["one_connection"]["tests"].get("GET", {}).get("p50_us"),
    )
    ratios["best_closed_loop_vs_redis_benchmark"] = max(
        (v for k, v in ratios.items() if k.startswith("closed_loop") and v is not None), default=None
    )
    return {
        "profile": profile.name,
        "endpoint": str(endpoint),
        "tls": _tls_label(profile),
        "lean_floor": LEAN_FLOOR,
        "mix": f"GET+SET 1:1, {KEYSPACE:,} keys, {VALUE_SIZE}-byte values",
        "duration_s": duration_s,
        "started": started,
        "redis_benchmark_version": version,
        "redis_benchmark": redis_benchmark,
        "harness": harness,
        "ratios": ratios,
    }


def _tls_label(profile: Profile) -> str | None:
    """How the clients spoke to the deployment: None plaintext, else TLS and whether they showed a certificate."""
    tls = profile.tls
    if not tls.enabled:
        return None
    return "TLS" if tls.client_auth == "none" else f"TLS, client certificate ({tls.client_auth})"


# The runs the TLS cost sets side by side: (label, side, shape).
COST_RUNS = (
    ("redis-benchmark -c 50", "redis_benchmark", "closed_loop"),
    ("harness raw, 50 users, 1 process", "harness", "closed_loop_1_process"),
    (f"harness raw, 50 users, {WORKERS} workers", "harness", f"closed_loop_{WORKERS}_workers"),
    ("redis-benchmark -c 1", "redis_benchmark", "one_connection"),
    ("harness raw, 1 user", "harness", "one_connection"),
)


def _get_latency(side: str, figures: dict[str, Any]) -> dict[str, Any]:
    return (figures["tests"] if side == "redis_benchmark" else figures["latency"]).get("GET", {})


def tls_cost(tls: dict[str, Any], plaintext: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per run: ops/s plaintext and over TLS, their ratio, and GET p50/p99 of each (µs)."""
    cost = {}
    for label, side, shape in COST_RUNS:
        over_tls, plain = tls[side][shape], plaintext[side][shape]
        get_tls, get_plain = _get_latency(side, over_tls), _get_latency(side, plain)
        cost[label] = {
            "plaintext_ops_s": plain["ops_s"],
            "tls_ops_s": over_tls["ops_s"],
            "tls_vs_plaintext": ratio(over_tls["ops_s"], plain["ops_s"]),
            **{
                f"get_{pct}_us": {"plaintext": get_plain.get(f"{pct}_us"), "tls": get_tls.get(f"{pct}_us")}
                for pct in ("p50", "p99")
            },
        }
    return cost


def cost_table(result: dict[str, Any], width: int = MAX_WIDTH) -> list[str]:
    """The TLS cost: each run's throughput and GET latency, plaintext beside TLS."""
    rows = [
        [
            label,
            f"{c['plaintext_ops_s']:,.0f}",
            f"{c['tls_ops_s']:,.0f}",
            _fmt_ratio(c["tls_vs_plaintext"]),
            *(_fmt_number(c[f"get_{pct}_us"][side]) for pct in ("p50", "p99") for side in ("plaintext", "tls")),
        ]
        for label, c in result["tls_cost"].items()
    ]
    header = ["run", "plain", "TLS", "TLS/plain", "plain", "TLS", "plain", "TLS"]
    groups = [Group("ops/s", 1, 2), Group("GET p50 µs", 4, 5), Group("GET p99 µs", 6, 7)]
    twin = result["plaintext"]
    return [
        *wrapped(
            f"TLS cost: {result['profile']} ({result['tls']}) against its plaintext twin {twin['profile']} "
            f"({twin['endpoint']}), same shape, each run beside its twin's:",
            "  ",
            width,
        ),
        *table(header, rows, groups=groups, width=width),
    ]


def floor_line(result: dict[str, Any], width: int = MAX_WIDTH) -> list[str]:
    """The best closed-loop harness / redis-benchmark ratio beside the lean user's floor (a figure, not a gate)."""
    best = result["ratios"].get("best_closed_loop_vs_redis_benchmark")
    if best is None:
        return []
    kept = "kept" if best >= LEAN_FLOOR else "below it"
    over = f" over {result['tls']}" if result.get("tls") else " in plaintext"
    return wrapped(
        f"best closed loop{over}: harness / redis-benchmark {best:.2f} "
        f"(the lean user's floor {LEAN_FLOOR:.2f}: {kept})",
        "  ",
        width,
    )


def format_table(result: dict[str, Any], width: int = MAX_WIDTH) -> str:
    rb, hs = result["redis_benchmark"], result["harness"]
    closed = rb["closed_loop"]["ops_s"]
    runs = [
        ("redis-benchmark -c 50", closed),
        ("harness raw, 50 users, 1 process", hs["closed_loop_1_process"]["ops_s"]),
        (f"harness raw, 50 users, {WORKERS} workers", hs[f"closed_loop_{WORKERS}_workers"]["ops_s"]),
    ]
    over = f", {result['tls']}" if result.get("tls") else ""
    lines = wrapped(
        f"bench {result['profile']} ({result['endpoint']}{over}): {result['mix']}, "
        f"{result['duration_s']:.0f} s per run",
        "  ",
        width,
    )
    closed_rows = [[label, f"{ops:,.0f}", _fmt_ratio(ratio(ops, closed))] for label, ops in runs]
    lines += [
        "",
        *table(["closed loop, 50 connections", "ops/s", "harness / redis-benchmark"], closed_rows, width=width),
        *floor_line(result, width),
    ]

    one_rb, one_hs = rb["one_connection"], hs["one_connection"]
    rb_latency, hs_latency = _latency_cells(one_rb["tests"]), _latency_cells(one_hs["latency"])
    ratios = [_fmt_ratio(ratio(h, r)) for h, r in zip(hs_latency, rb_latency, strict=True)]
    one_rows = [
        ["redis-benchmark -c 1", f"{one_rb['ops_s']:,.0f}", *map(_fmt_us, rb_latency)],
        ["harness raw, 1 user", f"{one_hs['ops_s']:,.0f}", *map(_fmt_us, hs_latency)],
        ["harness / redis-benchmark", _fmt_ratio(result["ratios"]["one_connection_vs_redis_benchmark"]), *ratios],
    ]
    latency_header = [f"{cmd} {pct}" for cmd in ("GET", "SET") for pct in ("p50", "p99")]
    lines += ["", *table(["one connection", "ops/s", *latency_header], one_rows, width=width)]
    runs = dict(hs)
    if "plaintext" in result:
        lines += ["", *cost_table(result, width)]
        twin = result["plaintext"]
        lines += floor_line(twin, width)
        runs.update({f"plaintext {key}": figures for key, figures in twin["harness"].items()})
    return "\n".join([*lines, "", *generator_table(runs, width)])


def generator_table(harness: dict[str, dict[str, Any]], width: int = MAX_WIDTH) -> list[str]:
    """Every generator process of every harness run: CPU in % of one core, and the share of the run it was
    busy (on a core or waiting for one) above 90 %, then the runs whose generator was saturated."""
    rows = [
        [key, process_label(p["role"]), *map(_fmt_percent, (p["cpu_p50"], p["cpu_max"], _percent_of(p)))]
        for key, figures in harness.items()
        for p in (figures.get("generator") or {}).get("processes", [])
    ]
    header = ["harness run", "process", "CPU p50", "CPU max", f"busy above {BUSY_PERCENT:.0f} %"]
    groups = [Group("share of the run", 4, 4)]
    lines = ["generator CPU, % of one core:", *table(header, rows, groups=groups, names=2, width=width)]
    busy = [key for key, figures in harness.items() if (figures.get("generator") or {}).get("saturated")]
    if busy:
        lines += wrapped(f"saturated generator in {', '.join(busy)}: {CONSEQUENCE} in those runs", "  ", width)
    return lines


def _percent_of(process: dict[str, Any]) -> float | None:
    share = process.get("cpu_over_90_share")
    return None if share is None else share * 100


def _latency_cells(latency: dict[str, dict[str, float]]) -> list[float | None]:
    """GET p50, GET p99, SET p50, SET p99 in µs."""
    return [latency.get(cmd, {}).get(pct) for cmd in ("GET", "SET") for pct in ("p50_us", "p99_us")]


def _fmt_number(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _fmt_us(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} µs"


def _fmt_percent(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} %"


def _fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
