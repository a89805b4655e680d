"""`redis-harness`: a Redis deployment as code, proven in real containers.

One module per command; each parses its arguments, calls the pipeline's
functions and turns the outcome into an exit code: 0 success, 1 a failed
check or operation, 2 bad input or a missing prerequisite.
"""

from __future__ import annotations

import argparse
import sys

from redis_harness import __version__
from redis_harness.cli import (
    backup,
    bench,
    cert,
    compare,
    down,
    env,
    fault,
    image,
    load,
    monitor,
    plan,
    profile,
    render,
    report,
    restore,
    rollback,
    status,
    up,
    verify,
    worker,
)
from redis_harness.cli.common import HelpFormatter, Parser
from redis_harness.cli.failures import handle

COMMANDS = (
    render,
    up,
    plan,
    down,
    rollback,
    cert,
    status,
    monitor,
    verify,
    load,
    worker,
    report,
    compare,
    bench,
    fault,
    backup,
    restore,
    image,
    env,
    profile,
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="redis-harness",
        description="A Redis deployment as code: render, provision, verify and load-test it in real containers.",
        epilog=(
            "examples:\n  redis-harness up dev\n  redis-harness verify dev\n"
            "  redis-harness load dev --scenario smoke\n\n"
            "`redis-harness COMMAND --help` tells more about each command."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"redis-harness {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `redis-harness status dev | head -1`
        sys.stderr.close()
        return 0
    except Exception as exc:  # the net: one line and an exit code, never a traceback (cli/failures.py)
        return handle(exc)
