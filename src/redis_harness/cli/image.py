"""`redis-harness image build`."""

from __future__ import annotations

import argparse
import time
from typing import Any

from redis_harness.cli.common import add_command
from redis_harness.cli.progress import shown
from redis_harness.deploy import image
from redis_harness.profile.model import DEFAULT_IMAGE


def register(sub: Any) -> None:
    p = add_command(sub, "image", "the Redis image of the deployments", ["redis-harness image build --if-missing"])
    image_sub = p.add_subparsers(dest="image_command", required=True, metavar="{build}", help="what to do with it")
    b = add_command(
        image_sub,
        "build",
        "build the offline Redis image from Debian's packages (no registry needed)",
        ["redis-harness image build", "redis-harness image build --if-missing"],
        "mmdebstrap makes a minimal Debian root with redis-server, docker import turns it into a base "
        "image, and a short Dockerfile adds the data folder owned by the redis user.",
    )
    b.add_argument("--tag", default=DEFAULT_IMAGE, help=f"the tag to build (default {DEFAULT_IMAGE})")
    b.add_argument("--suite", default=image.DEFAULT_SUITE, help="the Debian suite to take redis-server from")
    b.add_argument("--if-missing", action="store_true", help="do nothing when the tag is already present")
    b.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    if args.if_missing and image.is_present(args.tag):
        return 0
    started = time.monotonic()
    with shown("image build"):
        image_id = image.build_offline(args.tag, suite=args.suite)
    print(f"built {args.tag} ({image_id[:19]}) from Debian {args.suite} in {time.monotonic() - started:.0f} s")
    return 0
