"""`redis-harness image build|build-harness|check`."""

from __future__ import annotations

import argparse
import time
from typing import Any

from redis_harness.cli.common import add_command
from redis_harness.cli.progress import shown
from redis_harness.deploy import image, image_check
from redis_harness.profile.model import DEFAULT_IMAGE


def register(sub: Any) -> None:
    p = add_command(sub, "image", "the Redis image of the deployments", ["redis-harness image build --if-missing"])
    image_sub = p.add_subparsers(
        dest="image_command", required=True, metavar="{build,build-harness,check}", help="what to do with it"
    )
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
    h = add_command(
        image_sub,
        "build-harness",
        "build the harness's own image (the load pods of render --load-image) without a registry",
        ["redis-harness image build-harness", "redis-harness image build-harness --tag redis-harness/harness:dev"],
        "mmdebstrap makes a minimal Debian root with Python, pip builds this package and its dependencies "
        "as wheels on this host, and image/harness/Dockerfile installs them with --no-index: no registry "
        "and no PyPI inside the build. Push the tag to your registry (or `kind load docker-image` it) and "
        "give it to `render --load-image`.",
    )
    h.add_argument("--tag", default=image.HARNESS_IMAGE, help=f"the tag to build (default {image.HARNESS_IMAGE})")
    h.add_argument("--suite", default=image.DEFAULT_SUITE, help="the Debian suite to take Python from")
    h.set_defaults(func=run_build_harness)
    c = add_command(
        image_sub,
        "check",
        "list the image's packages that have newer versions in the Debian update archives",
        ["redis-harness image check", "redis-harness image check --tag redis:7.2.5-bookworm"],
        "Reads the installed packages with dpkg inside a throw-away container and compares them with "
        "SUITE-security and SUITE-updates from this machine's own mirrors. Exit 1 when a security update "
        "is pending (rebuild with `redis-harness image build`), 0 otherwise.",
    )
    c.add_argument("--tag", default=DEFAULT_IMAGE, help=f"the image to check (default {DEFAULT_IMAGE})")
    c.add_argument(
        "--suite",
        default=None,
        help=f"the Debian suite to compare with (default: the one recorded in the image, else {image.DEFAULT_SUITE})",
    )
    c.set_defaults(func=run_check)


def run_build(args: argparse.Namespace) -> int:
    if args.if_missing and image.is_present(args.tag):
        return 0
    started = time.monotonic()
    with shown("image build"):
        image_id = image.build_offline(args.tag, suite=args.suite)
    print(f"built {args.tag} ({image_id[:19]}) from Debian {args.suite} in {time.monotonic() - started:.0f} s")
    return 0


def run_build_harness(args: argparse.Namespace) -> int:
    started = time.monotonic()
    with shown("image build-harness"):
        image_id = image.build_harness(args.tag, suite=args.suite)
    print(f"built {args.tag} ({image_id[:19]}) from Debian {args.suite} in {time.monotonic() - started:.0f} s")
    return 0


def run_check(args: argparse.Namespace) -> int:
    with shown(f"image check {args.tag}"):
        suite = args.suite or image.built_suite(args.tag)
        pending = image_check.pending_updates(args.tag, suite)
    for p in pending:
        print(f"{p.package:32} {p.installed:28} -> {p.available:28} {p.archive}")
    security = [p for p in pending if p.security]
    print(
        f"{args.tag}: {len(security)} security update(s) and {len(pending) - len(security)} other update(s) "
        f"pending in Debian {suite}" + ("; rebuild with `redis-harness image build`" if pending else "")
    )
    return 1 if security else 0
