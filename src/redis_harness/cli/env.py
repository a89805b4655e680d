"""`redis-harness env init [PROFILE] [--service NAME [--internal] | --kubernetes]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from redis_harness import paths
from redis_harness.cli.common import add_command, deployment_profile
from redis_harness.deploy.connect import settings_for
from redis_harness.deploy.tls_client import client_tls
from redis_harness.errors import BadInput
from redis_harness.profile.credentials import Secrets, load_secrets
from redis_harness.profile.env_template import create_dotenv, service_dotenv
from redis_harness.profile.model import Profile
from redis_harness.render.kubernetes import default_namespace, write_secret_manifests


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
            "redis-harness env init ha --kubernetes   # + .state/ha/kubernetes-secrets.yaml, the pods' Secrets",
        ],
        f"The default profile ({paths.DEFAULT_PROFILE}) keeps its secrets in .env, every other profile in "
        ".env.<name>, so one checkout holds several deployments' secrets; a profile reads its own file, or "
        ".env when it has none. The file is created with mode 0600 and never overwritten. With --service, "
        "nothing is written: the host, port, database, user and password that service logs in with are "
        "printed for its own env file. With --kubernetes, the Secrets the rendered manifests name are written "
        "from the profile's passwords to .state/PROFILE/kubernetes-secrets.yaml (mode 0600, git-ignored, "
        "brought up to date each time) for `kubectl apply -f`; no password goes on a command line.",
    )
    e.add_argument("profile", nargs="?", default=paths.DEFAULT_PROFILE, help="profile name or YAML path (default: dev)")
    e.add_argument("--service", metavar="NAME", help="print what this service needs instead of writing a file")
    e.add_argument(
        "--internal",
        action="store_true",
        help="with --service: for a container on the deployment's internal network (redis:6379)",
    )
    e.add_argument(
        "--kubernetes",
        action="store_true",
        help="also write the Secrets of `render --target kubernetes` to .state/PROFILE/ (mode 0600)",
    )
    e.set_defaults(func=run_init)


def endpoint_settings(profile: Profile) -> dict[str, str]:
    """REDIS_HOST and REDIS_PORT where the profile publishes its (first) data node."""
    return {"REDIS_HOST": profile.network.host, "REDIS_PORT": str(profile.network.port)}


def shown_path(target: Any) -> str:
    return target.name if target.parent == paths.ROOT else str(target)


def run_init(args: argparse.Namespace) -> int:
    profile = deployment_profile(args.profile, "env")  # bad profile: one line, exit 2, nothing written
    if args.service is not None:
        if args.kubernetes:
            raise BadInput("--kubernetes: writes the whole deployment's Secrets; leave out --service NAME")
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
    if args.kubernetes:
        write_kubernetes_secrets(profile)
    return 0


def write_kubernetes_secrets(profile: Profile) -> None:
    secrets = load_secrets(profile)  # the file just created (or the one there), plus the environment
    try:
        written = write_secret_manifests(profile, secrets)
    except OSError as exc:
        raise BadInput(
            f"env init: cannot write {exc.filename} ({exc.strerror or exc}); make {paths.STATE_DIR} writable"
        ) from None
    shown = written.relative_to(paths.ROOT) if written.is_relative_to(paths.ROOT) else written
    print(f"wrote {shown} (mode 0600): the Secrets the manifests name; after the namespace exists:")
    print(f"  kubectl apply -n {default_namespace(profile)} -f {shown}")


def tls_settings(profile: Profile, service: str) -> dict[str, str]:
    """With TLS on: the CA bundle and, when the deployment asks for one, the service's own client certificate
    (files `up` wrote in .state/<name>/; copy them to the service's host with the password)."""
    tls = client_tls(profile, service)
    if tls is None:
        return {}
    if not Path(tls.ca_file).is_file():
        print(f"note: no certificates issued for {profile.name} yet; `redis-harness up` writes the files named here",
              file=sys.stderr)  # fmt: skip
    named = {"REDIS_TLS_CA_FILE": tls.ca_file, "REDIS_TLS_CERT_FILE": tls.cert_file, "REDIS_TLS_KEY_FILE": tls.key_file}
    return {name: value for name, value in named.items() if value}


def topology_settings(profile: Profile, secrets: Secrets) -> dict[str, str]:
    """Sentinel or Cluster: where to ask for the primary or the slot map, and the map from the names the
    nodes announce to their published addresses (a client on another host cannot resolve the names)."""
    settings = settings_for(profile, None, "")
    found: dict[str, str] = {}
    if settings.sentinels:
        found["REDIS_SENTINELS"] = ",".join(f"{host}:{port}" for host, port in settings.sentinels)
        found["REDIS_SENTINEL_PASSWORD"] = secrets.default.password
        found["REDIS_MASTER_NAME"] = settings.master_name
    if settings.cluster:
        found["REDIS_CLUSTER"] = "1"
    if settings.sentinels or settings.cluster:
        found["REDIS_ADDRESS_MAP"] = ",".join(f"{a[0]}:{a[1]}={r[0]}:{r[1]}" for a, r in settings.address_map)
    return found


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
        **tls_settings(profile, service),
        **({} if internal else topology_settings(profile, secrets)),
    }
    tls = client_tls(profile, service)
    if tls is not None:  # the CA bundle, and the service's own certificate when the deployment asks for one
        settings["REDIS_TLS_CA_FILE"] = tls.ca_file
        if tls.cert_file and tls.key_file:
            settings |= {"REDIS_TLS_CERT_FILE": tls.cert_file, "REDIS_TLS_KEY_FILE": tls.key_file}
    where = "a container on its internal network" if internal else "this host"
    print(service_dotenv(settings, f"{service} on the {profile.name} deployment, from {where}"), end="")
    return 0
