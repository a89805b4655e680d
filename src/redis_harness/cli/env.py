"""`redis-harness env init`."""

from __future__ import annotations

import argparse
from typing import Any

from redis_harness import paths
from redis_harness.cli.common import add_command
from redis_harness.errors import BadInput
from redis_harness.profile.env_template import create_dotenv


def register(sub: Any) -> None:
    p = add_command(sub, "env", "the .env secrets file", ["redis-harness env init"])
    env_sub = p.add_subparsers(dest="env_command", required=True, metavar="{init}", help="what to do with it")
    e = add_command(
        env_sub,
        "init",
        "create .env from .env.example with generated passwords (never overwrites)",
        ["redis-harness env init"],
        "The file is created with mode 0600. An existing .env is left as it is.",
    )
    e.set_defaults(func=run_init)


def run_init(args: argparse.Namespace) -> int:
    target = paths.DOTENV_PATH
    if target.is_symlink() and not target.exists():
        # create_dotenv never writes through a link; a dangling one would read as "exists" to O_EXCL.
        raise BadInput(
            f"env init: {target} is a link to {target.readlink()}, which does not exist; "
            "remove the link or create the file it points to"
        )
    try:
        generated = create_dotenv(paths.ROOT / ".env.example", target)
    except OSError as exc:
        raise BadInput(
            f"env init: cannot create {target} ({exc.filename}: {exc.strerror or exc}); "
            "check that its folder exists and is writable (REDIS_HARNESS_ENV_FILE chooses another place)"
        ) from None
    if generated:
        print(f"created .env (mode 0600) with generated passwords for {', '.join(generated)}")
    else:
        print(".env exists; left as it is")
    return 0
