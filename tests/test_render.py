"""Rendering: structure of the compose file, redis.conf and ACL file, and no plaintext secret."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from redis_harness.profile.credentials import load_secrets, sha256_hex
from redis_harness.profile.model import load_profile
from redis_harness.render import files as render_module
from redis_harness.render.acl import acl_users
from redis_harness.render.files import SOURCE_MARKER, differences, render, render_files

from .conftest import AWKWARD, generated_env, variant_profile


@pytest.fixture(scope="module")
def ci_files() -> tuple:
    env = generated_env()
    profile = load_profile("ci")
    secrets = load_secrets(profile, env=env)
    return profile, secrets, env, render_files(profile, secrets)


def conf_directives(text: str) -> dict[str, str]:
    pairs = (line.split(None, 1) for line in text.splitlines() if line.strip() and not line.startswith("#"))
    return {key: value for key, value in pairs}


def test_compose_service_is_hardened(ci_files: tuple) -> None:
    profile, _, _, files = ci_files
    compose = yaml.safe_load(files["docker-compose.yml"])
    assert compose["name"] == "redis-harness-ci"
    redis = compose["services"]["redis"]
    assert redis["image"] == profile.image.ref
    assert redis["user"] == "999:999"
    assert redis["read_only"] is True
    assert redis["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in redis["security_opt"]
    assert redis["mem_limit"] == profile.resources.memory_bytes == redis["memswap_limit"]
    assert redis["cpus"] == profile.resources.cpus
    assert redis["pids_limit"] == profile.resources.pids
    assert redis["restart"] == "unless-stopped"
    assert "privileged" not in redis and "network_mode" not in redis and "pid" not in redis
    assert "data-redis:/data" in redis["volumes"]


def test_port_is_published_on_loopback_only_and_internal_network_is_internal(ci_files: tuple) -> None:
    profile, _, _, files = ci_files
    compose = yaml.safe_load(files["docker-compose.yml"])
    assert compose["services"]["redis"]["ports"] == [f"127.0.0.1:{profile.network.port}:6379"]
    assert compose["networks"]["internal"]["internal"] is True
    edge = compose["networks"]["edge-redis"]["driver_opts"]
    assert edge["com.docker.network.bridge.host_binding_ipv4"] == "127.0.0.1"


def test_unpublished_profile_has_no_port_and_no_edge_network(tmp_path: Path) -> None:
    profile = variant_profile("ci", tmp_path, "hidden", network={"publish": "none"})
    compose = yaml.safe_load(render_files(profile, load_secrets(profile, env=generated_env()))["docker-compose.yml"])
    assert "ports" not in compose["services"]["redis"]
    assert set(compose["networks"]) == {"internal"}


def test_healthcheck_looks_for_pong_and_carries_no_password(ci_files: tuple) -> None:
    _, secrets, _, files = ci_files
    compose = yaml.safe_load(files["docker-compose.yml"])
    check = " ".join(compose["services"]["redis"]["healthcheck"]["test"])
    assert "grep -qx PONG" in check
    assert " -a " not in check and "/run/secrets/healthcheck" in check
    assert "environment" not in compose["services"]["redis"]
    assert compose["secrets"]["healthcheck"]["file"].endswith(".state/ci/healthcheck")


def test_redis_conf_prints_the_profile(ci_files: tuple) -> None:
    profile, _, _, files = ci_files
    conf = conf_directives(files["redis.conf"])
    assert conf["maxmemory"] == str(profile.memory.maxmemory_bytes)
    assert conf["maxmemory-policy"] == "volatile-lru"
    assert conf["protected-mode"] == "yes"
    assert conf["enable-debug-command"] == "no"
    assert conf["enable-module-command"] == "no"
    assert conf["enable-protected-configs"] == "no"
    assert conf["appendonly"] == "yes" and conf["appendfsync"] == "everysec"
    assert conf["save"] == '"3600 1 300 100 60 10000"'
    assert conf["dir"] == "/data"
    assert conf["aclfile"] == "/etc/redis-harness/users.acl"
    assert conf["slowlog-log-slower-than"] == "100000"
    assert conf["latency-monitor-threshold"] == "100"
    assert "requirepass" not in conf


def test_acl_file_has_hashes_and_the_expected_users(ci_files: tuple) -> None:
    profile, secrets, env, files = ci_files
    lines = files["users.acl"].splitlines()
    assert [line.split()[1] for line in lines] == [
        "default",
        "admin",
        "healthcheck",
        "price",
        "processing",
        "acquisition",
    ]
    assert f"#{sha256_hex(env['REDIS_PASSWORD'])}" in lines[0]
    assert all(" nopass" not in line and ">" not in line for line in lines)
    # ci's password-only clients get exactly price's rights (security.default_user: price).
    assert lines[0].split()[4:] == lines[3].split()[4:]
    assert lines[1].endswith("~* resetchannels +@all")  # admin publishes nowhere
    assert "resetkeys resetchannels ~price:* &price:* -@all +get " in lines[3]
    assert all("&*" not in line and "allchannels" not in line for line in lines)
    assert lines == [user.line for user in acl_users(profile, secrets)]


def test_no_plaintext_secret_in_any_rendered_file(ci_files: tuple) -> None:
    _, secrets, env, files = ci_files
    text = "\n".join(files.values())
    for password in [*env.values(), secrets.healthcheck_password, AWKWARD.strip()]:
        assert password not in text


def test_render_writes_atomically_and_check_detects_drift(tmp_path: Path) -> None:
    profile = variant_profile("ci", tmp_path, "atomic")
    secrets = load_secrets(profile, env=generated_env())
    target = tmp_path / "out"
    render(profile, secrets, target)
    assert sorted(p.name for p in target.iterdir()) == [SOURCE_MARKER, "docker-compose.yml", "redis.conf", "users.acl"]
    assert (target / SOURCE_MARKER).read_text() == f"{profile.source.resolve()}\n"
    assert differences(profile, secrets, target) == []
    (target / "redis.conf").write_text("maxmemory 0\n")
    assert differences(profile, secrets, target) == ["redis.conf"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no staging folder left behind"


def test_failed_render_leaves_the_previous_deployment_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    profile = variant_profile("ci", tmp_path, "keep")
    secrets = load_secrets(profile, env=generated_env())
    target = tmp_path / "out"
    render(profile, secrets, target)
    before = {p.name: p.read_text() for p in target.iterdir()}
    broken = tmp_path / "templates"
    broken.mkdir()
    for name in ("docker-compose.yml.j2", "users.acl.j2"):
        (broken / name).write_text((render_module.paths.TEMPLATES_DIR / name).read_text())
    (broken / "redis.conf.j2").write_text("maxmemory {{ profile.memory.no_such_field }}\n")
    monkeypatch.setattr(render_module.paths, "TEMPLATES_DIR", broken)
    with pytest.raises(Exception, match="no_such_field"):
        render(profile, secrets, target)
    assert {p.name: p.read_text() for p in target.iterdir()} == before
