"""Bring a deployment up (converge it to its profile) and down, one operation at a time."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

from redis_harness import paths, progress
from redis_harness.deploy import firewall, generations, image, lock, neighbours, ownership, rotation
from redis_harness.deploy.compose_cmd import compose
from redis_harness.deploy.containers import PROJECT_LABEL, project_containers
from redis_harness.deploy.converge import Outcome, apply, check, converge, put_back_image, record
from redis_harness.deploy.desired import Desired, desired_state, with_files
from redis_harness.deploy.engine import docker_client, require_compose
from redis_harness.deploy.generations import Generation
from redis_harness.deploy.plan import CERTIFICATE_SETTING, make_plan
from redis_harness.deploy.running import running_containers
from redis_harness.errors import BadInput, HarnessError
from redis_harness.profile.credentials import Secrets
from redis_harness.profile.host import check_host_limits, check_published_address
from redis_harness.profile.model import Profile
from redis_harness.render.secret_files import remove_secret_files

__all__ = ["UpResult", "check_host", "check_port_free", "compose", "down", "preflight", "rollback", "rotate", "up"]


@dataclass(frozen=True)
class UpResult:
    deployment_dir: Path
    image_source: str
    outcome: Outcome
    taken_over_from: ownership.Owner | None = None


def _publishers_of(host: str, port: int) -> list[str]:
    """Names of running containers publishing host:port: a clash with another container
    is named as such, not as an anonymous busy port."""
    names = []
    for container in docker_client().containers.list():
        for bindings in (container.ports or {}).values():
            for binding in bindings or []:
                if int(binding.get("HostPort", 0)) == port and binding.get("HostIp") in (host, "0.0.0.0", "::", ""):
                    names.append(container.name)
    return names


def check_port_free(profile: Profile) -> None:
    if profile.network.publish == "none":
        return
    host, port = profile.network.host, profile.network.port
    others = [n for n in _publishers_of(host, port) if not n.startswith(f"{profile.project}-")]
    if others:
        raise BadInput(
            f"network.port: {host}:{port} is already published by container {others[0]}; "
            f"choose another port in {profile.source} or stop that container"
        )
    if any(n.startswith(f"{profile.project}-") for n in _publishers_of(host, port)):
        return  # our own deployment holds it: this `up` updates it in place
    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise BadInput(
                f"network.port: {host}:{port} is already in use on this host; "
                f"choose another port in {profile.source} or stop the program using it"
            ) from None
        raise
    finally:
        probe.close()


def host_addresses() -> list[str]:
    """This host's own IPv4 addresses, every interface."""
    found: Iterable[psutil._common.snicaddr] = (
        a for addresses in psutil.net_if_addrs().values() for a in addresses if a.family == socket.AF_INET
    )
    return sorted({a.address for a in found})


def check_host(profile: Profile) -> None:
    """The profile against this machine (memory, CPUs, the published address); up and plan."""
    check_host_limits(profile, psutil.virtual_memory().total, psutil.cpu_count() or 1)
    check_published_address(profile, host_addresses())


def preflight(profile: Profile, secrets: Secrets) -> tuple[Desired, str]:
    """Every check that can refuse, before anything is written: engine, host limits and address,
    image, port, and the desired state rendered in memory."""
    require_compose()
    docker_client()
    check_host(profile)
    progress.note(f"rendering {profile.name} in memory")
    desired = desired_state(profile, secrets)
    progress.note(f"image {profile.image.ref}")
    image_source = image.ensure(profile.image)
    if profile.monitoring.enabled:
        image.ensure_monitoring(profile.monitoring.image)
    check_port_free(profile)
    return desired, image_source


def up(profile: Profile, secrets: Secrets, take_over: bool = False) -> UpResult:
    """Make the running deployment what the profile says (see deploy.converge), under its lock.
    A deployment of another checkout is refused unless `take_over` (deploy.ownership)."""
    with lock.held(profile, "up"):
        require_compose()
        previous_owner = ownership.require_owned(profile, "up", take_over)
        desired, image_source = preflight(profile, secrets)
        ownership.record(profile, "up", taking_over=previous_owner is not None)
        # Host packet filter for the harness's bridges (idempotent): published ports stay loopback-only
        # for neighbours that route to the bridge, and containers cannot open connections out. A
        # publish: host deployment's allow list is part of the plan (deploy.plan, applied live).
        progress.note("host firewall rules for the deployment's bridges")
        firewall.ensure_rules()
        previous = generations.latest(profile)
        progress.note("comparing the running deployment with the profile")
        planned = make_plan(desired, secrets, previous)
        if planned.refusal:
            raise HarnessError(planned.refusal)
        outcome = converge(desired, secrets, planned, previous)
        # The bridges exist now: a restarted container is found again within 100 ms (deploy.neighbours).
        neighbours.tune_bridges(profile)
    return UpResult(paths.deployment_dir(profile.name), image_source, outcome, previous_owner)


def down(profile: Profile, volumes: bool = False, take_over: bool = False) -> ownership.Owner | None:
    """Stop and remove the containers (and with `volumes` the data and the owner's record).
    Returns the owner it was taken over from, if any."""
    require_compose()
    docker_client()
    with lock.held(profile, "down"):
        previous_owner = ownership.require_owned(profile, "down", take_over)
        if previous_owner is not None or (not volumes and project_containers(profile)):
            # A take-over, or one made before owners were recorded: once its containers (and compose's
            # label naming the checkout) are gone, the data volume must still say whose it is.
            ownership.record(profile, "down", taking_over=previous_owner is not None)
        args = ["down", "--remove-orphans"] + (["--volumes"] if volumes else [])
        compose(profile, *args)
        firewall.remove_allow_rules(profile)  # a publish: host deployment's allow list goes with it
        if volumes:
            # Compose removes only the volumes its file declares; sweep any left by an older file,
            # and the owner's marker (deploy.ownership): with its data gone, anyone may take the name.
            client = docker_client()
            for volume in client.volumes.list(filters={"label": f"{PROJECT_LABEL}={profile.project}"}):
                volume.remove(force=True)
            remove_secret_files(profile)
            generations.forget(profile)  # their data are gone: nothing to go back to
            rotation.forget(profile)  # and no node is left to finish a rotation on
        generations.baseline_path(profile).unlink(missing_ok=True)
    return previous_owner


def rollback(profile: Profile, secrets: Secrets) -> tuple[Generation, Generation]:
    """Restore the generation before the latest one (on request); returns (restored, recorded).
    Only the owner has generations to go back to: another checkout is refused."""
    with lock.held(profile, "rollback"):
        require_compose()
        docker_client()
        ownership.require_owned(profile, "rollback")
        current = generations.latest(profile)
        if current is None:
            raise BadInput(f"rollback: no generation recorded for {profile.name}; run `redis-harness up` first")
        target = generations.before(profile, current.number)
        if target is None:
            raise BadInput(f"rollback: {profile.name} has only generation {current.number}; nothing to go back to")
        desired = desired_state(profile, secrets)
        if target.secrets_hash != desired.secrets_hash:
            raise BadInput(
                f"rollback: generation {target.number} was made with other secrets; "
                f"put those passwords back in {paths.dotenv_path(profile.name).name} (or the environment) first"
            )
        if not image.is_present(target.image_ref):
            raise BadInput(f"rollback: image {target.image_ref} of generation {target.number} is no longer present")
        put_back_image(target)
        old = with_files(desired, target.files, desired.secret_files, target.image_ref)
        planned = make_plan(old, secrets, current, updates=False)
        apply(old, secrets, planned)
        check(old, secrets, planned)
        recorded = record(old, secrets, restored_from=target.number)
        generations.write_baseline(profile, running_containers(profile))
        return target, recorded


def _certificate_change(setting: str) -> bool:
    return setting == CERTIFICATE_SETTING or setting.startswith("secret file tls-")


def rotate(profile: Profile, secrets: Secrets) -> Outcome:
    """New leaf certificates for every node and client, written in place and loaded live (data nodes by
    CONFIG SET tls-*, Sentinels restarted one at a time), checked by a handshake with each node, and the
    previous files and certificates put back when a node fails to load them. Under the deployment's
    lock, by its owner only; refused while the profile has other changes pending (`up` first)."""
    with lock.held(profile, "cert rotate"):
        require_compose()
        docker_client()
        ownership.require_owned(profile, "cert")
        if not profile.tls.enabled:
            raise BadInput(f"security.tls.enabled: {profile.name} has TLS off; there are no certificates to rotate")
        if profile.tls.own_pki:
            raise BadInput(
                "security.tls.cert_file: your own PKI issues these certificates; put new files there and run `up`"
            )
        if not profile.published:
            raise BadInput(
                f"network.publish: {profile.name} publishes no port, so new certificates cannot be loaded and "
                "checked live; set network.publish: loopback, or run `down` then `up` (data volumes kept)"
            )
        previous = generations.latest(profile)
        if previous is None or not running_containers(profile):
            raise BadInput(f"deployment: {profile.project} is not up; run `redis-harness up {profile.name}` first")
        progress.note("issuing new certificates in memory")
        desired = desired_state(profile, secrets, renew_all=True)
        planned = make_plan(desired, secrets, previous)
        others = [c for c in planned.changes if not _certificate_change(c.setting)]
        if others or planned.refusal:
            raise BadInput(
                f"cert rotate: {profile.name} has {len(others)} other changes pending "
                f"(see `redis-harness plan {profile.name}`); run `redis-harness up {profile.name}` first"
            )
        try:
            return converge(desired, secrets, planned, previous)
        except HarnessError as exc:
            raise HarnessError("cert rotate: " + str(exc).removeprefix("up: ")) from None
