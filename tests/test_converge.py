"""`up` converges a running deployment, one change at a time, and `plan` says so first.

Real containers: each change is made in the profile (or the secrets), `plan`
must list it, `up` must make it live (CONFIG GET, ACL GETUSER / AUTH, docker
inspect) with every key written before still there, and `plan` must be empty
afterwards. Live changes keep the container (same StartedAt).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets as pysecrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from docker.errors import ImageNotFound

from redis_harness.deploy.containers import project_containers
from redis_harness.deploy.engine import docker_client
from redis_harness.profile.model import profile_from_mapping

from .conftest import REPO

pytestmark = pytest.mark.integration

SECOND_TAG = "redis-harness/redis:cv-second-tag"
KEYS = 300


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / ".venv" / "bin" / "redis-harness"), *args], capture_output=True, text=True, env=env, timeout=300
    )


@dataclass
class Live:
    """A deployment under change: its profile file, its secrets, and the keys written into it."""

    path: Path
    raw: dict[str, Any]
    env: dict[str, str]
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def profile(self):
        return profile_from_mapping(self.raw, self.path)

    def write(self) -> None:
        self.path.write_text(yaml.safe_dump(self.raw))

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return cli(*args, str(self.path), env={**os.environ, **self.env})

    def container(self) -> Any:
        (found,) = [c for c in project_containers(self.profile) if c.labels["com.docker.compose.service"] == "redis"]
        return found

    def admin(self) -> redis.Redis:
        return self.client("admin")

    def client(self, user: str | None, password: str | None = None) -> redis.Redis:
        names = {None: "REDIS_PASSWORD", "admin": "REDIS_ADMIN_PASSWORD"}
        password = password or self.env[names.get(user, f"REDIS_{str(user).upper()}_PASSWORD")]
        profile = self.profile
        return redis.Redis(
            host=profile.network.host,
            port=profile.network.port,
            username=user,
            password=password,
            decode_responses=True,
            socket_timeout=5,
        )

    def assert_every_key_there(self) -> None:
        admin = self.admin()
        values = admin.mget(list(self.keys))
        assert values == list(self.keys.values()), "a key written before the change is gone"


def fresh_env() -> dict[str, str]:
    return {
        name: pysecrets.token_hex(24)
        for name in (
            "REDIS_PASSWORD",
            "REDIS_ADMIN_PASSWORD",
            "REDIS_PRICE_PASSWORD",
            "REDIS_PROCESSING_PASSWORD",
            "REDIS_ACQUISITION_PASSWORD",
        )
    }


def new_live(tmp: Path, name: str, port: int, **sections: Any) -> Live:
    raw = yaml.safe_load((REPO / "profiles" / "ci.yaml").read_text())
    raw["name"] = name
    raw["network"]["port"] = port
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    live = Live(path=tmp / f"{name}.yaml", raw=raw, env=fresh_env())
    live.write()
    return live


def started_at(live: Live) -> str:
    return live.container().attrs["State"]["StartedAt"]


def plan_json(live: Live) -> tuple[int, list[dict[str, str]]]:
    result = live.run("plan", "--json")
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)["changes"]


def change(live: Live, *, how: str, setting: str) -> tuple[str, str]:
    """Plan lists the change, `up` applies it, plan is empty after; (StartedAt before, after)."""
    rc, changes = plan_json(live)
    assert rc == 1, "plan must list the pending change"
    assert any(setting in c["setting"] and c["how"] == how for c in changes), changes
    before = started_at(live)
    result = live.run("up")
    assert result.returncode == 0, result.stderr
    rc, changes = plan_json(live)
    assert (rc, changes) == (0, []), "plan must be empty after up"
    live.assert_every_key_there()
    return before, started_at(live)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    deployment = new_live(tmp_path_factory.mktemp("converge"), "cvconv", 6491)
    deployment.run("down", "--volumes", "--take-over")
    result = deployment.run("up")
    assert result.returncode == 0, result.stderr
    admin = deployment.admin()
    deployment.keys = {f"price:v1:pair:{i}": f"value-{i}" for i in range(KEYS)}
    admin.mset(deployment.keys)
    try:
        yield deployment
    finally:
        deployment.run("down", "--volumes", "--take-over")
        with contextlib.suppress(ImageNotFound):  # the tag may never have been made
            docker_client().images.remove(SECOND_TAG)


def test_maxmemory_ratio_goes_in_live(live: Live) -> None:
    live.raw["memory"]["maxmemory_ratio"] = 0.5
    live.write()
    before, after = change(live, how="live", setting="maxmemory")
    assert int(live.admin().config_get("maxmemory")["maxmemory"]) == live.profile.memory.maxmemory_bytes
    assert live.profile.memory.maxmemory_bytes == 64 * 1024 * 1024
    assert before == after, "a live change must keep the container"


def test_policy_goes_in_live(live: Live) -> None:
    live.raw["memory"]["policy"] = "allkeys-lru"
    live.write()
    before, after = change(live, how="live", setting="maxmemory-policy")
    assert live.admin().config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lru"
    assert before == after


def test_a_new_service_user_and_its_rights_go_in_live(live: Live) -> None:
    live.raw["security"]["services"]["audit"] = {"password_env": "REDIS_AUDIT_PASSWORD"}
    live.env["REDIS_AUDIT_PASSWORD"] = pysecrets.token_hex(24)
    live.write()
    before, after = change(live, how="live", setting="ACL user audit")
    user = live.admin().acl_getuser("audit")
    assert "~audit:*" in user["keys"]
    audit = live.client("audit")
    assert audit.set("audit:v1:x:1", "ok")
    with pytest.raises(redis.exceptions.NoPermissionError):
        audit.get("price:v1:pair:1")
    assert before == after


def test_rights_changed_on_the_server_are_put_back(live: Live) -> None:
    live.admin().acl_setuser("price", commands=["+flushall"], keys=["*"])
    before, after = change(live, how="live", setting="ACL user price")
    user = live.admin().acl_getuser("price")
    assert user["keys"] == ["~price:*"]
    with pytest.raises(redis.exceptions.NoPermissionError):
        live.client("price").get("acquisition:v1:x:1")
    assert before == after


@pytest.mark.parametrize(
    "variable", ["REDIS_PASSWORD", "REDIS_PRICE_PASSWORD", "REDIS_PROCESSING_PASSWORD", "REDIS_ACQUISITION_PASSWORD"]
)
def test_a_rotated_password_goes_in_live(live: Live, variable: str) -> None:
    old = live.env[variable]
    live.env[variable] = pysecrets.token_hex(24)
    user = {"REDIS_PASSWORD": None}.get(variable, variable.removeprefix("REDIS_").removesuffix("_PASSWORD").lower())
    before, after = change(live, how="live", setting=f"ACL user {user or 'default'}")
    assert live.client(user).ping()
    with pytest.raises(redis.AuthenticationError):
        live.client(user, old).ping()
    assert before == after


def test_a_rotated_admin_password_restarts_the_same_container(live: Live) -> None:
    container_id = live.container().id
    old = live.env["REDIS_ADMIN_PASSWORD"]
    live.env["REDIS_ADMIN_PASSWORD"] = pysecrets.token_hex(24)
    before, after = change(live, how="restart", setting="ACL user admin")
    assert live.admin().ping()
    with pytest.raises(redis.AuthenticationError):
        live.client("admin", old).ping()
    assert live.container().id == container_id
    assert live.container().attrs["State"]["Health"]["Status"] == "healthy", "healthcheck reads the new secret"


def test_memory_limit_recreates_with_the_data(live: Live) -> None:
    live.raw["resources"]["memory"] = "160mb"
    live.write()
    before, after = change(live, how="recreate", setting="memory limit")
    assert live.container().attrs["HostConfig"]["Memory"] == 160 * 1024 * 1024
    assert int(live.admin().config_get("maxmemory")["maxmemory"]) == live.profile.memory.maxmemory_bytes
    assert before != after


def test_image_recreates_with_the_data(live: Live) -> None:
    docker_client().images.get(live.raw["image"]["ref"]).tag(SECOND_TAG)
    live.raw["image"]["ref"] = SECOND_TAG
    live.write()
    before, after = change(live, how="recreate", setting="image")
    assert live.container().attrs["Config"]["Image"] == SECOND_TAG
    assert before != after


def test_port_recreates_with_the_data(live: Live) -> None:
    live.raw["network"]["port"] = 6492
    live.write()
    before, after = change(live, how="recreate", setting="ports")
    bindings = live.container().attrs["HostConfig"]["PortBindings"]["6379/tcp"]
    assert bindings == [{"HostIp": "127.0.0.1", "HostPort": "6492"}]
    assert before != after
