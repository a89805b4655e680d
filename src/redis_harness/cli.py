"""`redis-harness`: render, up, down, status, image build."""

from __future__ import annotations

import argparse
import json
import sys
import time

from . import bench, deploy, fault_cli, image, loadrun, paths
from .envfile import create_dotenv
from .errors import BadInput, HarnessError
from .profile import load_profile
from .render import differences, render
from .secrets import load_secrets
from .status import collect, format_status
from .verify import register as register_verify


def _cmd_render(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile)
    secrets = load_secrets(profile)
    if args.check:
        changed = differences(profile, secrets)
        if changed:
            print(
                f"compose/{profile.name}/ is out of date ({', '.join(changed)}); "
                f"run `redis-harness render {args.profile}`"
            )
            return 1
        print(f"compose/{profile.name}/ is up to date")
        return 0
    target = render(profile, secrets)
    where = target.relative_to(paths.ROOT) if target.is_relative_to(paths.ROOT) else target
    print(f"rendered {where}/: {' '.join(sorted(p.name for p in target.iterdir()))}")
    return 0


def _cmd_up(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile)
    secrets = load_secrets(profile)
    started = time.monotonic()
    result = deploy.up(profile, secrets)
    print(
        f"up {profile.project}: image {profile.image.ref} ({result.image_source}), "
        f"healthy in {time.monotonic() - started:.1f} s"
    )
    print(format_status(collect(profile, secrets)))
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile)
    deploy.down(profile, volumes=args.volumes)
    print(f"down {profile.project}" + (" (data volume removed)" if args.volumes else " (data volume kept)"))
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile)
    try:
        secrets = load_secrets(profile)
    except BadInput:
        secrets = None  # status still shows containers without the admin password
    status = collect(profile, secrets)
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    return 0 if status["healthy"] else 1


def _cmd_image_build(args: argparse.Namespace) -> int:
    if args.if_missing and image.is_present(args.tag):
        return 0
    started = time.monotonic()
    image_id = image.build_offline(args.tag, suite=args.suite)
    print(f"built {args.tag} ({image_id[:19]}) from Debian {args.suite} in {time.monotonic() - started:.0f} s")
    return 0


def _cmd_env_init(args: argparse.Namespace) -> int:
    generated = create_dotenv(paths.ROOT / ".env.example", paths.DOTENV_PATH)
    if generated:
        print(f"created .env (mode 0600) with generated passwords for {', '.join(generated)}")
    else:
        print(".env exists; left as it is")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="redis-harness", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    profile_help = "a profile name in profiles/ (dev, ci, prod) or a path to a YAML file"

    p = sub.add_parser("render", help="render compose/PROFILE/ from the profile and secrets")
    p.add_argument("profile", help=profile_help)
    p.add_argument("--check", action="store_true", help="exit 1 if compose/PROFILE/ differs from a fresh render")
    p.set_defaults(func=_cmd_render)

    p = sub.add_parser("up", help="render, make the image ready, start and wait until healthy")
    p.add_argument("profile", help=profile_help)
    p.set_defaults(func=_cmd_up)

    p = sub.add_parser("down", help="stop and remove the containers (the data volume stays)")
    p.add_argument("profile", help=profile_help)
    p.add_argument("--volumes", action="store_true", help="also remove the data volume")
    p.set_defaults(func=_cmd_down)

    p = sub.add_parser("status", help="containers, health, memory, maxmemory, policy, endpoint")
    p.add_argument("profile", help=profile_help)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_status)

    p = sub.add_parser("image", help="the Redis image")
    image_sub = p.add_subparsers(dest="image_command", required=True)
    b = image_sub.add_parser("build", help="build the offline Redis image from Debian packages")
    b.add_argument("--tag", default="redis-harness/redis:7.0-bookworm")
    b.add_argument("--suite", default=image.DEFAULT_SUITE, help="Debian suite to take redis-server from")
    b.add_argument("--if-missing", action="store_true", help="do nothing when the tag is already present")
    b.set_defaults(func=_cmd_image_build)

    p = sub.add_parser("env", help="the .env secrets file")
    env_sub = p.add_subparsers(dest="env_command", required=True)
    e = env_sub.add_parser("init", help="create .env from .env.example with generated passwords (never overwrites)")
    e.set_defaults(func=_cmd_env_init)

    # Subcommands that live in their own modules, each with register(subparsers):
    register_verify(sub)
    fault_cli.register(sub)
    loadrun.register(sub)
    bench.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HarnessError as exc:
        print(f"redis-harness: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `redis-harness status dev | head -1`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
