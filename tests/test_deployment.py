"""The ci profile in real containers: authentication, ACLs, limits, persistence, teardown."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import redis

from redis_harness.deploy import compose as deploy
from redis_harness.deploy.connect import connect
from redis_harness.deploy.containers import project_containers
from redis_harness.deploy.engine import docker_client
from redis_harness.deploy.status import collect
from redis_harness.errors import BadInput
from redis_harness.profile.credentials import load_secrets
from redis_harness.profile.model import load_profile

from .conftest import AWKWARD, Deployment, generated_env, variant_profile
from .test_cli import run_cli

pytestmark = pytest.mark.integration


def redis_container(deployment: Deployment):
    (container,) = [
        c for c in project_containers(deployment.profile) if c.labels["com.docker.compose.service"] == "redis"
    ]
    return container


def as_user(deployment: Deployment, user: str) -> redis.Redis:
    secrets = deployment.secrets
    password = {"default": secrets.default.password, "admin": secrets.admin.password}.get(user)
    password = password or secrets.service(user).password
    return connect(deployment.profile, None if user == "default" else user, password)


def test_unauthenticated_command_is_refused(ci_deployment: Deployment) -> None:
    host, port = ci_deployment.profile.network.host, ci_deployment.profile.network.port
    with pytest.raises(redis.AuthenticationError, match="Authentication required"):
        # RESP2: no HELLO handshake, so the command itself meets the NOAUTH refusal.
        redis.Redis(host=host, port=port, socket_timeout=2, protocol=2).get("anything")


def test_wrong_password_is_refused(ci_deployment: Deployment) -> None:
    with pytest.raises(redis.AuthenticationError):
        connect(ci_deployment.profile, None, "wrong-" + ci_deployment.secrets.default.password).ping()
    with pytest.raises(redis.AuthenticationError):
        connect(ci_deployment.profile, "admin", ci_deployment.secrets.default.password).ping()


def test_password_with_awkward_characters_works_end_to_end(ci_deployment: Deployment) -> None:
    assert AWKWARD in ci_deployment.secrets.default.password
    client = as_user(ci_deployment, "default")
    assert client.set("price:v1:pair:awkward", "ok") and client.get("price:v1:pair:awkward") == "ok"


def test_maxmemory_and_policy_are_the_profiles(ci_deployment: Deployment) -> None:
    admin = as_user(ci_deployment, "admin")
    assert int(admin.config_get("maxmemory")["maxmemory"]) == ci_deployment.profile.memory.maxmemory_bytes
    assert admin.config_get("maxmemory-policy")["maxmemory-policy"] == "volatile-lru"


def test_default_user_cannot_run_dangerous_commands_but_admin_can(ci_deployment: Deployment) -> None:
    default = as_user(ci_deployment, "default")
    for command in (
        ["FLUSHALL"],
        ["FLUSHDB"],
        ["CONFIG", "GET", "maxmemory"],
        ["KEYS", "*"],
        ["SHUTDOWN"],
        ["ACL", "LIST"],
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            default.execute_command(*command)
    assert "maxmemory" in as_user(ci_deployment, "admin").config_get("maxmemory")


def test_service_user_is_confined_to_its_prefix(ci_deployment: Deployment) -> None:
    price = as_user(ci_deployment, "price")
    assert price.set("price:v1:pair:BTC-USD", "42000.5", ex=30)
    assert price.get("price:v1:pair:BTC-USD") == "42000.5"
    with pytest.raises(redis.exceptions.NoPermissionError):
        price.get("processing:v1:calc:1")
    with pytest.raises(redis.exceptions.NoPermissionError):
        price.set("acquisition:v1:ratelimit:key1", 1)
    for command in (["FLUSHALL"], ["CONFIG", "GET", "maxmemory"], ["FLUSHDB"]):
        with pytest.raises(redis.exceptions.NoPermissionError):
            price.execute_command(*command)


def test_debug_and_protected_configs_are_refused(ci_deployment: Deployment) -> None:
    admin = as_user(ci_deployment, "admin")
    with pytest.raises(redis.ResponseError, match="DEBUG command not allowed"):
        admin.execute_command("DEBUG", "SLEEP", "0")
    with pytest.raises(redis.ResponseError, match="protected config"):
        admin.config_set("dir", "/tmp")
    assert admin.config_get("protected-mode")["protected-mode"] == "yes"


def test_container_limits_are_the_profiles(ci_deployment: Deployment) -> None:
    host_config = redis_container(ci_deployment).attrs["HostConfig"]
    resources = ci_deployment.profile.resources
    assert host_config["Memory"] == resources.memory_bytes
    assert host_config["NanoCpus"] == int(resources.cpus * 1e9)
    assert host_config["PidsLimit"] == resources.pids


def test_status_reports_endpoint_health_and_memory(ci_deployment: Deployment) -> None:
    status = collect(ci_deployment.profile, ci_deployment.secrets)
    assert status["healthy"] is True
    assert status["endpoint"] == {"host": "127.0.0.1", "port": ci_deployment.profile.network.port}
    assert status["tls"] is None  # ci is plaintext on the loopback
    assert status["memory_limit"] == ci_deployment.profile.resources.memory_bytes
    assert status["maxmemory"] == ci_deployment.profile.memory.maxmemory_bytes
    assert status["policy"] == "volatile-lru"
    assert [c["health"] for c in status["containers"]] == ["healthy"]


def test_healthcheck_fails_when_the_password_is_wrong(ci_deployment: Deployment) -> None:
    """The same command docker runs, with a wrong secret: NOAUTH/WRONGPASS must not pass."""
    container = redis_container(ci_deployment)
    test = container.attrs["Config"]["Healthcheck"]["Test"]
    assert test[0] == "CMD-SHELL"
    good = container.exec_run(["sh", "-c", test[1]])
    bad = container.exec_run(["sh", "-c", test[1].replace("/run/secrets/healthcheck", "/etc/hostname")])
    unauthenticated = container.exec_run(["sh", "-c", "redis-cli ping | grep -qx PONG"])
    assert (good.exit_code, bad.exit_code, unauthenticated.exit_code) == (0, 1, 1)


def test_port_in_use_is_refused_at_up(tmp_path: Path) -> None:
    profile = variant_profile("ci", tmp_path, "portclash", network={"port": 6389})
    secrets = load_secrets(profile, env=generated_env())
    holder = socket.socket()
    holder.bind(("127.0.0.1", 6389))
    holder.listen(1)
    try:
        with pytest.raises(BadInput, match=r"^network.port: 127.0.0.1:6389 is already in use"):
            deploy.up(profile, secrets)
        assert not project_containers(profile)
    finally:
        holder.close()
        deploy.down(profile, volumes=True)


def test_unpullable_image_is_refused(tmp_path: Path) -> None:
    profile = variant_profile("ci", tmp_path, "noimage", image={"ref": "redis-harness-missing.invalid/redis:0.0.0"})
    with pytest.raises(BadInput, match=r"^image.ref: .* cannot be pulled"):
        deploy.up(profile, load_secrets(profile, env=generated_env()))


def test_data_survives_down_and_up_and_down_volumes_removes_everything(tmp_path: Path) -> None:
    """The README's Uninstall runs `redis-harness down PROFILE --volumes`: the command, as shown."""
    profile = variant_profile("ci", tmp_path, "persist", network={"port": 6388})
    secrets = load_secrets(profile, env=generated_env())
    deployment = Deployment(profile, secrets, {})
    deploy.down(profile, volumes=True, take_over=True)  # one a killed run of another checkout left
    try:
        deploy.up(profile, secrets)
        as_user(deployment, "processing").set("processing:v1:calc:kept", "written before down")
        deploy.down(profile)
        assert docker_client().volumes.list(filters={"name": f"{profile.project}_data"})
        deploy.up(profile, secrets)
        assert as_user(deployment, "processing").get("processing:v1:calc:kept") == "written before down"
    finally:
        removed = run_cli("down", str(profile.source), "--volumes")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.strip() == f"down {profile.project} (data volume removed)"
    label = {"label": f"com.docker.compose.project={profile.project}"}
    client = docker_client()
    assert client.containers.list(all=True, filters=label) == []
    assert client.volumes.list(filters=label) == []
    assert client.networks.list(filters=label) == []


def test_ci_profile_takes_each_password_from_its_own_variable() -> None:
    """Each ACL user gets the value of its own variable (a mix-up would log services in as each
    other), and the derived internal passwords are none of them."""
    env = generated_env()
    secrets = load_secrets(load_profile("ci"), env=env)
    assert secrets.default.password == env["REDIS_PASSWORD"]
    assert secrets.admin.password == env["REDIS_ADMIN_PASSWORD"]
    for service in secrets.services:
        assert service.password == env[service.env]
    assert {s.user for s in secrets.services} == {"price", "processing", "acquisition"}
    derived = {secrets.derived(p) for p in ("healthcheck", "replication", "sentinel")}
    assert len(derived) == 3 and not derived & set(env.values())
