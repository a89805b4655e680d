"""A load run: a Locust scenario against a running deployment, its data saved into a self-contained folder.

Locust runs as its own process (headless, or its web UI on 127.0.0.1), with
`workers` for its distributed mode (a master and N worker processes). The
folder holds everything the report needs and nothing it would have to look up
later: run.json (the scenario, its gates and the profile's thresholds as they
were when the run started), raw.json (written by the Locust side) and
post.json (facts read after the run), so a report re-rendered later judges
the run by the thresholds it ran with.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from redis_harness import paths, progress
from redis_harness.deploy import lock
from redis_harness.deploy.connect import connect
from redis_harness.deploy.containers import data_containers
from redis_harness.errors import BadInput, HarnessError
from redis_harness.load.alerts import firing_during
from redis_harness.load.calibrate import calibrate
from redis_harness.load.process import Finished, run_locust
from redis_harness.load.scenarios import Scenario
from redis_harness.load.session import ENDED, PROGRESS_FILE, progress_text, read_progress
from redis_harness.origin.store import OriginStore
from redis_harness.profile.credentials import AnySecrets, Secrets, TargetSecrets
from redis_harness.profile.model import Profile

REPORTS_DIR = paths.ROOT / "reports"
WEB_PORT = 8089
MASTER_PORT = 5557  # Locust's own default
# A master waits this long for its workers to connect before giving up.
EXPECT_WORKERS_MAX_WAIT_S = 120
# Users get this long to finish on_stop: the sequence writers wait for a failed-over
# deployment to settle (up to 40 s) before counting what was lost.
STOP_TIMEOUT_S = 60
RUN_FILE, RAW_FILE, POST_FILE, LOG_FILE = "run.json", "raw.json", "post.json", "locust.log"
FAULTS = ("kill", "restart", "pause", "disconnect", "partition")
# What a Redis the harness did not deploy is never put through: a fault needs the harness's own containers,
# and eviction writes past maxmemory, evicting whatever else the target holds.
TARGET_REFUSED = {
    "recovery": "injects a fault, which needs the harness's own deployment",
    "failover": "kills a primary, which needs the harness's own deployment",
    "eviction": "writes past maxmemory and would evict the target's own data",
}


class Interrupted(HarnessError):
    """Ctrl-C or SIGTERM before the run had any data to report: exit 128 + the signal."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


@dataclass(frozen=True)
class LoadOptions:
    """How to run a scenario; None means the scenario's own default."""

    users: int | None = None
    spawn_rate: float | None = None
    duration_s: float | None = None
    rate: float | None = None  # open loop: operations per second in all; 0 = closed loop; None = the scenario's
    workers: int = 0
    report_dir: Path | None = None
    fault: str | None = None
    web: bool = False
    web_port: int = WEB_PORT
    autostart: bool = False
    verbose: bool = False
    # Locust's distributed mode across machines: this process is the master and waits
    # for `expect_workers` `redis-harness worker` processes to connect.
    master: bool = False
    expect_workers: int = 0
    master_bind_host: str = "127.0.0.1"
    master_port: int = MASTER_PORT


@dataclass(frozen=True)
class Run:
    """A finished run: its folder holds run.json, raw.json and post.json."""

    run_dir: Path
    scenario: Scenario
    interrupted_by: int | None = None  # the signal that cut the run short (its report is still written)

    @property
    def exit_code(self) -> int | None:
        """128 + the signal (130 Ctrl-C, 143 SIGTERM) for an interrupted run, else None (the gates decide)."""
        return None if self.interrupted_by is None else 128 + self.interrupted_by


OnFinished = Callable[[Run], None]


def check_options(profile: Profile, scenario: Scenario, options: LoadOptions) -> None:
    """Everything that can refuse a run, before anything is written."""
    if profile.target is not None and (scenario.name in TARGET_REFUSED or options.fault):
        why = TARGET_REFUSED.get(scenario.name, "injects a fault, which needs the harness's own deployment")
        flag = "--fault" if scenario.name not in TARGET_REFUSED else "--scenario"
        raise BadInput(
            f"{flag}: '{profile.name}' is a target, a Redis the harness did not deploy, and {scenario.name} "
            f"{why}; use smoke, raw or cache-latency"
        )
    if scenario.name == "failover" and profile.topology.sentinel is None and profile.topology.cluster is None:
        raise BadInput(
            f"--scenario: failover needs a Sentinel or Cluster deployment; {profile.name} is "
            f"{profile.topology.kind} (try profiles ha or cluster)"
        )
    if options.fault == "partition" and scenario.name != "failover":
        raise BadInput("--fault: partition is a failover fault; use it with --scenario failover")
    if options.users is not None and options.users < 1:
        raise BadInput(f"--users: {options.users} simulated users; give 1 or more")
    if options.duration_s is not None and options.duration_s < 1:
        raise BadInput(
            f"--duration: {options.duration_s:g} s is too short; give at least 1s (Locust counts whole seconds)"
        )
    if options.rate is not None and options.rate < 0:
        raise BadInput(f"--rate: {options.rate:g} ops/s is negative; give a positive rate, or 0 for closed loop")
    if options.spawn_rate is not None and options.spawn_rate <= 0:
        raise BadInput(f"--spawn-rate: {options.spawn_rate:g} users/s; give a positive rate")
    if options.workers < 0:
        raise BadInput(f"--workers: {options.workers} is negative; give 0 (one process) or more")
    if options.master and options.expect_workers < 1:
        raise BadInput("--expect-workers: a --master run needs 1 or more workers to wait for")
    if options.expect_workers and not options.master:
        raise BadInput("--expect-workers: only with --master")
    if options.master and options.workers:
        raise BadInput("--workers: local worker processes and --master are exclusive; start `redis-harness worker`s")
    if not 0 < options.master_port < 65536:
        raise BadInput(f"--master-port: {options.master_port} is not a TCP port")
    if options.report_dir is not None and any(
        (options.report_dir / name).exists() for name in (RUN_FILE, RAW_FILE, "report.json")
    ):
        raise BadInput(f"--report: {options.report_dir} already holds a run; give a new folder")


def target_client(profile: Profile, secrets: TargetSecrets, *, timeout_s: float = 2.0) -> redis.Redis:
    """A text-mode client of a target: as its admin when the admin's password is given, else as its first
    service user."""
    user, password = secrets.login(secrets.admin.user if secrets.admin else secrets.services[0].user)
    return connect(profile, user, password, timeout_s=timeout_s, sentinel_password=secrets.sentinel_password)


def require_deployment(profile: Profile, secrets: AnySecrets) -> None:
    """BadInput (exit 2) naming the fix when the deployment does not answer an authenticated PING."""
    if isinstance(secrets, TargetSecrets):
        assert profile.target is not None
        try:
            client = target_client(profile, secrets)
            client.ping()
            client.close()
        except redis.RedisError as exc:
            raise BadInput(f"target: {profile.target.where} does not answer an authenticated PING ({exc})") from None
        return
    try:
        client = connect(profile, "admin", secrets.admin.password, sentinel_password=secrets.default.password)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        host, port = profile.network.host, profile.network.port
        raise BadInput(
            f"deployment: {profile.project} not reachable at {host}:{port} ({exc}); "
            f"run `redis-harness up {paths.profile_argument(profile.name, profile.source)}`"
        ) from None


def remove_keys(client: redis.Redis, keys: Sequence[str], batch: int = 1000) -> int:
    """UNLINK `keys` (freed in the background), `batch` at a time; how many existed."""
    removed = 0
    for start in range(0, len(keys), batch):
        removed += int(client.unlink(*keys[start : start + batch]))
    return removed


def remove_scratch_keys(profile: Profile, secrets: AnySecrets, keys: Sequence[str]) -> dict[str, Any]:
    """A run's scratch keys removed as admin (a target: as the service whose prefix they are under); what
    happened, for post.json (a failure is noted, not raised: the run's figures still count)."""
    if not keys:
        return {}
    progress.note(f"removing the run's {len(keys):,} scratch keys")
    try:
        if isinstance(secrets, TargetSecrets):
            user, password = secrets.login(keys[0].split(":", 1)[0])
            client = connect(profile, user, password, sentinel_password=secrets.sentinel_password)
        else:
            client = connect(profile, "admin", secrets.admin.password, sentinel_password=secrets.default.password)
        try:
            return {"scratch_keys_removed": remove_keys(client, keys)}
        finally:
            client.close()
    except redis.RedisError as exc:
        return {"scratch_keys_error": f"{type(exc).__name__}: {exc}"}


def _child_env(profile: Profile, secrets: AnySecrets, scenario: str, run_dir: Path, rate: float) -> dict[str, str]:
    env = dict(os.environ)
    users = (secrets.default, secrets.admin) if isinstance(secrets, Secrets) else (secrets.admin,)
    for user in (*users, *secrets.services):
        if user is not None:
            env[user.env] = user.password
    if isinstance(secrets, TargetSecrets) and profile.target and profile.target.sentinel_password_env:
        env[profile.target.sentinel_password_env] = secrets.sentinel_password or ""
    env.update(
        {
            "REDIS_HARNESS_PROFILE": str(profile.source.resolve()),
            "REDIS_HARNESS_SCENARIO": scenario,
            "REDIS_HARNESS_RUN_DIR": str(run_dir),
            "REDIS_HARNESS_RUN_ID": run_dir.name,
            "REDIS_HARNESS_RATE": str(rate or 0),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(paths.ROOT), env.get("PYTHONPATH")])),
        }
    )
    return env


def _container_facts(profile: Profile) -> dict[str, Any]:
    """OOM kills and restarts of every data node (docker inspect); unknown (None) on a target, whose host
    the harness does not see."""
    if profile.target is not None:
        return {"oom_killed": None, "restart_count": None}
    containers = data_containers(profile)
    if not containers:
        return {"oom_killed": None, "restart_count": None}
    return {
        "oom_killed": any(c.attrs["State"].get("OOMKilled", False) for c in containers),
        "restart_count": sum(c.attrs.get("RestartCount", 0) for c in containers),
    }


def _note_progress(progress_file: Path, web_url: str | None) -> None:
    """The Locust side's live figures (once a second) as a progress note (under 100 columns)."""
    live = read_progress(progress_file)
    if not live:
        if web_url:
            progress.note(f"web UI at {web_url}: press Start (Ctrl-C ends the session)")
        return
    test = f"test {live['test']}: " if web_url and live.get("test") else ""
    where = progress_text(live)
    if live.get("state") == ENDED:
        progress.note(f"{test}{where}" + ("; New: another test; Ctrl-C: end" if web_url else ""))
        return
    if where.startswith("stopping"):
        progress.note(f"{test}{where}")
        return
    p99 = live.get("p99_us")
    progress.note(
        f"{test}{where}, {live.get('ops_s', 0):,.0f} ops/s, {live.get('errors', 0):,} errors, "
        f"p99 {'-' if p99 is None else f'{p99:,.0f} µs'}"
    )


def _add_to_raw(run_dir: Path, figures: dict[str, Any]) -> None:
    """Figures measured by this process (not by Locust) into the run's raw.json."""
    path = run_dir / RAW_FILE
    raw = json.loads(path.read_text())
    raw.update(figures)
    path.write_text(json.dumps(raw, default=str))


def run_folder(profile: Profile, scenario: Scenario, options: LoadOptions) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return options.report_dir or REPORTS_DIR / f"{stamp}-{profile.name}-{scenario.name}"


def snapshot(
    profile: Profile,
    scenario: Scenario,
    options: LoadOptions,
    users: int,
    duration_s: float,
    rate: float = 0.0,
    server_figures: bool = True,
) -> dict:
    """What judges this run, frozen at its start: editing the profile later changes no verdict.
    `server_figures` False: no INFO was read (a target without admin credentials), so the gates
    that need it are not judged."""
    return {
        "scenario": scenario.name,
        "gates": list(scenario.gates),
        "profile": profile.name,
        "profile_source": str(profile.source),
        "thresholds": profile.alerts.model_dump(),
        "topology": profile.topology.kind,
        "maxmemory": None if profile.target else profile.memory.maxmemory_bytes,
        "memory_limit": None if profile.target else profile.resources.memory_bytes,
        # A target (a Redis the harness did not deploy): where, and whether its admin's INFO was read.
        "target": profile.target.where if profile.target else None,
        "server_figures": server_figures,
        # Where the load came from: `compare` says when two runs had different generators.
        "generator": {"host": platform.node(), "cpus": os.cpu_count()},
        "options": {
            "users": users,
            "duration_s": duration_s,
            "rate": rate,
            "workers": options.workers,
            "expect_workers": options.expect_workers,
            "fault": options.fault,
        },
    }


class _Tests:
    """The tests of one session as they finish: post-run facts into each folder, then `on_finished`."""

    def __init__(
        self,
        profile: Profile,
        secrets: AnySecrets,
        scenario: Scenario,
        first: Path,
        calibration: Any,
        on_finished: OnFinished | None,
    ) -> None:
        self.profile = profile
        self.secrets = secrets
        self.scenario = scenario
        self.first = first
        self.calibration = calibration
        self.on_finished = on_finished
        self.done: list[Run] = []
        self.restarts_before = _container_facts(profile)["restart_count"] or 0

    def folders(self, progress_file: Path) -> list[Path]:
        """Every test folder of the session so far, in order (the Locust side lists them)."""
        listed = [Path(f) for f in read_progress(progress_file).get("runs", [])]
        return listed or [self.first]

    def collect(
        self, progress_file: Path, locust: Finished | None = None, window: tuple[float, float] | None = None
    ) -> None:
        """Finish every test whose data the Locust side has saved since the last call.

        A test still running when the signal came (it ended at or after it) was cut short by
        it; one that had ended before (its Stop or its run time) is whole."""
        finished = {r.run_dir for r in self.done}
        for folder in self.folders(progress_file):
            if folder in finished or not (folder / RAW_FILE).is_file():
                continue
            raw = json.loads((folder / RAW_FILE).read_text())
            interrupted_by = None
            if locust is not None and (raw.get("ended") or time.time()) >= (locust.interrupted_at or time.time()):
                interrupted_by = locust.interrupted_by
            self.done.append(self._finish(folder, raw, interrupted_by, window))
            if self.on_finished is not None:
                self.on_finished(self.done[-1])

    def _finish(
        self, folder: Path, raw: dict[str, Any], interrupted_by: int | None, window: tuple[float, float] | None
    ) -> Run:
        figures: dict[str, Any] = {"calibration": self.calibration, "interrupted": interrupted_by is not None}
        if interrupted_by is not None:
            figures["interrupted_by"] = signal.Signals(interrupted_by).name
        _add_to_raw(folder, figures)
        facts = _container_facts(self.profile)
        facts["restarts_during_run"] = (facts["restart_count"] or 0) - self.restarts_before
        self.restarts_before = facts["restart_count"] or 0
        # The scenario's own keys (raw's, no TTL) go with the test, so the deployment is left as it was.
        facts.update(remove_scratch_keys(self.profile, self.secrets, self.scenario.scratch_keys))
        if self.profile.monitoring.enabled and self.profile.target is None:
            started, ended = window or (raw.get("started") or time.time(), raw.get("ended") or time.time())
            facts["prometheus_alerts"] = firing_during(self.profile, started, ended)
        (folder / POST_FILE).write_text(json.dumps(facts))
        return Run(run_dir=folder, scenario=self.scenario, interrupted_by=interrupted_by)


def locust_command(
    scenario: Scenario, options: LoadOptions, users: int, spawn_rate: float, duration: float, rate: float,
    run_dir: Path, scratch: Path,
) -> list[str]:  # fmt: skip
    """Locust's command line: headless for one test, or its web UI for a session of tests."""
    cmd = [sys.executable, "-m", "locust", "-f", scenario.locustfile, "--users", str(users),
           "--spawn-rate", str(spawn_rate), "--stop-timeout", str(STOP_TIMEOUT_S), "--loglevel", "WARNING",
           "--run-time", f"{round(duration)}s"]  # fmt: skip
    # The total users and rate, for the open-loop pacing of every worker, local or remote
    # (Locust sends its parsed custom options to workers with each spawn message).
    cmd += ["--redis-users", str(users), "--redis-rate", str(rate)]
    if options.workers:
        cmd += ["--processes", str(options.workers)]
    if options.master:
        bind = (options.master_bind_host, str(options.master_port))
        cmd += ["--master", "--expect-workers", str(options.expect_workers),
                "--expect-workers-max-wait", str(EXPECT_WORKERS_MAX_WAIT_S),
                "--master-bind-host", bind[0], "--master-bind-port", bind[1]]  # fmt: skip
    if options.web:
        # --run-time fills the start form's Run time (the user may change or clear it); the UI stays
        # up after each test (its own Stop or run time) for the verdict and the next test. Locust's
        # CSVs cover the whole session: the Locust side copies each test's share into its folder.
        cmd += ["--web-host", "127.0.0.1", "--web-port", str(options.web_port), "--class-picker",
                "--csv", str(scratch / "locust")]  # fmt: skip
        if options.autostart:
            cmd += ["--autostart"]
    else:
        cmd += [
            "--headless",
            "--only-summary",
            "--csv",
            str(run_dir / "locust"),
            "--html",
            str(run_dir / "locust.html"),
        ]
    return cmd


def run(
    profile: Profile,
    secrets: AnySecrets,
    scenario: Scenario,
    options: LoadOptions,
    on_finished: OnFinished | None = None,
) -> Run:
    """Run `scenario` against the deployment; return the last test once Locust has ended.

    Headless that is the one test. With the web UI, a session: each test (Start ... Stop,
    New, Start ...) is finished as it ends and handed to `on_finished`, while the UI stays
    up; the session ends with Ctrl-C or SIGTERM. `on_finished` sees every test, headless too.
    """
    check_options(profile, scenario, options)
    # Set-up waits for an `up`, `rollback` or fault in progress on the deployment to finish.
    with lock.held(profile, f"load {scenario.name} (set-up)"):
        require_deployment(profile, secrets)
    users = options.users if options.users is not None else scenario.users
    spawn_rate = options.spawn_rate if options.spawn_rate is not None else max(users, scenario.spawn_rate)
    duration = options.duration_s if options.duration_s is not None else scenario.duration_s
    rate = options.rate if options.rate is not None else scenario.rate
    run_dir = run_folder(profile, scenario, options)
    run_dir.mkdir(parents=True, exist_ok=True)
    server_figures = not isinstance(secrets, TargetSecrets) or secrets.admin is not None
    frozen = snapshot(profile, scenario, options, users, duration, rate, server_figures)
    (run_dir / RUN_FILE).write_text(json.dumps(frozen, indent=2))
    progress.note("calibrating: one connection, PING and GET at a low rate")
    tests = _Tests(profile, secrets, scenario, run_dir, calibrate(profile, secrets), on_finished)
    with tempfile.TemporaryDirectory(prefix="redis-harness-load-") as scratch:
        cmd = locust_command(scenario, options, users, spawn_rate, duration, rate, run_dir, Path(scratch))
        if options.master:
            progress.note(f"waiting for {options.expect_workers} workers on {options.master_bind_host}:"
                          f"{options.master_port}")  # fmt: skip
        web_url = f"http://127.0.0.1:{options.web_port}" if options.web else None
        if web_url:
            print(f"Locust web UI: {web_url}  (each test is judged as it ends; Ctrl-C ends)")
        env = _child_env(profile, secrets, scenario.name, run_dir, rate)
        progress_file = Path(scratch) / PROGRESS_FILE
        env["REDIS_HARNESS_PROGRESS_FILE"] = str(progress_file)
        # One seeded origin database per session, made before any Locust process opens it.
        origin_path = run_dir / "origin.sqlite"
        OriginStore.open_seeded(origin_path).close()
        env["REDIS_HARNESS_ORIGIN"] = str(origin_path)
        if options.fault:
            env["REDIS_HARNESS_FAULT"] = options.fault
        timeout = None if options.web else duration + 180
        started = time.time()
        if options.master:
            timeout = timeout + EXPECT_WORKERS_MAX_WAIT_S if timeout else None
        log_path = None if options.verbose else run_dir / LOG_FILE
        progress.note(f"{scenario.name}: starting Locust ({users} users)")

        def tick() -> None:
            _note_progress(progress_file, web_url)
            if options.web:  # each test as it ends, while the UI shows it and the next one may start
                tests.collect(progress_file)

        finished = run_locust(cmd, env, log_path, timeout, on_tick=tick)
        # Headless: the prometheus window is the whole command's; web tests use their own.
        tests.collect(progress_file, finished, None if options.web else (started, time.time()))
    if not tests.done:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-5:] if log_path else []
        if finished.interrupted_by is not None:
            when = "before any test ran" if options.web else "before Locust saved any data"
            raise Interrupted(finished.interrupted_by, f"load: interrupted {when}")
        raise HarnessError("load: the run saved no data; locust said: " + " | ".join(tail))
    return tests.done[-1]


def run_worker(profile: Profile, secrets: AnySecrets, master_host: str, master_port: int, verbose: bool = False) -> int:
    """A Locust worker for a master on another host: the scenario and settings come from the master.

    The locustfile itself is fetched from the master (`-f -`); the profile and
    secrets are this host's own (its environment or .env). Returns Locust's exit code.
    """
    require_deployment(profile, secrets)
    with tempfile.TemporaryDirectory(prefix="redis-harness-worker-") as scratch:
        work_dir = Path(scratch)
        env = _child_env(profile, secrets, "worker", work_dir, 0)
        origin_path = work_dir / "origin.sqlite"
        OriginStore.open_seeded(origin_path).close()
        env["REDIS_HARNESS_ORIGIN"] = str(origin_path)
        # Locust saves the locustfile it fetches from the master under the temp folder by the
        # master's file name: two workers on one host would write and import the same file.
        env["TMPDIR"] = scratch
        cmd = [sys.executable, "-m", "locust", "-f", "-", "--worker", "--master-host", master_host,
               "--master-port", str(master_port), "--loglevel", "WARNING"]  # fmt: skip
        progress.note(f"worker: connecting to the master at {master_host}:{master_port}")
        finished = run_locust(cmd, env, None if verbose else work_dir / LOG_FILE, None)
        if finished.interrupted_by is not None:
            return 128 + finished.interrupted_by
        if finished.returncode != 0 and not verbose:
            tail = (work_dir / LOG_FILE).read_text(errors="replace").strip().splitlines()[-5:]
            raise HarnessError(f"worker: locust exited {finished.returncode}: " + " | ".join(tail))
        return finished.returncode
