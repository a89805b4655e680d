"""`redis-harness env init [PROFILE]`."""

from __future__ import annotations

import argparse
from typing import Any

from redis_harness import paths
from redis_harness.cli.common import add_command
from redis_harness.errors import BadInput
from redis_harness.profile.env_template import create_dotenv
from redis_harness.profile.model import load_profile


def register(sub: Any) -> None:
    p = add_command(sub, "env", "the .env secrets file", ["redis-harness env init dev"])
    env_sub = p.add_subparsers(dest="env_command", required=True, metavar="{init}", help="what to do with it")
    e = add_command(
        env_sub,
        "init",
        "create .env from .env.example with generated passwords and the profile's endpoint (never overwrites)",
        ["redis-harness env init dev", "redis-harness env init ci"],
        "The file is created with mode 0600. An existing .env is left as it is. REDIS_HOST and "
        "REDIS_PORT are the profile's published address (default profile: dev).",
    )
    e.add_argument("profile", nargs="?", default="dev", help="profile name or YAML path (default: dev)")
    e.set_defaults(func=run_init)


def endpoint_settings(profile_name: str) -> dict[str, str]:
    """REDIS_HOST and REDIS_PORT where the profile publishes its (first) data node."""
    profile = load_profile(profile_name)
    return {"REDIS_HOST": profile.network.host, "REDIS_PORT": str(profile.network.port)}


def run_init(args: argparse.Namespace) -> int:
    settings = endpoint_settings(args.profile)  # bad profile: one line, exit 2, nothing written
    target = paths.DOTENV_PATH
    if target.is_symlink() and not target.exists():
        # create_dotenv never writes through a link; a dangling one would read as "exists" to O_EXCL.
        raise BadInput(
            f"env init: {target} is a link to {target.readlink()}, which does not exist; "
            "remove the link or create the file it points to"
        )
    try:
        generated = create_dotenv(paths.ROOT / ".env.example", target, settings)
    except OSError as exc:
        raise BadInput(
            f"env init: cannot create {target} ({exc.filename}: {exc.strerror or exc}); "
            "check that its folder exists and is writable (REDIS_HARNESS_ENV_FILE chooses another place)"
        ) from None
    if generated:
        where = f"{settings['REDIS_HOST']}:{settings['REDIS_PORT']}"
        names = ", ".join(generated)
        print(f"created .env (mode 0600) for {args.profile} at {where} with generated passwords for {names}")
    else:
        print(".env exists; left as it is")
    return 0
