"""`redis-harness report DIR`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from redis_harness.cli.common import add_command
from redis_harness.errors import BadInput
from redis_harness.report.analysis import build
from redis_harness.report.text import summary
from redis_harness.terminal import view_width


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
    try:
        report = build(run_dir)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        # read_run checked the files are JSON objects with the run's keys; what is inside them can
        # still be damaged (a field of the wrong type, a gate this version does not know).
        what = f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
        raise BadInput(
            f"report: {run_dir}'s data are damaged ({what[:120]}); run the load again, or restore the folder"
        ) from None
    except OSError as exc:
        raise BadInput(
            f"report: cannot write the report into {run_dir} ({exc.strerror or exc}); make the folder writable "
            "or copy it somewhere writable and run the report there"
        ) from None
    print(summary(report, run_dir, view_width()))
    return 0 if report["passed"] else 1
