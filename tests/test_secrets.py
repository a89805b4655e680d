"""Secrets: where they come from, what is refused, and that only hashes leave memory."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dotenv import dotenv_values

from redis_harness import paths
from redis_harness.errors import BadInput
from redis_harness.profile.credentials import load_secrets, read_environment
from redis_harness.profile.env_template import create_dotenv, dotenv_value, service_dotenv
from redis_harness.profile.model import load_profile

from .conftest import AWKWARD, REPO, generated_env


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


@pytest.mark.parametrize(
    ("profile", "host", "port"),
    [("ci", "127.0.0.1", "6381"), ("ha", "127.0.0.1", "6400"), ("prod", "10.0.4.10", "6379")],
)
def test_env_init_writes_the_profiles_host_and_port(tmp_path: Path, profile: str, host: str, port: str) -> None:
    result = _env_init(tmp_path, profile)
    assert result.returncode == 0, result.stderr
    values = dotenv_values(tmp_path / ".env", interpolate=False)
    assert (values["REDIS_HOST"], values["REDIS_PORT"], values["REDIS_DB"]) == (host, port, "0")


def test_env_init_refuses_an_unknown_profile_and_writes_nothing(tmp_path: Path) -> None:
    result = _env_init(tmp_path, "nosuch")
    assert result.returncode == 2 and result.stderr.startswith("redis-harness: profile: 'nosuch' not found")
    assert "Traceback" not in result.stderr and not (tmp_path / ".env").exists()


# --- one checkout, several profiles' secrets ----------------------------------------------------


def checkout_copy(tmp_path: Path) -> Path:
    """What paths.ROOT needs for `env init` and secrets: the profiles and .env.example."""
    root = tmp_path / "checkout"
    shutil.copytree(REPO / "profiles", root / "profiles")
    shutil.copy(REPO / ".env.example", root / ".env.example")
    return root


def in_checkout(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")} | {"REDIS_HARNESS_HOME": str(root)}
    return subprocess.run([sys.executable, "-m", "redis_harness.cli", *args], capture_output=True, text=True, env=env)


def test_each_profile_gets_its_own_file_naming_only_its_own_endpoint(tmp_path: Path) -> None:
    root = checkout_copy(tmp_path)
    for profile, name in (("dev", ".env"), ("ci", ".env.ci"), ("ha", ".env.ha")):
        result = in_checkout(root, "env", "init", *([profile] if profile != "dev" else []))
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"created {name} (mode 0600) for {profile} at 127.0.0.1:"), result.stdout
        assert len(result.stdout.rstrip()) <= 100
    ports = {".env": "6380", ".env.ci": "6381", ".env.ha": "6400"}
    for name, port in ports.items():
        # Passwords are random hex and may hold any digits: the rest of the file is what names ports.
        text = "\n".join(ln for ln in (root / name).read_text().splitlines() if "_PASSWORD=" not in ln)
        assert os.stat(root / name).st_mode & 0o777 == 0o600
        assert dotenv_values(root / name)["REDIS_PORT"] == port
        others = [p for n, p in ports.items() if n != name]
        assert not any(p in text for p in others), f"{name} names another profile's port:\n{text}"
        assert f"127.0.0.1:{port})" in text  # the comment names this profile's endpoint
    # The check above can fail: without the profile's name the example's comment (dev's port) stays.
    unnamed = tmp_path / "unnamed.env"
    create_dotenv(root / ".env.example", unnamed, {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6381"})
    assert "6380" in unnamed.read_text()
    passwords = {n: dotenv_values(root / n)["REDIS_ADMIN_PASSWORD"] for n in ports}
    assert len(set(passwords.values())) == 3  # three deployments, three sets of secrets
    again = in_checkout(root, "env", "init", "ci")
    assert again.stdout.strip() == ".env.ci exists; left as it is"
    assert dotenv_values(root / ".env.ci")["REDIS_ADMIN_PASSWORD"] == passwords[".env.ci"]


def test_a_profile_reads_its_own_file_else_dot_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = checkout_copy(tmp_path)
    monkeypatch.setattr(paths, "ROOT", root)
    monkeypatch.delenv(paths.ENV_FILE_VARIABLE, raising=False)
    assert paths.dotenv_path("ci") == root / ".env"  # none of its own yet: .env, as before
    (root / ".env.ci").write_text("x=1\n")
    assert paths.dotenv_path("ci") == root / ".env.ci"
    assert paths.dotenv_path("dev") == root / ".env" and paths.dotenv_target("dev") == root / ".env"
    # `.env.example` is the committed template: never a profile's secrets file.
    assert paths.dotenv_target("example") == root / ".env.example-profile"
    monkeypatch.setenv(paths.ENV_FILE_VARIABLE, str(tmp_path / "one.env"))
    assert paths.dotenv_path("ci") == tmp_path / "one.env" == paths.dotenv_target("ci")


def test_a_missing_secret_names_the_profiles_file_and_the_command_that_makes_it(tmp_path: Path) -> None:
    root = checkout_copy(tmp_path)
    (root / ".env.ci").write_text("REDIS_HOST=127.0.0.1\n")
    result = in_checkout(root, "render", "ci")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "redis-harness: REDIS_PASSWORD: not set; add it to .env.ci (`redis-harness env init ci` generates one) "
        "or export it"
    )


def test_service_settings_are_the_services_own_pair(tmp_path: Path) -> None:
    root = checkout_copy(tmp_path)
    assert in_checkout(root, "env", "init", "ci").returncode == 0
    result = in_checkout(root, "env", "init", "ci", "--service", "price")
    assert result.returncode == 0, result.stderr
    printed = dotenv_values(stream=io.StringIO(result.stdout), interpolate=False)
    stored = dotenv_values(root / ".env.ci", interpolate=False)
    assert printed == {
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": "6381",
        "REDIS_DB": "0",
        "REDIS_USERNAME": "price",
        "REDIS_PASSWORD": stored["REDIS_PRICE_PASSWORD"],
    }
    assert printed["REDIS_PASSWORD"] != stored["REDIS_PASSWORD"]  # not default's: the WRONGPASS trap
    internal = in_checkout(root, "env", "init", "ci", "--service", "price", "--internal")
    assert dotenv_values(stream=io.StringIO(internal.stdout))["REDIS_HOST"] == "redis"
    assert dotenv_values(stream=io.StringIO(internal.stdout))["REDIS_PORT"] == "6379"
    assert not (root / ".env.price").exists() and sorted(p.name for p in root.glob(".env*")) == [
        ".env.ci",
        ".env.example",
    ]


def test_service_settings_refuse_a_user_that_is_not_a_service(tmp_path: Path) -> None:
    root = checkout_copy(tmp_path)
    for name in ("admin", "default", "nope"):
        result = in_checkout(root, "env", "init", "--service", name)
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr.startswith(f"redis-harness: --service: '{name}' is not a service of the dev profile")
    assert in_checkout(root, "env", "init", "--internal").returncode == 2


def test_an_awkward_password_survives_the_service_settings() -> None:
    text = service_dotenv({"REDIS_PASSWORD": AWKWARD, "REDIS_USERNAME": "price"}, "heading")
    assert dotenv_values(stream=io.StringIO(text), interpolate=False)["REDIS_PASSWORD"] == AWKWARD
    assert dotenv_value("0123abcdef") == "0123abcdef"


def test_service_settings_on_a_tls_deployment_name_the_ca_and_the_services_certificate(tmp_path: Path) -> None:
    """What a service needs over TLS, under the names the client library and tests/node read: the CA
    bundle and (client_auth required) the certificate the harness issues for that service."""
    root = checkout_copy(tmp_path)
    raw = yaml.safe_load((root / "profiles" / "ci.yaml").read_text())
    raw["name"], raw["security"]["tls"] = "tlsci", {"enabled": True, "client_auth": "required"}
    (root / "profiles" / "tlsci.yaml").write_text(yaml.safe_dump(raw))
    assert in_checkout(root, "env", "init", "tlsci").returncode == 0
    printed = dotenv_values(stream=io.StringIO(in_checkout(root, "env", "init", "tlsci", "--service", "price").stdout))
    state = root / ".state" / "tlsci"
    assert {k: v for k, v in printed.items() if k.startswith("REDIS_TLS_")} == {
        "REDIS_TLS_CA_FILE": str(state / "tls-ca.crt"),
        "REDIS_TLS_CERT_FILE": str(state / "tls-client-price.crt"),
        "REDIS_TLS_KEY_FILE": str(state / "tls-client-price.key"),
    }
    # client_auth none: the CA only; a plaintext profile (ci): none of them
    raw["security"]["tls"]["client_auth"] = "none"
    (root / "profiles" / "tlsci.yaml").write_text(yaml.safe_dump(raw))
    ca_only = in_checkout(root, "env", "init", "tlsci", "--service", "price").stdout
    assert [k for k in dotenv_values(stream=io.StringIO(ca_only)) if k.startswith("REDIS_TLS")] == ["REDIS_TLS_CA_FILE"]
    assert in_checkout(root, "env", "init", "ci").returncode == 0
    assert "REDIS_TLS_" not in in_checkout(root, "env", "init", "ci", "--service", "price").stdout
