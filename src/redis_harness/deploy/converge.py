"""Apply a plan to a running deployment, check the outcome, and go back when it fails.

Order of work: files first (rewritten in place, so running containers see
them through their directory mount), then live steps on the servers (CONFIG
SET, ACL LOAD), then containers Compose must restart or replace, one at a time.
After that every container must be healthy and the fast checks must pass
(admin login, each live setting, every user's password, no persistent key
lost); otherwise the previous generation is restored the same way.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import redis
from docker.errors import DockerException

from redis_harness import paths, progress
from redis_harness.deploy import firewall, generations, image, rotation, running
from redis_harness.deploy.compose_cmd import compose
from redis_harness.deploy.connect import connect_node
from redis_harness.deploy.desired import Desired, with_files
from redis_harness.deploy.engine import docker_client
from redis_harness.deploy.generations import Generation
from redis_harness.deploy.plan import Plan, make_plan, read_sentinel_settings, sentinel_settings
from redis_harness.deploy.readiness import current_primary, wait_until_settled
from redis_harness.deploy.switchover import follow_primary, needs_switch, switch_primary_away
from redis_harness.deploy.tls_client import tls_kwargs
from redis_harness.deploy.tls_served import served_certificate
from redis_harness.errors import HarnessError
from redis_harness.profile.credentials import PREVIOUS_SUFFIX, Secrets
from redis_harness.render.certificates import node_files, read_cert
from redis_harness.render.conf_text import config_directives
from redis_harness.render.files import write_deployment
from redis_harness.render.secret_files import read_secret_files, write_secret_contents

WAIT_TIMEOUT_S = 90.0
POLL_S = 0.5


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    generation: Generation | None  # the generation recorded (None when nothing changed)


def _admin(container: Any, desired: Desired, secrets: Secrets) -> redis.Redis:
    return running.node_client(desired.profile, container, secrets.admin.password)


def _live_steps(desired: Desired, secrets: Secrets, plan: Plan) -> None:
    containers = running.running_containers(desired.profile)
    for service in sorted(set(plan.live_config) | plan.acl_load):
        client = _admin(containers[service], desired, secrets)
        try:
            settings = plan.live_config.get(service, {})
            if settings:
                progress.note(f"{service}: CONFIG SET {' '.join(sorted(settings))}")
                pairs = [part for item in sorted(settings.items()) for part in item]
                client.execute_command("CONFIG", "SET", *pairs)
            if service in plan.acl_load:
                progress.note(f"{service}: ACL LOAD from the rewritten users.acl")
                client.execute_command("ACL", "LOAD")
        except redis.RedisError as exc:
            raise HarnessError(f"up: {service}: live change refused: {exc}") from None
        finally:
            client.close()


def _sentinel_steps(desired: Desired, secrets: Secrets, plan: Plan) -> None:
    for service in sorted(plan.sentinel_users):
        node = next(n for n in desired.profile.sentinel_nodes if n.service == service)
        progress.note(f"{service}: ACL SETUSER of every user as rendered")
        member = rotation.sentinel_member(desired.profile, node)
        client, _ = rotation.admin_login(member, secrets)
        try:
            rotation.set_users_as_rendered(desired, member, client)
        except redis.RedisError as exc:
            raise HarnessError(f"up: {service}: ACL SETUSER refused: {exc}") from None
        finally:
            client.close()
    spec = desired.profile.topology.sentinel
    for service, settings in sorted(plan.sentinel_set.items()):
        assert spec is not None
        node = next(n for n in desired.profile.sentinel_nodes if n.service == service)
        progress.note(f"{service}: SENTINEL SET {' '.join(sorted(settings))}")
        client = connect_node(desired.profile, node, "admin", secrets.admin.password)
        try:
            pairs = [part for item in sorted(settings.items()) for part in item]
            client.execute_command("SENTINEL", "SET", spec.master_name, *pairs)
        except redis.RedisError as exc:
            raise HarnessError(f"up: {service}: SENTINEL SET refused: {exc}") from None
        finally:
            client.close()


def _container_order(desired: Desired, secrets: Secrets, services: set[str]) -> list[str]:
    """Sentinels, then replicas, then the primary, so the node clients write to is replaced
    last; with Sentinel the primary is whichever node the Sentinels name now (after an earlier
    failover that is not the profile's first node)."""
    roles = {n.service: n.role for n in desired.profile.nodes}
    if desired.profile.topology.sentinel is not None and (primary := current_primary(desired.profile, secrets)):
        roles = {
            s: ("primary" if s == primary else "replica") if r in ("primary", "replica") else r
            for s, r in roles.items()
        }
    rank = {"sentinel": 0, "replica": 1, "cluster": 2, "primary": 3}
    return sorted(services, key=lambda s: (rank.get(roles.get(s, ""), 2), s))


def _fail_over_from(desired: Desired, secrets: Secrets, service: str) -> None:
    """With Sentinel, the primary is replaced last and only after a switchover, so writers move
    to a replica that has every acknowledged write before the old primary stops."""
    if needs_switch(desired.profile, secrets, service):
        container = running.running_containers(desired.profile)[service]
        switch_primary_away(desired.profile, secrets, service, container)


def _container_steps(desired: Desired, secrets: Secrets, plan: Plan, baseline: Baseline) -> None:
    profile = desired.profile
    replaced = [(s, "recreate") for s in _container_order(desired, secrets, plan.recreate)]
    replaced += [(s, "restart") for s in _container_order(desired, secrets, plan.restart - plan.recreate)]
    for service, how in replaced:
        _fail_over_from(desired, secrets, service)
        if how == "recreate" and desired.services.get(service, {}).get("depends_on"):
            # `up --no-deps` would label the container with a config hash that leaves out its
            # dependencies, so remove it and create it with the full definition instead.
            progress.note(f"{service}: new container")
            compose(profile, "rm", "--stop", "--force", service)
            compose(profile, "up", "--detach", "--no-recreate", service)
        elif how == "recreate":
            progress.note(f"{service}: new container (data volume kept)")
            compose(profile, "up", "--detach", "--no-deps", "--force-recreate", service)
        else:
            progress.note(f"{service}: restart to read the rewritten files")
            compose(profile, "restart", service)
        if profile.topology.sentinel is not None and service in {n.service for n in profile.data_nodes}:
            follow_primary(profile, secrets, service, running.running_containers(profile)[service])
        wait_healthy(desired, baseline, only={service})
        # The next node waits until this one is back in the topology (replica linked and
        # synced, Sentinels aware of it), so a failover never picks a replica that is behind.
        _settle(desired, secrets)
    progress.note("docker compose up (containers to create or remove)")
    # Everything to replace was replaced above, one at a time; without --no-recreate Compose
    # would also recreate the Sentinels that depend on a replaced data node, all at once.
    compose(profile, "up", "--detach", "--remove-orphans", "--no-recreate")
    if profile.topology.cluster is not None:
        wait_healthy(desired, baseline)
        progress.note("cluster-init: creating the cluster if it does not exist")
        compose(profile, "--profile", "init", "run", "--rm", "--no-deps", "cluster-init")


Baseline = dict[str, tuple[int, bool]]  # container id -> (restart count, OOM-killed flag) before a step


def baseline_of(desired: Desired) -> Baseline:
    """The containers' crash record before an operation: only what happens after it counts
    (Docker keeps the OOM flag of an earlier kill)."""
    return {
        c.id: (c.attrs.get("RestartCount", 0), bool(c.attrs["State"].get("OOMKilled")))
        for c in running.running_containers(desired.profile).values()
    }


def _failure(container: Any, baseline: Baseline) -> str | None:
    state = container.attrs["State"]
    restarts, oom_before = baseline.get(container.id, (0, False))
    if state.get("OOMKilled") and (not oom_before or container.attrs.get("RestartCount", 0) > restarts):
        return f"{container.name} was OOM-killed (memory limit too small for its data?)"
    if container.attrs.get("RestartCount", 0) > restarts:
        return f"{container.name} crashed and was restarted (exit code {state.get('ExitCode')})"
    if state.get("Status") in ("exited", "dead"):
        return f"{container.name} {state.get('Status')} (exit code {state.get('ExitCode')})"
    return None


def wait_healthy(
    desired: Desired, baseline: Baseline, only: set[str] | None = None, timeout_s: float = WAIT_TIMEOUT_S
) -> float:
    """Until every container of the deployment runs and is healthy; fails at once when one is
    OOM-killed, crashes or exits after `baseline` was taken (new containers start from zero)."""
    wanted = {s for s, spec in desired.services.items() if not spec.get("profiles")}
    wanted = wanted & only if only is not None else wanted
    started = time.monotonic()
    while True:
        containers = running.running_containers(desired.profile)
        waiting = []
        for service in sorted(wanted):
            container = containers.get(service)
            if container is None:
                waiting.append(f"{service} (absent)")
                continue
            if problem := _failure(container, baseline):
                raise HarnessError(f"up: {problem}")
            health = (container.attrs["State"].get("Health") or {}).get("Status", "healthy")
            if container.status != "running" or health != "healthy":
                waiting.append(f"{service} ({container.status}, {health})")
        if not waiting:
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise HarnessError(f"up: not healthy after {timeout_s:.0f} s: {', '.join(waiting)}")
        progress.note("waiting for " + ", ".join(waiting) + " to be healthy")
        time.sleep(POLL_S)


def _check_sentinels(desired: Desired, secrets: Secrets) -> None:
    if "sentinel.conf" not in desired.files:
        return
    wanted = sentinel_settings(desired.files["sentinel.conf"])
    for node in desired.profile.sentinel_nodes:
        now = read_sentinel_settings(desired, secrets, node.service)
        if isinstance(now, str):
            raise HarnessError(f"up: {node.service}: {now}")
        drift = sorted(option for option, value in wanted.items() if now.get(option) != value)
        if drift:
            raise HarnessError(f"up: {node.service}: Sentinel settings not in effect: {', '.join(drift)}")


def check_certificates(desired: Desired) -> None:
    """With TLS: every node serves the certificate its file holds (a new connection sees a renewed or
    rotated one), so a file written but never loaded fails here and is rolled back."""
    profile = desired.profile
    for node in profile.nodes if profile.tls.enabled else ():
        cert = node_files(node)[0]
        if cert not in desired.secret_files:
            continue
        wanted = read_cert(cert, desired.secret_files[cert])
        served = served_certificate(profile, node)
        if isinstance(served, str):
            raise HarnessError(f"up: {node.service}: {served}")
        if served.serial != wanted.serial:
            raise HarnessError(
                f"up: {node.service}: serves certificate serial {served.short_serial}, "
                f"not {wanted.short_serial} of {cert}"
            )


def check(desired: Desired, secrets: Secrets, plan: Plan) -> None:
    """The fast checks after a change: admin login, the settings, every password, the data, the certificates."""
    profile = desired.profile
    if not profile.published:
        return  # the host cannot reach the servers; health (the containers' own PING) must do
    check_certificates(desired)
    _check_sentinels(desired, secrets)
    wanted = config_directives(desired.files["redis.conf"])
    containers = running.running_containers(profile)
    for node in profile.data_nodes:
        progress.note(f"{node.service}: checking settings, passwords and keys")
        container = containers[node.service]
        server = running.read_node(profile, container, secrets.admin.password)
        if server.error:
            raise HarnessError(f"up: {node.service}: {server.error}")
        drift = [d for d, v in wanted.items() if d in server.config and server.config[d] != v]
        if drift:
            raise HarnessError(f"up: {node.service}: settings not in effect: {', '.join(sorted(drift))}")
        port = running.published_port(container, profile.network.container_port)
        default_on = profile.security.default_user != "off"
        for user in ("default", *[s.user for s in secrets.services]):
            client = redis.Redis(
                host=profile.network.host,
                port=port,
                username=None if user == "default" else user,
                password=secrets.password_for(user),
                socket_connect_timeout=2,
                socket_timeout=2,
                **tls_kwargs(profile, user),
            )
            try:
                client.ping()
                if user == "default" and not default_on:
                    raise HarnessError(f"up: {node.service}: user default logs in, but the profile turns it off")
            except redis.AuthenticationError as exc:
                if user != "default" or default_on:
                    raise HarnessError(f"up: {node.service}: user {user} cannot log in: {exc}") from None
            except redis.RedisError as exc:
                raise HarnessError(f"up: {node.service}: user {user} cannot log in: {exc}") from None
            finally:
                client.close()
        before = plan.servers.get(node.service)
        if before is not None and before.persistent_keys and (server.persistent_keys or 0) < before.persistent_keys:
            raise HarnessError(
                f"up: {node.service}: {before.persistent_keys} keys without TTL before, {server.persistent_keys} after"
            )


def _settle(desired: Desired, secrets: Secrets) -> None:
    topology = desired.profile.topology
    if desired.profile.published and (topology.has_replicas or topology.sentinel or topology.cluster):
        progress.note("waiting for replicas, Sentinels or the Cluster to settle")
        wait_until_settled(desired.profile, secrets)


def apply(desired: Desired, secrets: Secrets, plan: Plan) -> None:
    """Make `desired` true: files, live steps, containers, health."""
    baseline = baseline_of(desired)
    if plan.rebuild:
        progress.note(f"rebuilding {desired.image_ref} with Debian {plan.rebuild}'s security and point updates")
        image.build_offline(desired.image_ref, suite=plan.rebuild)
    if plan.rotation:
        rotation.begin(desired.profile)
        rotation.accept_new(desired, secrets)
    progress.note("writing compose/" + desired.profile.name + "/ in place")
    write_deployment(desired.files, paths.deployment_dir(desired.profile.name))
    write_secret_contents(desired.profile, desired.secret_files)
    if plan.rotation:
        rotation.switch_links(desired, secrets)
        rotation.drop_old(desired, secrets)
    if plan.firewall:
        # Before any container starts: a new published port is never open to more than its list.
        progress.note("host firewall: allow list " + (" ".join(desired.profile.network.allow) or "removed"))
        firewall.ensure_allow_rules(desired.profile)
    _live_steps(desired, secrets, plan)
    _sentinel_steps(desired, secrets, plan)
    _container_steps(desired, secrets, plan, baseline)
    wait_healthy(desired, baseline)
    if plan.rotation:
        took = rotation.prove_links(desired, secrets)
        progress.note(f"every link logged in again with the new passwords alone in {took:.1f} s")


def acl_snapshot(desired: Desired, secrets: Secrets) -> dict[str, list[str]]:
    containers = running.running_containers(desired.profile)
    snapshot = {}
    for node in desired.profile.data_nodes:
        server = running.read_node(desired.profile, containers[node.service], secrets.admin.password)
        if server.error is None:
            snapshot[node.service] = server.acl_list
    return snapshot


def record(desired: Desired, secrets: Secrets, **extra: Any) -> Generation:
    return generations.record(
        desired.profile,
        desired.files,
        {
            "image_ref": desired.image_ref,
            "image_id": running.image_id(desired.image_ref),
            "secrets_hash": desired.secrets_hash,
            "acl_list": acl_snapshot(desired, secrets),
            **extra,
        },
    )


def converge(desired: Desired, secrets: Secrets, plan: Plan, previous: Generation | None) -> Outcome:
    """Apply `plan`; on failure restore `previous` (files, secret files, containers) and raise
    one line saying so. The caller holds the deployment's lock."""
    if plan.in_sync and previous is not None:
        wait_healthy(desired, baseline_of(desired))
        generations.write_baseline(desired.profile, running.running_containers(desired.profile))
        return Outcome(plan, None)
    secret_backup = read_secret_files(desired.profile)
    try:
        apply(desired, secrets, plan)
        _settle(desired, secrets)
        check(desired, secrets, plan)
    except HarnessError as exc:
        if previous is None:
            raise
        reason = str(exc).removeprefix("up: ")
        if plan.rotation:
            # Some nodes may accept only the new passwords by now: the previous generation's files
            # would lock the harness out of them. The next `up` resumes where this one stopped.
            raise HarnessError(
                f"up: {reason}; the password rotation stopped part-way and is not rolled back: run `up` again "
                f"to finish it, with {secrets.admin.env}{PREVIOUS_SUFFIX} still set"
            ) from None
        restore(desired, secrets, previous, secret_backup)
        generations.write_baseline(desired.profile, running.running_containers(desired.profile))
        raise HarnessError(
            f"up: {reason}; rolled back to generation {previous.number} (previous settings, data kept)"
        ) from None
    recorded = record(desired, secrets)
    generations.write_baseline(desired.profile, running.running_containers(desired.profile))
    return Outcome(plan, recorded)


def put_back_image(target: Generation) -> None:
    """The image generation `target` ran, tagged as its ref again if a rebuild moved the tag on."""
    recorded_id = target.meta.get("image_id")
    if recorded_id and running.image_id(target.image_ref) not in (None, recorded_id):
        with contextlib.suppress(DockerException):
            progress.note(f"tagging {str(recorded_id)[7:19]} as {target.image_ref} again")
            docker_client().images.get(recorded_id).tag(target.image_ref)


def restore(desired: Desired, secrets: Secrets, target: Generation, secret_files: dict[str, str]) -> None:
    """Put generation `target` back: its files, the given secret files, its containers."""
    progress.note(f"rolling back to generation {target.number}")
    put_back_image(target)
    old = with_files(desired, target.files, secret_files or desired.secret_files, target.image_ref)
    plan = make_plan(old, secrets, target, updates=False)
    try:
        apply(old, secrets, plan)
    except HarnessError as exc:
        raise HarnessError(f"rollback to generation {target.number} failed too: {exc}") from None
