"""Secrets: where they come from, what is refused, and that only hashes leave memory."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dotenv import dotenv_values

from redis_harness.errors import BadInput
from redis_harness.profile.credentials import load_secrets, read_environment
from redis_harness.profile.env_template import create_dotenv
from redis_harness.profile.model import load_profile

from .conftest import AWKWARD, generated_env


def refused(env: dict[str, str], profile: str = "dev") -> str:
    with pytest.raises(BadInput) as info:
        load_secrets(load_profile(profile), env=env)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_generated_secrets_load_and_hash() -> None:
    env = generated_env()
    secrets = load_secrets(load_profile("prod"), env=env)
    assert secrets.admin.acl_hash == hashlib.sha256(env["REDIS_ADMIN_PASSWORD"].encode()).hexdigest()
    assert secrets.service("price").password == env["REDIS_PRICE_PASSWORD"]
    assert secrets.healthcheck_password not in env.values()


@pytest.mark.parametrize("var", ["REDIS_PASSWORD", "REDIS_ADMIN_PASSWORD", "REDIS_PRICE_PASSWORD"])
def test_missing_or_empty_password_is_refused(var: str) -> None:
    env = generated_env()
    del env[var]
    assert refused(env).startswith(f"{var}: not set")
    env[var] = ""
    assert refused(env).startswith(f"{var}: not set")


@pytest.mark.parametrize(
    "bad", ["line\nbreak-0123456789abcdef", "nul\0byte-0123456789abcdef", "cr\rx-0123456789abcdef"]
)
def test_password_with_newline_or_nul_is_refused(bad: str) -> None:
    env = generated_env() | {"REDIS_PASSWORD": bad}
    assert refused(env).startswith("REDIS_PASSWORD: contains a newline or NUL")


def test_weak_password_is_refused_in_prod_with_a_way_to_make_one() -> None:
    env = generated_env() | {"REDIS_ADMIN_PASSWORD": "correct-horse-battery"}  # 21 chars: fine for dev
    load_secrets(load_profile("dev"), env=env)
    message = refused(env, "prod")
    assert message.startswith("REDIS_ADMIN_PASSWORD: too weak") and "openssl rand -hex 32" in message
    assert refused(generated_env() | {"REDIS_PASSWORD": "a" * 40}, "prod").startswith("REDIS_PASSWORD: too weak")


def test_dotenv_values_are_literal_and_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("REDIS_PASSWORD='p@ss \"x$HOME #y'\nREDIS_ADMIN_PASSWORD=from-file\n")
    monkeypatch.setenv("REDIS_ADMIN_PASSWORD", "from-env")
    monkeypatch.delenv("REDIS_PASSWORD", raising=False)
    values = read_environment(dotenv)
    assert values["REDIS_PASSWORD"] == 'p@ss "x$HOME #y'
    assert values["REDIS_ADMIN_PASSWORD"] == "from-env"


def test_awkward_characters_are_accepted() -> None:
    env = generated_env()
    assert AWKWARD in env["REDIS_PASSWORD"]
    assert load_secrets(load_profile("dev"), env=env).default.password == env["REDIS_PASSWORD"]


def test_env_init_generates_strong_passwords_and_never_overwrites(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[1] / ".env.example"
    target = tmp_path / ".env"
    generated = create_dotenv(example, target)
    assert set(generated) >= {"REDIS_PASSWORD", "REDIS_ADMIN_PASSWORD", "REDIS_PRICE_PASSWORD"}
    assert os.stat(target).st_mode & 0o777 == 0o600
    values = read_environment(target)
    assert len(values["REDIS_ADMIN_PASSWORD"]) == 64 and values["REDIS_PASSWORD"] != values["REDIS_ADMIN_PASSWORD"]
    load_secrets(load_profile("prod"), env={k: v for k, v in values.items() if k.startswith("REDIS_")})
    before = target.read_text()
    assert create_dotenv(example, target) == []
    assert target.read_text() == before


def _env_init(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_HARNESS_ENV_FILE": str(tmp_path / ".env")}
    return subprocess.run(
        [sys.executable, "-m", "redis_harness.cli", "env", "init", *args], capture_output=True, text=True, env=env
    )


@pytest.mark.parametrize(("profile", "port"), [("ci", "6381"), ("ha", "6400"), ("prod", "6379")])
def test_env_init_writes_the_profiles_host_and_port(tmp_path: Path, profile: str, port: str) -> None:
    result = _env_init(tmp_path, profile)
    assert result.returncode == 0, result.stderr
    values = dotenv_values(tmp_path / ".env", interpolate=False)
    assert (values["REDIS_HOST"], values["REDIS_PORT"], values["REDIS_DB"]) == ("127.0.0.1", port, "0")


def test_env_init_refuses_an_unknown_profile_and_writes_nothing(tmp_path: Path) -> None:
    result = _env_init(tmp_path, "nosuch")
    assert result.returncode == 2 and result.stderr.startswith("redis-harness: profile: 'nosuch' not found")
    assert "Traceback" not in result.stderr and not (tmp_path / ".env").exists()
