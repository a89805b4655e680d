"""`redis-harness compare RUN_A RUN_B [--summary FILE] [--json]`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from redis_harness.cli.common import add_command
from redis_harness.errors import BadInput
from redis_harness.report.compare import compare, markdown, read_report, refuse_unlike_scenarios, text
from redis_harness.terminal import view_width


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "compare",
        "show what changed between two load runs: throughput, percentiles, hit ratio and gates",
        [
            "redis-harness compare reports/20261125-183047-dev-smoke reports/20261126-090112-dev-smoke",
            'redis-harness compare base/ head/ --summary "$GITHUB_STEP_SUMMARY"',
        ],
        "Reads each run's report.json (and run.json). Lists first every setting the runs differ in (load model, "
        "users, workers, duration, thresholds, ...). Exit code 1 when a gate that passed in RUN_A fails in RUN_B "
        "(a regression), 2 when the runs are of different scenarios (unless --force), else 0. --summary appends "
        "the comparison as Markdown, for a CI job summary.",
    )
    p.add_argument("run_a", metavar="RUN_A", help="the earlier (baseline) run folder")
    p.add_argument("run_b", metavar="RUN_B", help="the later run folder, compared with RUN_A")
    p.add_argument("--summary", metavar="FILE", help="append the comparison as Markdown to FILE")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.add_argument("--force", action="store_true", help="compare runs of different scenarios all the same")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = compare(read_report(Path(args.run_a)), read_report(Path(args.run_b)))
    if not args.force:
        refuse_unlike_scenarios(result)
    if args.summary:
        target = Path(args.summary)
        if target.is_dir():
            raise BadInput(f"--summary: {target} is a folder; give a file to append the Markdown to")
        try:
            with target.open("a", encoding="utf-8") as handle:
                handle.write(markdown(result))
        except OSError as exc:
            raise BadInput(f"--summary: cannot write {target} ({exc.strerror}); give a writable file") from None
    print(json.dumps(result, indent=2) if args.json else text(result, width=view_width()))
    return 1 if result["regressed"] else 0
