"""`redis-harness load PROFILE --scenario NAME`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from redis_harness.cli.common import add_command, add_profile_argument, require_owned
from redis_harness.cli.progress import shown
from redis_harness.load import run as load_run
from redis_harness.load.scenarios import SCENARIOS, get_scenario
from redis_harness.profile.credentials import secrets_for
from redis_harness.profile.model import load_profile
from redis_harness.profile.units import parse_duration
from redis_harness.report.analysis import build
from redis_harness.report.text import summary
from redis_harness.terminal import view_width


def register(sub: Any) -> None:
    pad = max(len(name) for name in SCENARIOS) + 2
    scenarios = "\n".join(f"  {name:<{pad}}{s.description}" for name, s in SCENARIOS.items())
    p = add_command(
        sub,
        "load",
        "run a Locust scenario against a deployment and judge it by the profile's gates",
        [
            "redis-harness load dev --scenario smoke",
            "redis-harness load ci --scenario eviction --report reports/eviction",
            "redis-harness load dev --scenario cache-latency --web   # the Locust web UI on 127.0.0.1:8089",
            "redis-harness load dev --scenario recovery --fault pause",
            "redis-harness load dev --scenario raw --master --expect-workers 2 --master-bind-host 0.0.0.0",
        ],
        "Exit 0 when every gate passed, 1 when one failed, 2 on bad input, 130/143 when Ctrl-C/SIGTERM "
        "cut the run short. The run's folder (reports/<time>-<profile>-<scenario>/) holds report.html, "
        "report.json and gates.xml. With --web, each test started in the UI gets its own folder "
        "(<folder>-2, -3 ...); Ctrl-C between tests ends the session with the last test's verdict.",
    )
    p.description += "\n\nscenarios:\n" + scenarios
    add_profile_argument(p)
    p.add_argument("--scenario", required=True, metavar="NAME", help=f"one of {', '.join(SCENARIOS)}")
    p.add_argument("--users", type=int, help="simulated users (default: the scenario's)")
    p.add_argument("--spawn-rate", type=float, help="users started per second (default: all at once)")
    p.add_argument("--duration", help="run time, e.g. 60s or 2m (default: the scenario's)")
    p.add_argument(
        "--rate",
        type=float,
        help="open loop: Redis commands per second (the server's ops/s) in all users and workers; 0 = closed loop "
        "(default: the scenario's: closed loop; with a rate, latency from each call's intended start is reported)",
    )
    p.add_argument("--workers", type=int, default=0, help="Locust worker processes on this host (distributed mode)")
    p.add_argument("--report", metavar="DIR", help="run folder (default reports/<time>-<profile>-<scenario>)")
    p.add_argument(
        "--fault", choices=load_run.FAULTS, help="recovery: the fault (kill); failover: how the primary goes (pause)"
    )
    p.add_argument("--web", action="store_true", help="the Locust web UI on 127.0.0.1 instead of headless")
    p.add_argument(
        "--web-port", type=int, default=load_run.WEB_PORT, help=f"port of the web UI (default {load_run.WEB_PORT})"
    )
    p.add_argument(
        "--autostart", action="store_true", help="with --web: start the first test at once (it runs --duration)"
    )
    p.add_argument("--verbose", action="store_true", help="show Locust's own output")
    p.add_argument(
        "--master", action="store_true", help="be the master of workers started with `redis-harness worker` elsewhere"
    )
    p.add_argument("--expect-workers", type=int, default=0, metavar="N", help="with --master: workers to wait for")
    p.add_argument(
        "--master-bind-host",
        default="127.0.0.1",
        metavar="H",
        help="with --master: address the workers connect to (default 127.0.0.1; 0.0.0.0 for other machines)",
    )
    p.add_argument(
        "--master-port",
        type=int,
        default=load_run.MASTER_PORT,
        metavar="P",
        help=f"with --master: port (default {load_run.MASTER_PORT})",
    )
    p.set_defaults(func=run)


def options_from(args: argparse.Namespace) -> load_run.LoadOptions:
    return load_run.LoadOptions(
        users=args.users,
        spawn_rate=args.spawn_rate,
        duration_s=parse_duration("--duration", args.duration) if args.duration else None,
        rate=args.rate,
        workers=args.workers,
        report_dir=Path(args.report) if args.report else None,
        fault=args.fault,
        web=args.web,
        web_port=args.web_port,
        autostart=args.autostart,
        verbose=args.verbose,
        master=args.master,
        expect_workers=args.expect_workers,
        master_bind_host=args.master_bind_host,
        master_port=args.master_port,
    )


def run(args: argparse.Namespace) -> int:
    """Exit as the last test says: 0 passed, 1 failed, 128 + the signal when it was cut short.

    A web session runs as many tests as the user starts; each is judged and summed up here
    as it ends (its verdict and report.html also show in the UI), and Ctrl-C or SIGTERM
    between tests ends the session with the last test's verdict."""
    scenario = get_scenario(args.scenario)
    options = options_from(args)
    profile = load_profile(args.profile)
    secrets = secrets_for(profile)
    load_run.check_options(profile, scenario, options)  # bad input is told first, whoever owns it
    require_owned(profile, "load")
    verdicts: list[bool] = []

    def judge(finished: load_run.Run) -> None:
        report = build(finished.run_dir)
        print(summary(report, finished.run_dir, view_width()), flush=True)
        if finished.exit_code is not None:
            print(f"interrupted ({report.get('interrupted_by', 'signal')}): the report covers the run up to the stop")
        verdicts.append(report["passed"])

    with shown("load"):
        last = load_run.run(profile, secrets, scenario, options, on_finished=judge)
    if last.exit_code is not None:
        return last.exit_code
    return 0 if verdicts and verdicts[-1] else 1  # no test judged: nothing passed
