"""Locust plumbing shared by every scenario: the Redis user, µs histograms, the INFO sampler.

Locust's own idioms only: a small client that times each call and fires
`events.request`; behaviour added through event hooks (init, test_start,
test_stop, report_to_master / worker_report, quitting); no runner subclasses.

Settings reach every process (master, workers) through the environment, set
by `redis-harness load`: REDIS_HARNESS_PROFILE (path), REDIS_HARNESS_SCENARIO,
REDIS_HARNESS_RUN_DIR, REDIS_HARNESS_RATE (total ops/s, open loop), and the
secrets the profile needs.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import inspect
import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import redis
from locust import User, events
from locust.html import get_html_report
from locust.runners import STATE_CLEANUP, STATE_STOPPING, WORKER_REPORT_INTERVAL, MasterRunner, WorkerRunner
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV
from redis.backoff import NoBackoff
from redis.retry import Retry

from redis_harness.client.connection import make_redis
from redis_harness.deploy.connect import endpoint, settings_for
from redis_harness.deploy.tls_client import tls_kwargs
from redis_harness.load.generator import CpuSampler
from redis_harness.load.generator import summarize as summarize_cpu
from redis_harness.load.recorder import Recorder, split_part
from redis_harness.load.run import RAW_FILE, RUN_FILE
from redis_harness.load.sampler import ServerSampler
from redis_harness.load.sent import SentCommands
from redis_harness.load.session import ENDED, PROGRESS_FILE, RUNNING, STOPPING, nth_run_folder, recent_rate
from redis_harness.profile.credentials import AnySecrets, TargetSecrets, secrets_for
from redis_harness.profile.model import Profile, load_profile

SAMPLE_INTERVAL_S = 1.0
# Short timeouts: a paused or vanished server shows up as errors within a second.
CALL_TIMEOUT_S = 1.0


class RunState:
    """What this process knows about the session and its current test; one per process.

    A session is one test headless, or as many as the web UI starts: test 1 runs in
    REDIS_HARNESS_RUN_DIR, test n in its sibling `<folder>-<n>` (load.session); each
    test starts from empty figures (begin)."""

    def __init__(self) -> None:
        self.profile: Profile = load_profile(os.environ["REDIS_HARNESS_PROFILE"])
        self.secrets: AnySecrets = secrets_for(self.profile)
        self.scenario = os.environ.get("REDIS_HARNESS_SCENARIO", "adhoc")
        self.first_dir = Path(os.environ.get("REDIS_HARNESS_RUN_DIR", "."))
        self.run_dir = self.first_dir
        self.progress_file = Path(os.environ.get("REDIS_HARNESS_PROGRESS_FILE") or self.first_dir / PROGRESS_FILE)
        self.rate = float(os.environ.get("REDIS_HARNESS_RATE", "0") or 0)
        self.session_id = os.environ.get("REDIS_HARNESS_RUN_ID", str(int(time.time())))
        self.run_id = self.session_id
        self.runs: list[Path] = []  # master/local: this session's test folders, in order
        self.tests = 0  # tests begun in this process (workers count their own)
        self.left_out: list[str] = []  # a target's workloads whose service it names no user for
        self._reset()

    def _reset(self) -> None:
        """Empty figures for a new test."""
        self.recorder = Recorder()  # this process, since its last report
        self.total = Recorder()  # master/local: the whole test
        self.interval = Recorder()  # master/local: since the last latency-series point
        self.latency_series: list[dict[str, Any]] = []
        self.requests = 0  # master/local: requests so far (parts of library calls not counted)
        self.sampler: ServerSampler | None = None
        self.faults: list[dict[str, Any]] = []
        self.marks: list[dict[str, Any]] = []  # scenario phases, breaker changes, faults: for the timeline
        self.marked_once: set[str] = set()
        self.extra: dict[str, Any] = {}  # scenario findings (eviction counts …)
        self.started: float | None = None
        self.ended: float | None = None
        self.planned_end: float | None = None  # when the run time stops the test; None: at Stop
        self.saved = False  # raw.json written for this test
        self.workers = 0  # worker processes connected when the test started
        # Generator CPU (% of one core, once a second): this process's samples since its
        # last report, and (master/local) every process's samples by role.
        self.cpu: CpuSampler | None = None
        self.cpu_greenlet: gevent.Greenlet | None = None
        self.cpu_samples: list[tuple[float, float]] = []  # (cpu %, busy %)
        self.generator: dict[str, list[tuple[float, float]]] = {}

    def begin(self, run_dir: Path | None) -> None:
        """A new test: empty figures, and (master/local) its own folder and key prefix."""
        self._reset()
        self.tests += 1
        if run_dir is None:  # a worker: its keys must not meet the last test's
            self.run_id = f"{self.session_id}-{self.tests}" if self.tests > 1 else self.session_id
            return
        self.run_dir = run_dir
        self.run_id = run_dir.name
        self.runs.append(run_dir)

    @property
    def planned_s(self) -> float | None:
        if self.started is None or self.planned_end is None:
            return None
        return round(self.planned_end - self.started, 1)

    def absorb(self, data: dict[str, Any]) -> None:
        """Figures from a worker report (or this process's own ticker) into the run totals; none once
        the test is saved, so the web UI goes on showing its report's figures."""
        if self.saved:
            return
        self.total.merge(data)
        self.interval.merge(data)

    def mark(self, label: str, kind: str = "phase") -> None:
        """A labelled moment on the report's timeline; kind is phase, breaker or fault."""
        self.marks.append({"t": time.time(), "label": label, "kind": kind})

    def mark_once(self, label: str, kind: str = "phase") -> None:
        """A mark the first time any user of this process reaches it (a phase many users enter)."""
        if label not in self.marked_once:  # not self.marks: a worker empties those with each report
            self.marked_once.add(label)
            self.mark(label, kind)

    def add_marks(self, marks: list[dict[str, Any]]) -> None:
        """A worker's marks into the run's; a phase reached in several processes keeps its first time."""
        for mark in marks:
            same = next((m for m in self.marks if m["label"] == mark["label"] and m.get("kind") == "phase"), None)
            if same is None or mark.get("kind") != "phase":
                self.marks.append(mark)
            elif mark["t"] < same["t"]:
                same["t"] = mark["t"]
        self.marks.sort(key=lambda m: m["t"])


STATE: RunState | None = None


def state() -> RunState:
    global STATE
    if STATE is None:
        STATE = RunState()
    return STATE


def redis_client(acl_user: str | None) -> redis.Redis:
    """One connection per simulated user, retries off: an outage must show as errors."""
    run = state()
    secrets = run.secrets
    acl_user, password = secrets.login(acl_user)  # a target's service may log in as another ACL user
    if run.profile.target is None and run.profile.topology.sentinel is None and run.profile.topology.cluster is None:
        host, port = endpoint(run.profile)
        client = redis.Redis(
            host=host,
            port=port,
            username=acl_user,
            password=password,
            socket_connect_timeout=CALL_TIMEOUT_S,
            socket_timeout=CALL_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),
            decode_responses=False,
            **tls_kwargs(run.profile, acl_user),
        )
        # One connection per user, made but not opened: redis-py's single_connection_client
        # connects (and authenticates) in the constructor, where a refused connection or a
        # wrong password would stop the user from spawning and silently drop its workload.
        # Opened by the first call instead, its failures are that call's errors.
        client.connection = client.connection_pool.make_connection()
        return client
    # Sentinel: the current primary, found again after a failover; Cluster: every
    # shard, found from the slot map. Both through the one client factory, retries off.
    settings = settings_for(
        run.profile,
        acl_user,
        password,
        sentinel_password=secrets.sentinel_password,
        connect_timeout_s=CALL_TIMEOUT_S,
        socket_timeout_s=CALL_TIMEOUT_S,
        retries=0,
        health_check_interval_s=0,
    )
    return make_redis(settings)


class Pacer:
    """Open loop: when each Redis operation of one simulated user is meant to start.

    `--rate` is Redis operations per second across all users and workers, so
    each user issues rate / users operations per second, whatever its tasks
    look like (a task with two commands waits twice; a pipeline of n waits n
    slots). Latency is then measured from the intended start, so a stall is not
    hidden by the generator waiting (coordinated omission). Without a rate it
    does nothing (closed loop: next call when the last one returns).

    A call that waits for its slot records how late its user woke after it
    (Recorder.late): gevent's timer wakes about half a millisecond late (p50
    on the 2-core host), and any stall of the event loop or of the process
    shows there, so the report can say what the generator added to the
    latency from the intended start.
    """

    # Far behind (after a fault): start afresh rather than burst to catch up.
    MAX_LAG_S = 5.0

    def __init__(self, rate: float, environment: Any, recorder: Recorder) -> None:
        self.interval = 0.0
        self._next: float | None = None
        self._late = recorder.record_late
        options = environment.parsed_options
        # From the master's options where present: a remote worker knows neither the total
        # users nor the rate from its own command line.
        rate = float(getattr(options, "redis_rate", 0) or rate or 0)
        if rate > 0:
            users = getattr(options, "redis_users", 0) or getattr(options, "num_users", 1) or 1
            self.interval = max(1, int(users)) / rate

    def wait(self, ops: int = 1) -> float | None:
        """Sleep until the next operation's intended start and return it (perf_counter); None in closed loop."""
        if not self.interval:
            return None
        now = time.perf_counter()
        if self._next is None:
            # Users spread over one interval, so they do not all send at the same instant.
            self._next = now + random.random() * self.interval
        elif self._next < now - self.MAX_LAG_S:
            self._next = now
        intended = self._next
        self._next = intended + self.interval * ops
        if intended > now:
            gevent.sleep(intended - now)
            self._late((time.perf_counter() - intended) * 1e6)
        return intended

    def advance(self, ops: int) -> None:
        """Count `ops` more operations against the schedule (a call that turned out to make several)."""
        if self.interval and self._next is not None and ops > 0:
            self._next += self.interval * ops


def report_request(name: str, response_ms: float, exception: Exception | None = None) -> None:
    """One Redis call into Locust's statistics (its UI, CSV, locust.html), as request type `redis`."""
    events.request.fire(
        request_type="redis", name=name, response_time=response_ms, response_length=0, exception=exception, context={}
    )


class RedisUser(User):
    """A simulated client on redis-py: times each call in µs, fires Locust request events.

    Closed loop by default; open loop with a rate (see Pacer). Scenarios that
    need Cluster/Sentinel routing or the resilient client use this user; plain
    high-rate calls use loadtests.lean.LeanRedisUser.
    """

    abstract = True
    acl_user: str | None = None  # None: the `default` user

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.state = state()
        self.redis = redis_client(self.acl_user)
        self.sent = SentCommands(self.redis)
        self._connected_once = False
        connection = getattr(self.redis, "connection", None)  # single-connection clients only
        if connection is not None:
            connection.register_connect_callback(self._on_connect)
        self.last_error: Exception | None = None  # of the latest call(), for callers that branch on it
        self.pacer = Pacer(self.state.rate, environment, self.state.recorder)

    def _on_connect(self, connection: Any) -> None:
        if self._connected_once:
            self.state.recorder.events.add("reconnects")
            report_request("reconnect", 0.0)
        self._connected_once = True

    def wait_time(self) -> float:
        return 0.0  # pacing is per operation, in call()

    def call(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one Redis call (a command, a pipeline, a lock's); errors are recorded and returned as None."""
        intended = self.pacer.wait()
        sent = self.sent.count
        start = time.perf_counter()
        exception: Exception | None = None
        result = None
        try:
            result = fn(*args, **kwargs)
        except redis.RedisError as exc:
            exception = exc
        end = time.perf_counter()
        # --rate: a call that sent several commands (a pipeline, a transaction) takes their slots too.
        self.pacer.advance(self.sent.count - sent - 1)
        self.last_error = exception
        service_us = (end - start) * 1e6
        intended_us = (end - intended) * 1e6 if intended is not None else None
        self.state.recorder.record(name, service_us, exception is None, intended_us)
        if isinstance(exception, redis.exceptions.OutOfMemoryError):
            self.state.recorder.events.add("oom_errors")
        report_request(name, service_us / 1000.0, exception)
        return result if exception is None else None

    def cache_read(self, name: str, datatype: str, fn: Callable[..., Any], *args: Any) -> Any:
        """A read that may miss: a miss is counted as a miss, not a failure."""
        value = self.call(name, fn, *args)
        if self.last_error is None:
            self.state.recorder.cache_read(datatype, value is not None and value != {})
        return value

    def on_stop(self) -> None:
        self.redis.close()


# ----------------------------------------------------------------------------- event hooks


def _is_worker(environment: Any) -> bool:
    return isinstance(environment.runner, WorkerRunner)


def _is_master(environment: Any) -> bool:
    return isinstance(environment.runner, MasterRunner)


@events.init_command_line_parser.add_listener
def _on_parser(parser: Any) -> None:
    # Set by `redis-harness load`; Locust passes them on to every worker, remote ones included. Not in
    # the web UI's form: the users come from its own user count, the rate is the session's --rate.
    parser.add_argument("--redis-users", type=int, default=0, include_in_web_ui=False,
                        help="redis-harness: users in all (open-loop pacing)")  # fmt: skip
    parser.add_argument("--redis-rate", type=float, default=0.0, include_in_web_ui=False,
                        help="redis-harness: Redis operations/s in all")  # fmt: skip


def workload_service(user_class: type) -> str | None:
    """The service a workload logs in as (its ACL user; None: the `default` user)."""
    return getattr(user_class, "acl_user", None)


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    run = state()
    if isinstance(run.secrets, TargetSecrets):
        # A target names the services it has users for; the workloads of the others are left out.
        services = {s.user for s in run.secrets.services}
        kept = [c for c in environment.user_classes if workload_service(c) in services]
        left_out = sorted(c.__name__ for c in environment.user_classes if c not in kept)
        if left_out:
            run.left_out = left_out
        if kept:
            environment.user_classes = kept
    if environment.web_ui is not None:
        from loadtests import webui  # only the web UI needs Flask routes

        webui.install(environment, run)


@events.report_to_master.add_listener
def _on_report_to_master(client_id: str, data: dict[str, Any], **_: Any) -> None:
    run = state()
    data["redis_harness"] = run.recorder.export()
    data["redis_harness_cpu"], run.cpu_samples = run.cpu_samples, []
    # A worker's marks (its users' phases, its breakers) go to the master, which keeps the timeline.
    data["redis_harness_marks"], run.marks = run.marks, []


@events.worker_report.add_listener
def _on_worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
    run = state()
    if "redis_harness" in data:
        run.absorb(data["redis_harness"])
    if data.get("redis_harness_cpu"):
        run.generator.setdefault(f"worker {client_id}", []).extend(data["redis_harness_cpu"])
    if data.get("redis_harness_marks"):
        run.add_marks(data["redis_harness_marks"])


def _role(environment: Any) -> str:
    return "master" if _is_master(environment) else "worker" if _is_worker(environment) else "local"


def _cpu_sampler(environment: Any) -> None:
    """Every process: its own CPU once a second (workers ship theirs with each report)."""
    run = state()
    run.cpu = run.cpu or CpuSampler()
    while True:
        gevent.sleep(SAMPLE_INTERVAL_S)
        _store_cpu(environment, run, run.cpu.sample())


def _store_cpu(environment: Any, run: RunState, value: tuple[float, float]) -> None:
    if _is_worker(environment):
        run.cpu_samples.append(value)
    else:
        run.generator.setdefault(_role(environment), []).append(value)


def _latency_point(run: RunState) -> None:
    """p50/p99 per request since the last point; read off tallies, as this runs in the users' event loop."""
    commands = run.interval.latency_point()
    run.interval = Recorder()
    run.requests += sum(c["count"] for name, c in commands.items() if split_part(name)[1] is None)
    if commands:
        run.latency_series.append({"t": time.time(), **commands})


PROGRESS_WINDOW = 5  # arrivals of the request count: ops/s between the first and the last (load.session)
# No growth of the request count for this long is a stall (a tick locally, a report from each worker).
QUIET_AFTER_S = {"local": SAMPLE_INTERVAL_S + 0.5, "master": WORKER_REPORT_INTERVAL + 1.5}
# After Stop in the web UI, before the test is saved: one tick locally, the workers' last
# report (every 3 s) with a master.
FINISH_DELAY_S = {"local": 1.0, "master": WORKER_REPORT_INTERVAL + 0.5}


def write_json(path: Path, data: Any) -> None:
    """Whole or not at all: the command and the web UI read these files while they change."""
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(json.dumps(data, default=str))
    scratch.replace(path)


def phase_of(environment: Any, run: RunState) -> str:
    """running, stopping (Stop pressed or run time up, users finishing) or ended."""
    if run.ended is not None:
        return ENDED
    return STOPPING if environment.runner.state in (STATE_STOPPING, STATE_CLEANUP) else RUNNING


def progress_figures(environment: Any, run: RunState) -> dict[str, Any]:
    """Which test, where, and how far: elapsed against the planned run time (load.session reads them)."""
    state_now = phase_of(environment, run)
    until = run.ended if run.ended is not None else time.time()
    return {
        "test": run.tests,
        "run_dir": str(run.run_dir),
        "runs": [str(folder) for folder in run.runs],
        "state": state_now,
        "started": run.started,
        "elapsed_s": round(until - (run.started or until), 1),
        "planned_s": run.planned_s,
    }


def _write_progress(environment: Any, run: RunState, history: list[tuple[float, int]]) -> None:
    """Live figures for the command's progress line: elapsed, ops/s, errors, p99 (µs) of the latest second.
    `history` keeps the times the request count grew (a tick locally, a worker's report with a master)."""
    now = time.time()
    if not history or run.requests != history[-1][1]:
        history.append((now, run.requests))
        del history[:-PROGRESS_WINDOW]
    latest = run.latency_series[-1] if run.latency_series else {}
    p99 = max((v["p99_us"] for k, v in latest.items() if k != "t"), default=None)
    figures = {
        **progress_figures(environment, run),
        "ops_s": round(recent_rate(history, now, QUIET_AFTER_S["master" if _is_master(environment) else "local"]), 1),
        "errors": sum(run.total.errors.values.values()),
        "p99_us": p99,
    }
    with contextlib.suppress(OSError):  # progress is a nicety; the run's data are what matter
        write_json(run.progress_file, figures)


def _ticker(environment: Any) -> None:
    """Master/local: once a second, take this process's own figures, a latency point, a server sample
    and the progress figures."""
    run = state()
    history: list[tuple[float, int]] = []
    while True:
        if not _is_master(environment):
            run.absorb(run.recorder.export())
        _latency_point(run)
        if run.sampler is not None:
            run.sampler.sample()
        _write_progress(environment, run, history)
        gevent.sleep(SAMPLE_INTERVAL_S)


def _write_snapshot(environment: Any, run: RunState) -> None:
    """A web test's run.json: the session's (thresholds and gates frozen when the command started)
    with this test's own settings from the start form."""
    template = run.extra.get("snapshot_template")
    if template is None:
        template = json.loads((run.first_dir / RUN_FILE).read_text(encoding="utf-8"))
    options = environment.parsed_options
    snapshot = {**template, "test": run.tests}
    snapshot["options"] = {
        **template.get("options", {}),
        "users": getattr(options, "num_users", None),
        "duration_s": run.planned_s,
        "user_classes": sorted(c.__name__ for c in environment.user_classes),
    }
    run.run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run.run_dir / RUN_FILE, snapshot)
    run.extra["snapshot_template"] = template


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    run = state()
    # Two pauses of the whole process, paid now, before any user starts, instead of mid-run, where every
    # call due meanwhile waited them out. Locust's runner.stop() logs its caller through inspect.stack(),
    # whose first call looks up the path of every loaded module (~35 ms here): made once now, the stop
    # costs a tenth of a millisecond.
    inspect.stack()
    # Python's full garbage collections walked every object Locust, redis-py and the harness loaded
    # (45-50 ms each, a few per run): frozen now, they walk only what the run itself keeps.
    gc.collect()
    gc.freeze()
    if _is_worker(environment):
        run.begin(None)
    else:
        if run.started is not None and not run.saved:
            _finish(environment, run)  # New and Start within the finish delay
        template = run.extra.get("snapshot_template")
        run.begin(nth_run_folder(run.first_dir, len(run.runs) + 1))
        run.started = time.time()
        run_time = getattr(environment.parsed_options, "run_time", None)
        run.planned_end = run.started + run_time if run_time else None
        if environment.web_ui is not None:
            run.extra["snapshot_template"] = template
            _write_snapshot(environment, run)
        run.workers = environment.runner.worker_count if _is_master(environment) else 0
        run.sampler = ServerSampler(run.profile, run.secrets)
        run.extra.setdefault("greenlets", []).append(gevent.spawn(_ticker, environment))
    run.cpu_greenlet = gevent.spawn(_cpu_sampler, environment)


@events.test_stop.add_listener
def _on_test_stop(environment: Any, **_: Any) -> None:
    run = state()
    # Sampling stops with the users (an idle process afterwards would dilute its busy
    # share), after one last sample so even a short run has one.
    if run.cpu_greenlet is not None and run.cpu is not None:
        _store_cpu(environment, run, run.cpu.sample())
        run.cpu_greenlet.kill(block=False)
        run.cpu_greenlet = None
    if _is_worker(environment):
        return
    run.ended = time.time()
    if environment.web_ui is not None:
        # The web UI stays up: the test is saved for its report, and New may start the next one.
        gevent.spawn_later(FINISH_DELAY_S[_role(environment)], _finish_after_stop, environment, run.tests)


def _finish_after_stop(environment: Any, number: int) -> None:
    run = state()
    if run.tests == number and not run.saved:
        _finish(environment, run)


@events.quitting.add_listener
def _on_quitting(environment: Any, **_: Any) -> None:
    if _is_worker(environment):
        return
    run = state()
    if run.saved or (environment.web_ui is not None and run.started is None):
        return  # the last test is saved already, or the web UI never started one
    _finish(environment, run)


def _finish(environment: Any, run: RunState) -> None:
    """The test's last figures, and everything its report needs into its folder."""
    for greenlet in run.extra.pop("greenlets", []):
        greenlet.kill(block=False)
    if not _is_master(environment):
        run.absorb(run.recorder.export())
    _latency_point(run)
    if run.sampler is not None:
        run.sampler.sample()
        run.sampler.close()
    run.ended = run.ended or time.time()
    if environment.web_ui is not None:
        write_locust_files(environment, run)
    save_raw(environment, run)
    # Saved: a call or a worker's report that comes later (a user finishing its task on a loaded
    # host) is absorbed no more (RunState.absorb).
    run.saved = True
    with contextlib.suppress(OSError):
        write_json(run.progress_file, progress_figures(environment, run))


def write_locust_files(environment: Any, run: RunState) -> None:
    """Locust's own report and CSVs of this test alone (its CSV writer covers the whole session)."""
    (run.run_dir / "locust.html").write_text(get_html_report(environment, show_download_link=False), encoding="utf-8")
    this_test = StatsCSV(environment, PERCENTILES_TO_REPORT)
    for name, write in (("locust_stats.csv", this_test.requests_csv), ("locust_failures.csv", this_test.failures_csv)):
        with (run.run_dir / name).open("w", newline="", encoding="utf-8") as handle:
            write(csv.writer(handle))
    prefix = getattr(environment.parsed_options, "csv_prefix", None)
    session = getattr(environment.web_ui, "stats_csv_writer", None)
    if not prefix or not hasattr(session, "stats_history_flush"):
        return
    session.stats_history_flush()
    started = int(run.started or 0)
    with open(f"{prefix}_stats_history.csv", newline="", encoding="utf-8") as source:
        rows = list(csv.reader(source))
    # Locust's totals start again at each test: only this test's rows make its client series.
    kept = rows[:1] + [row for row in rows[1:] if row and row[0].isdigit() and int(row[0]) >= started]
    with (run.run_dir / "locust_stats_history.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(kept)


def save_raw(environment: Any, run: RunState) -> Path:
    """Everything the report needs, so `redis-harness report DIR` can re-render it later."""
    stats = environment.stats.total
    run.total.build_histograms()  # raw.json keeps HdrHistograms: compact, and what `report` reads
    counters = run.total.export()
    run.total.merge(counters)  # export empties it; the web UI goes on showing the ended test's figures
    settings = {
        "users": getattr(environment.parsed_options, "num_users", None),
        "spawn_rate": getattr(environment.parsed_options, "spawn_rate", None),
        "rate": run.rate,
        "workers": run.workers,
    }
    if environment.web_ui is not None:  # the start form's class picker may have left some out
        settings["user_classes"] = ", ".join(sorted(c.__name__ for c in environment.user_classes))
    raw = {
        "scenario": run.scenario,
        "profile": str(run.profile.source),
        "profile_name": run.profile.name,
        "started": run.started,
        # Compared with when a Ctrl-C or SIGTERM came: a test still running then was cut short by it.
        "ended": run.ended or time.time(),
        "settings": settings,
        "recorder": counters,
        "latency_series": run.latency_series,
        "server_series": run.sampler.series if run.sampler else [],
        "faults": run.faults,
        "marks": run.marks,
        "findings": {k: v for k, v in run.extra.items() if k not in ("greenlets", "snapshot_template")}
        | ({"workloads_left_out": run.left_out} if run.left_out else {}),
        "generator": {"processes": [summarize_cpu(role, samples) for role, samples in sorted(run.generator.items())]},
        "locust": {"num_requests": stats.num_requests, "num_failures": stats.num_failures},
    }
    run.run_dir.mkdir(parents=True, exist_ok=True)
    path = run.run_dir / RAW_FILE
    write_json(path, raw)
    return path
