"""`redis-harness render PROFILE [--check] [--target compose|kubernetes --out DIR ...]`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from redis_harness import paths
from redis_harness.cli.common import add_command, add_profile_argument, deployment_profile
from redis_harness.errors import BadInput
from redis_harness.load.run import TARGET_REFUSED
from redis_harness.load.scenarios import SCENARIOS
from redis_harness.profile.credentials import load_secrets
from redis_harness.profile.model import Profile
from redis_harness.render.files import differences, render
from redis_harness.render.kubernetes import (
    KubernetesOptions,
    check_load_options,
    check_namespace,
    default_namespace,
    default_out,
    kubernetes_files,
    write_manifests,
)


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "render",
        "write compose/PROFILE/ (compose file, redis.conf, users.acl) from the profile and secrets",
        [
            "redis-harness render dev",
            "redis-harness render ci --check   # exit 1 when compose/ci/ is stale",
            "redis-harness render ha --target kubernetes   # kubernetes/ha/: manifests + kustomization.yaml",
            "redis-harness render ci --target kubernetes --out /tmp/ci-k8s",
            "redis-harness render ci --target kubernetes --load-workers 4 --load-image REGISTRY/redis-harness:0.1.0",
        ],
        "The folder is rendered in memory and each file written in place only when all rendered; no password is "
        "written to it. --target kubernetes writes plain manifests and a kustomization.yaml (docs/kubernetes.md); "
        "the Secrets they name come from `redis-harness env init PROFILE --kubernetes`.",
    )
    add_profile_argument(p)
    p.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if compose/PROFILE/ differs from a fresh render"
    )
    p.add_argument(
        "--target", choices=("compose", "kubernetes"), default="compose", help="what to render (default: compose)"
    )
    k8s = p.add_argument_group("--target kubernetes")
    k8s.add_argument("--out", metavar="DIR", help="folder for the manifests (default: kubernetes/PROFILE/)")
    k8s.add_argument("--namespace", metavar="NAME", help="namespace of every object (default: redis-harness-PROFILE)")
    k8s.add_argument(
        "--no-namespace-object", action="store_true", help="the namespace exists already: render no Namespace"
    )
    k8s.add_argument(
        "--load-workers",
        type=int,
        metavar="N",
        help="also render a Locust master Job and N worker pods that load the deployment from inside the cluster",
    )
    k8s.add_argument(
        "--load-image", metavar="REF", help="with --load-workers: the harness image your cluster pulls (no default)"
    )
    k8s.add_argument("--load-scenario", metavar="NAME", help="with --load-workers: the scenario run (default: smoke)")
    p.set_defaults(func=run)


KUBERNETES_ONLY = ("out", "namespace", "no_namespace_object", "load_workers", "load_image", "load_scenario")


def kubernetes_options(args: argparse.Namespace, profile: Profile) -> KubernetesOptions:
    """The --target kubernetes options, checked before anything is rendered."""
    namespace = check_namespace(args.namespace) if args.namespace is not None else default_namespace(profile)
    if args.load_scenario is not None:
        scenario = SCENARIOS.get(args.load_scenario)
        if scenario is None or scenario.name in TARGET_REFUSED:
            usable = ", ".join(n for n in SCENARIOS if n not in TARGET_REFUSED)
            raise BadInput(
                f"--load-scenario: {args.load_scenario!r} is not a scenario a target runs; use one of {usable}"
            )
    load = check_load_options(args.load_image, args.load_workers, args.load_scenario)
    return KubernetesOptions(namespace, not args.no_namespace_object, load)


def run(args: argparse.Namespace) -> int:
    profile = deployment_profile(args.profile, "render")
    if args.target == "kubernetes":
        return run_kubernetes(args, profile)
    given = [f"--{n.replace('_', '-')}" for n in KUBERNETES_ONLY if getattr(args, n) != DEFAULTS[n]]
    if given:
        raise BadInput(f"{given[0]}: goes with --target kubernetes; add it, or leave {given[0]} out")
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
    try:
        target = render(profile, secrets)
    except OSError as exc:  # the render went to a temporary folder, which is gone again: nothing was written
        folder = paths.deployment_dir(profile.name)
        raise BadInput(
            f"render: cannot write {folder}/ ({exc.strerror or exc}); make it and {folder.parent}/ writable "
            f"(check permissions and `lsattr -d` for the immutable flag), then run it again"
        ) from None
    where = target.relative_to(paths.ROOT) if target.is_relative_to(paths.ROOT) else target
    names = sorted(p.name for p in target.iterdir() if not p.name.startswith("."))
    print(f"rendered {where}/: {' '.join(names)}")
    return 0


DEFAULTS = {
    "out": None,
    "namespace": None,
    "no_namespace_object": False,
    "load_workers": None,
    "load_image": None,
    "load_scenario": None,
}


def run_kubernetes(args: argparse.Namespace, profile: Profile) -> int:
    if args.check:
        raise BadInput("--check: compares compose/PROFILE/ only; leave it out with --target kubernetes")
    options = kubernetes_options(args, profile)
    target = Path(args.out) if args.out else default_out(profile)
    if target.exists() and not target.is_dir():
        raise BadInput(f"--out: {target} is a file; name a folder (it is created when missing)")
    files = kubernetes_files(profile, load_secrets(profile), options)  # in memory: a bad input writes nothing
    write_manifests(files, target)
    full = target.resolve()
    where = full.relative_to(paths.ROOT) if full.is_relative_to(paths.ROOT) else target
    print(f"rendered {where}/: {' '.join(sorted(files))}")
    print(f"next: redis-harness env init {args.profile} --kubernetes, then kubectl apply -k {where}")
    return 0
