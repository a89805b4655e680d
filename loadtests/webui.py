"""A "Redis" tab in Locust's web UI: live charts, each gate's state, the verdict and report of every test.

Uses the UI's own extension points (extended_tabs / extended_tables in the
template args, extended_stats in /stats/requests, Flask routes on
web_ui.app), as in Locust's extend_web_ui example. Locust's tabs hold tables
only, so the charts, gates and verdict come from a small script of ours
(/redis/tab.js, added to the UI's page) that draws them from /redis/live,
which serves numbers and the terminal's wording of each gate.

The UI outlives each test: after Stop (or the run time) the command judges
the test as it would headless, and the tab shows the verdict, every gate and
a link to that test's report.html, served from its run folder
(/redis/report/<folder>/report.html); New starts the next test in a folder
of its own. The start form's Host is the deployment's endpoint and read-only:
the users connect to the profile's endpoint, so another Host is refused
rather than silently ignored.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from flask import Response, abort, jsonify, request, send_from_directory
from locust.runners import STATE_INIT, STATE_STOPPED, MasterRunner
from locust.util.timespan import parse_timespan

from loadtests.harness import RunState, progress_figures
from redis_harness.deploy.connect import endpoint
from redis_harness.errors import HarnessError
from redis_harness.load.generator import summarize as summarize_cpu
from redis_harness.load.run import RUN_FILE
from redis_harness.load.sampler import with_rates
from redis_harness.load.session import ENDED, host_refusal, progress_text
from redis_harness.profile.model import Alerts
from redis_harness.profile.units import format_size
from redis_harness.report.analysis import split_parts
from redis_harness.report.gate_lines import GATE_FORMATS, comparison
from redis_harness.report.gates import GATES

TAB_KEY = "redis"
SERIES_POINTS = 300  # five minutes of once-a-second samples in the live charts
# Gates judged on figures that exist only once the run is over (survivors, the fault's
# outcome, the container's OOM flag): shown as "judged at the end" while it runs.
END_OF_RUN_GATES = frozenset(
    {"persistent_keys_survive", "acked_writes_kept", "recovery_window", "new_primary_elected", "evictions_seen",
     "oom_refusals_seen", "no_oom_kill"}
)  # fmt: skip
TAB_SCRIPT = Path(__file__).with_name("webui_tab.js")
# What /redis/report/<folder>/ serves of a test's folder; nothing else is reachable.
REPORT_FILES = frozenset({"report.html", "report.json", "gates.xml", "charts.png", "locust.html"})


def _since(run: RunState, t: float | None) -> float | None:
    """Seconds since the test started: the charts' time axis and the table's "at … s"."""
    return None if t is None or run.started is None else round(t - run.started, 1)


def server_ops(run: RunState) -> dict[str, float | None]:
    """Server ops/s in the last second and on average since the test started (INFO's commands processed)."""
    up = [r for r in (run.sampler.series if run.sampler else []) if r.get("up")]
    if len(up) < 2:
        return {"last": None, "mean": None, "at_s": None}
    last = with_rates(up[-2:])[-1]
    span = up[-1]["t"] - up[0]["t"]
    done = (up[-1].get("total_commands_processed") or 0) - (up[0].get("total_commands_processed") or 0)
    return {"last": last.get("ops_per_s"), "mean": done / span if span > 0 else None, "at_s": _since(run, up[-1]["t"])}


def live_rows(run: RunState) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    series = with_rates(run.sampler.series[-2:]) if run.sampler and run.sampler.series else []
    if series:
        last = series[-1]
        if not last.get("up"):
            rows.append({"metric": "server", "value": "NOT REACHABLE"})
        else:
            hit = last.get("hit_ratio")
            ops = server_ops(run)
            # The charts' "last second" and this row read the same sample when their "at … s" agree.
            if ops["last"] is not None:
                rows.append(
                    {"metric": f"ops/s (server, last second, at {ops['at_s']:.0f} s)", "value": f"{ops['last']:,.0f}"}
                )
            if ops["mean"] is not None:
                rows.append({"metric": "ops/s (server, mean since start)", "value": f"{ops['mean']:,.0f}"})
            rows += [
                {"metric": "hit ratio (server, last second)", "value": "-" if hit is None else f"{hit:.1%}"},
                {
                    "metric": "memory used / maxmemory",
                    "value": f"{format_size(last['used_memory'])} / {format_size(last['maxmemory'])} "
                    f"({last['used_memory'] / max(1, last['maxmemory']):.0%})",
                },
                {"metric": "evictions/s", "value": f"{last.get('evictions_per_s', 0):,.0f}"},
                {"metric": "evicted keys (total)", "value": f"{last.get('evicted_keys', 0):,}"},
                {"metric": "connected clients", "value": str(last.get("connected_clients"))},
            ]
            if last.get("container_memory") and last.get("container_memory_limit"):
                rows.append(
                    {
                        "metric": "container memory / limit",
                        "value": f"{format_size(last['container_memory'])} / "
                        f"{format_size(last['container_memory_limit'])}",
                    }
                )
    client_hit = run.total.hit_ratios().get("all")
    if client_hit is not None:
        rows.append({"metric": "hit ratio (client, whole run)", "value": f"{client_hit:.1%}"})
    requests, _ = split_parts(run.total.commands())  # a library call's parts are in report.html's cost table
    for name, summary in requests.items():
        rows.append(
            {
                "metric": f"{name}  p50 / p99 / max",
                "value": f"{summary['p50_us']:,} / {summary['p99_us']:,} / {summary['max_us']:,} µs"
                f"  ({summary['count']:,} calls, {summary['errors']:,} errors)",
            }
        )
    return rows


def _server_points(run: RunState) -> list[dict[str, Any]]:
    return with_rates(run.sampler.series[-SERIES_POINTS - 1 :]) if run.sampler and run.sampler.series else []


def _p99_points(run: RunState) -> list[dict[str, Any]]:
    """The worst p99 of any request in each latency point (µs), for the live p99 chart."""
    points = []
    for point in run.latency_series[-SERIES_POINTS:]:
        p99s = [v["p99_us"] for k, v in point.items() if k != "t" and not k.endswith("]")]
        if p99s:
            points.append({"t": point["t"], "s": _since(run, point["t"]), "p99_us": max(p99s)})
    return points


def _snapshot(run: RunState) -> dict[str, Any]:
    """The gates and thresholds this run is judged by (run.json, written before the test started)."""
    try:
        return json.loads((run.run_dir / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def live_report(run: RunState) -> dict[str, Any]:
    """The figures the gates read, as far as the run has got."""
    commands, _ = split_parts(run.total.commands())
    up = [r for r in _server_points(run) if r.get("up")]
    first, last = (up[0], up[-1]) if up else ({}, {})
    hits = (last.get("keyspace_hits") or 0) - (first.get("keyspace_hits") or 0)
    misses = (last.get("keyspace_misses") or 0) - (first.get("keyspace_misses") or 0)
    events = dict(run.total.events.values)
    return {
        "commands": commands,
        "hit_ratio": {"client": run.total.hit_ratios(), "server": hits / (hits + misses) if hits + misses else None},
        "server": {
            "used_memory_max": max((r.get("used_memory") or 0 for r in up), default=0),
            "maxmemory": last.get("maxmemory") or 0,
            "evictions_per_s_max": max((r.get("evictions_per_s", 0) for r in up), default=0),
            "evicted_keys": max(0, (last.get("evicted_keys") or 0) - (first.get("evicted_keys") or 0)),
            "oom_errors": events.get("oom_errors", 0),
            "oom_killed": False,
        },
        "client": {"events": events},
        "faults": [],
        "findings": {},
        "generator": {
            "processes": [summarize_cpu(role, samples) for role, samples in sorted(run.generator.items()) if samples]
        },  # fmt: skip
    }


def _gate(name: str, state: str, text: str, detail: str = "", look_at: str = "") -> dict[str, str]:
    return {"name": name, "state": state, "text": text, "detail": detail, "look_at": look_at}


def live_gates(run: RunState) -> list[dict[str, str]]:
    """Each of the scenario's gates on the figures so far, in the terminal's wording (`4.8 ms <= 100 ms`)."""
    snapshot = _snapshot(run)
    names, thresholds = snapshot.get("gates") or [], snapshot.get("thresholds")
    if not names or not thresholds:
        return []
    alerts = Alerts(**thresholds)
    report = live_report(run)
    states = []
    for name in names:
        if name in END_OF_RUN_GATES or name not in GATES:
            states.append(_gate(name, "at the end", "judged at the end"))
            continue
        if not report["commands"]:  # before the first call: nothing to judge yet (not "100 % errors")
            states.append(_gate(name, "no data yet", "no data yet"))
            continue
        try:
            gate = GATES[name](report, alerts)
        except (KeyError, ZeroDivisionError, TypeError):
            states.append(_gate(name, "no data yet", "no data yet"))
            continue
        shown = comparison(name, gate.as_dict())
        if gate.passed:
            states.append(_gate(name, "passing", shown, gate.detail))
        else:
            states.append(_gate(name, "failing", shown, gate.detail, GATE_FORMATS[name].look_at))
    return states


def report_url(folder: Path, name: str = "report.html") -> str:
    return f"/redis/report/{folder.name}/{name}"


def judged(folder: Path) -> dict[str, Any] | None:
    """A test's verdict once the command has judged it (report.html is the last file it writes)."""
    if not (folder / "report.html").is_file():
        return None
    try:
        report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    gates = [
        _gate(g["name"], "pass" if g["passed"] else "FAIL", comparison(g["name"], g), g.get("detail", ""),
              "" if g["passed"] else GATE_FORMATS[g["name"]].look_at)
        for g in report.get("gates", [])
    ]  # fmt: skip
    return {
        "passed": bool(report.get("passed")),
        "interrupted": bool(report.get("interrupted")),
        "duration_s": report.get("duration_s"),
        "throughput_ops_s": report.get("throughput_ops_s"),
        "gates": gates,
        "report_url": report_url(folder),
    }


def current_test(environment: Any, run: RunState) -> dict[str, Any]:
    """The latest test: how far it got (elapsed against the planned run time) and, once judged, its verdict."""
    if run.started is None:
        return {"number": 0, "state": "idle", "progress": "no test yet: Start runs test 1", "verdict": None}
    figures = progress_figures(environment, run)
    verdict = judged(run.run_dir) if run.saved else None
    state = figures["state"]
    if run.saved:
        state = "judged" if verdict else "judging"
    return {
        "number": run.tests,
        "name": run.run_dir.name,
        "state": state,
        "progress": progress_text({**figures, "state": ENDED} if run.saved else figures),
        "elapsed_s": figures["elapsed_s"],
        "planned_s": figures["planned_s"],
        "verdict": verdict,
    }


def session_tests(run: RunState) -> list[dict[str, Any]]:
    """Every test of the session with its verdict and report, once judged."""
    tests = []
    for number, folder in enumerate(run.runs, start=1):
        verdict = judged(folder)
        tests.append(
            {
                "number": number,
                "name": folder.name,
                "passed": None if verdict is None else verdict["passed"],
                "report_url": None if verdict is None else verdict["report_url"],
            }
        )
    return tests


def live(environment: Any, run: RunState) -> dict[str, Any]:
    """/redis/live: numbers only (seconds, ratios, bytes, µs), the gates in words, the test and its verdict."""
    points = _server_points(run)
    last = points[-1] if points else {}
    commands, _ = split_parts(run.total.commands())
    ops = server_ops(run)
    test = current_test(environment, run)
    return {
        "t": time.time(),
        "started": run.started,
        "host": deployment_host(run),
        "test": test,
        "tests": session_tests(run),
        "server": {
            "up": bool(last.get("up")),
            "ops_per_s": last.get("ops_per_s"),
            "ops_per_s_mean": ops["mean"],
            "at_s": ops["at_s"],
            "hit_ratio": last.get("hit_ratio"),
            "used_memory": last.get("used_memory"),
            "maxmemory": last.get("maxmemory"),
            "evictions_per_s": last.get("evictions_per_s"),
            "evicted_keys": last.get("evicted_keys"),
            "connected_clients": last.get("connected_clients"),
            "container_memory": last.get("container_memory"),
            "container_memory_limit": last.get("container_memory_limit"),
        },
        "client": {"hit_ratio": run.total.hit_ratios().get("all"), "commands": commands},
        "series": {
            "server": [
                {
                    "s": _since(run, r.get("t")),
                    **{
                        k: r.get(k)
                        for k in ("t", "up", "ops_per_s", "hit_ratio", "used_memory", "maxmemory", "evictions_per_s")
                    },
                }
                for r in points[1:]
            ],
            "p99": _p99_points(run),
        },
        # Once judged, the report's own gates; until then each gate on the figures so far.
        "gates": test["verdict"]["gates"] if test.get("verdict") else live_gates(run),
        "marks": [m for m in run.marks if isinstance(m, dict)][-50:],
    }


def deployment_host(run: RunState) -> str | None:
    """The endpoint the users connect to, as the start form's Host."""
    try:
        host, port = endpoint(run.profile)
    except HarnessError:
        return None
    return f"redis://{host}:{port}"


def workers_busy(environment: Any, run: RunState) -> str | None:
    """Why a new test cannot start yet with workers, or None: after a Stop each worker waits Locust's
    --stop-timeout before it takes another test, and Locust would say "Swarming started" and start none."""
    runner = environment.runner
    if not isinstance(runner, MasterRunner) or runner.state not in (STATE_INIT, STATE_STOPPED):
        return None
    if runner.clients.ready or runner.clients.running or runner.clients.spawning:
        return None
    if run.ended is None:
        return "No worker is connected yet; start again in a moment."
    left = run.ended + environment.stop_timeout + 2 - time.time()  # + the workers' own stop
    wait = f"in about {left:.0f} s" if left > 1 else "in a moment"
    return f"The workers are not ready yet (each waits --stop-timeout after a test); start again {wait}."


def install(environment: Any, run: RunState) -> None:
    web_ui = environment.web_ui
    environment.host = deployment_host(run) or environment.host
    web_ui.template_args["extended_tabs"] = [{"title": "Redis", "key": TAB_KEY}]
    web_ui.template_args["extended_tables"] = [
        {"key": TAB_KEY, "structure": [{"key": "metric", "title": "Metric"}, {"key": "value", "title": "Value"}]}
    ]

    @web_ui.app.before_request
    def check_start_form() -> Any:
        if request.path != "/swarm" or request.method != "POST":
            return None
        refusal = host_refusal(request.form.get("host"), deployment_host(run)) or workers_busy(environment, run)
        if refusal:
            return jsonify({"success": False, "message": refusal, "host": environment.host})
        # Locust keeps an old run time when the field is left empty (and then sets no timer):
        # the planned duration is what the form says now.
        try:
            seconds = parse_timespan(request.form["run_time"]) if request.form.get("run_time") else None
        except ValueError:
            return None  # Locust's own handler refuses it with its message
        environment.parsed_options.run_time = seconds
        if request.form.get("user_count", "").isdigit():
            # Open-loop pacing divides --rate among all users: the form's count, not the command line's
            # (Locust hands its parsed options to the workers with each spawn).
            environment.parsed_options.redis_users = int(request.form["user_count"])
        if run.started is not None and run.ended is None:  # a running test's new settings restart its timer
            run.planned_end = time.time() + seconds if seconds else None
        return None

    @web_ui.app.after_request
    def add_redis_stats(response: Any) -> Any:
        if request.path != "/stats/requests" or not response.is_json:
            return response
        payload = response.get_json()
        payload["extended_stats"] = [{"key": TAB_KEY, "data": live_rows(run)}]
        response.set_data(json.dumps(payload))
        return response

    @web_ui.app.after_request
    def add_tab_script(response: Any) -> Any:
        if request.path != "/" or response.mimetype != "text/html":
            return response
        page = response.get_data(as_text=True)
        response.set_data(page.replace("</body>", '<script src="/redis/tab.js" defer></script></body>', 1))
        return response

    @web_ui.app.route("/redis/live")
    def redis_live() -> Any:
        return live(environment, run)

    @web_ui.app.route("/redis/report/<folder>/<name>")
    def redis_report(folder: str, name: str) -> Any:
        # Only this session's test folders, only the report's own files: no path reaches anything else.
        match = next((f for f in run.runs if f.name == folder), None)
        if match is None or name not in REPORT_FILES or not (match / name).is_file():
            abort(404)
        return send_from_directory(match.resolve(), name)

    @web_ui.app.route("/redis/tab.js")
    def redis_tab_script() -> Any:
        return Response(TAB_SCRIPT.read_text(encoding="utf-8"), mimetype="text/javascript")
