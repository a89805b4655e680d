"""`redis-harness env init [PROFILE] [--service NAME [--internal]]`."""

from __future__ import annotations

import argparse
from typing import Any

from redis_harness import paths
from redis_harness.cli.common import add_command
from redis_harness.errors import BadInput
from redis_harness.profile.credentials import load_secrets
from redis_harness.profile.env_template import create_dotenv, service_dotenv
from redis_harness.profile.model import Profile, load_profile


def register(sub: Any) -> None:
    p = add_command(sub, "env", "the profiles' secrets files", ["redis-harness env init dev"])
    env_sub = p.add_subparsers(dest="env_command", required=True, metavar="{init}", help="what to do with it")
    e = add_command(
        env_sub,
        "init",
        "create a profile's secrets file with generated passwords and its endpoint (never overwrites)",
        [
            "redis-harness env init                   # .env, for dev",
            "redis-harness env init ci                # .env.ci, for ci",
            "redis-harness env init --service price   # what the price service needs, in .env syntax",
            "redis-harness env init ci --service price --internal > price.env   # for a container on internal",
        ],
        f"The default profile ({paths.DEFAULT_PROFILE}) keeps its secrets in .env, every other profile in "
        ".env.<name>, so one checkout holds several deployments' secrets; a profile reads its own file, or "
        ".env when it has none. The file is created with mode 0600 and never overwritten. With --service, "
        "nothing is written: the host, port, database, user and password that service logs in with are "
        "printed for its own env file.",
    )
    e.add_argument("profile", nargs="?", default=paths.DEFAULT_PROFILE, help="profile name or YAML path (default: dev)")
    e.add_argument("--service", metavar="NAME", help="print what this service needs instead of writing a file")
    e.add_argument(
        "--internal",
        action="store_true",
        help="with --service: for a container on the deployment's internal network (redis:6379)",
    )
    e.set_defaults(func=run_init)


def endpoint_settings(profile: Profile) -> dict[str, str]:
    """REDIS_HOST and REDIS_PORT where the profile publishes its (first) data node."""
    return {"REDIS_HOST": profile.network.host, "REDIS_PORT": str(profile.network.port)}


def shown_path(target: Any) -> str:
    return target.name if target.parent == paths.ROOT else str(target)


def run_init(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile)  # bad profile: one line, exit 2, nothing written
    if args.service is not None:
        return print_service(profile, args.service, args.internal)
    if args.internal:
        raise BadInput("--internal: goes with --service NAME (what a container on the internal network needs)")
    settings = endpoint_settings(profile)
    target = paths.dotenv_target(profile.name)
    if target.is_symlink() and not target.exists():
        # create_dotenv never writes through a link; a dangling one would read as "exists" to O_EXCL.
        raise BadInput(
            f"env init: {target} is a link to {target.readlink()}, which does not exist; "
            "remove the link or create the file it points to"
        )
    try:
        generated = create_dotenv(paths.ROOT / ".env.example", target, settings, profile.name)
    except OSError as exc:
        raise BadInput(
            f"env init: cannot create {target} ({exc.filename}: {exc.strerror or exc}); "
            f"check that its folder exists and is writable ({paths.ENV_FILE_VARIABLE} chooses another place)"
        ) from None
    if generated:
        where = f"{settings['REDIS_HOST']}:{settings['REDIS_PORT']}"
        print(f"created {shown_path(target)} (mode 0600) for {profile.name} at {where}: {len(generated)} passwords")
    else:
        print(f"{shown_path(target)} exists; left as it is")
    return 0


def print_service(profile: Profile, service: str, internal: bool) -> int:
    """The pair a service logs in with (its ACL user and that user's password), and where to connect."""
    names = [s.name for s in profile.security.services]
    if service not in names:
        raise BadInput(
            f"--service: {service!r} is not a service of the {profile.name} profile; use one of {', '.join(names)}"
        )
    secrets = load_secrets(profile)
    if internal:  # the first data node by its service name, on the port containers listen on
        host, port = profile.data_nodes[0].service, str(profile.network.container_port)
    else:
        host, port = profile.network.host, str(profile.network.port)
    settings = {
        "REDIS_HOST": host,
        "REDIS_PORT": port,
        "REDIS_DB": "0",
        "REDIS_USERNAME": service,
        "REDIS_PASSWORD": secrets.service(service).password,
    }
    where = "a container on its internal network" if internal else "this host"
    print(service_dotenv(settings, f"{service} on the {profile.name} deployment, from {where}"), end="")
    return 0
