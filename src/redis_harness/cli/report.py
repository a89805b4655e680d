"""`redis-harness report DIR`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from redis_harness.cli.common import add_command
from redis_harness.report.analysis import build
from redis_harness.report.text import summary


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "report",
        "re-render a load run's report from its folder, judged by the thresholds it ran with",
        ["redis-harness report reports/20261125-183047-dev-smoke"],
        "Reads only the run's folder (run.json, raw.json, post.json); editing the profile later changes no verdict.",
    )
    p.add_argument("dir", metavar="DIR", help="a run folder made by `redis-harness load`")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    run_dir = Path(args.dir)
    report = build(run_dir)
    print(summary(report, run_dir))
    return 0 if report["passed"] else 1
