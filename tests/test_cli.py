"""The command line: exit codes, one-line messages, and nothing written on bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import yaml

from .conftest import REPO, generated_env


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
    return subprocess.run(
        [sys.executable, "-m", "redis_harness.cli", *args],
        capture_output=True,
        text=True,
        # The repo's own .env must not fill in what a test leaves out.
        env={**base, "REDIS_HARNESS_ENV_FILE": "/nonexistent/.env", **(env if env is not None else generated_env())},
        cwd=REPO,
    )


def write_profile(tmp_path: Path, name: str, **changes: object) -> Path:
    raw = yaml.safe_load((REPO / "profiles" / "ci.yaml").read_text())
    raw["name"] = name
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        raw[section][key] = value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def assert_refused(result: subprocess.CompletedProcess[str], field: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"redis-harness: {field}"), lines[0]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"memory__polcy": "x"}, "memory.polcy: unknown key; did you mean 'policy'?"),
        ({"resources__memory": "1.5gb"}, "resources.memory:"),
        ({"memory__maxmemory_ratio": 0.95}, "memory.maxmemory_ratio:"),
        ({"memory__policy": "lru"}, "memory.policy:"),
        ({"memory__maxmemory": 0}, "memory.maxmemory:"),
        ({"network__host": "0.0.0.0"}, "network.host:"),
    ],
)
def test_bad_profile_exits_2_with_one_line_and_writes_nothing(tmp_path: Path, change: dict, field: str) -> None:
    name = "badinput"
    path = write_profile(tmp_path, name, **change)
    result = run_cli("render", str(path))
    assert_refused(result, field)
    assert not (REPO / "compose" / name).exists()


def test_missing_password_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    path = write_profile(tmp_path, "nopass")
    env = generated_env()
    del env["REDIS_PROCESSING_PASSWORD"]
    assert_refused(run_cli("render", str(path), env=env), "REDIS_PROCESSING_PASSWORD: not set")
    assert not (REPO / "compose" / "nopass").exists()


def test_render_and_check(tmp_path: Path) -> None:
    path = write_profile(tmp_path, "clicheck")
    env = generated_env()
    target = REPO / "compose" / "clicheck"
    try:
        assert run_cli("render", str(path), env=env).returncode == 0
        assert run_cli("render", str(path), "--check", env=env).returncode == 0
        changed = run_cli("render", str(path), "--check", env=generated_env())  # other passwords: users.acl differs
        assert changed.returncode == 1 and "users.acl" in changed.stdout
    finally:
        subprocess.run(["rm", "-rf", str(target)], check=True)


def test_unreachable_engine_says_how_to_start_it() -> None:
    env = generated_env() | {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    result = run_cli("status", "ci", env=env)
    assert_refused(result, "docker: engine not reachable")
    assert "bootstrap-host" in result.stderr


# --------------------------------------------------------------------------- refused profile and .env input


def assert_render_refused(path: Path, name: str, field: str, env: dict[str, str] | None = None) -> str:
    """`render` exits 2 with one line starting with field, and compose/<name>/ is not created."""
    result = run_cli("render", str(path), env=env)
    assert_refused(result, field)
    assert not (REPO / "compose" / name).exists()
    return result.stderr.strip()


def ci_text(name: str) -> str:
    text = (REPO / "profiles" / "ci.yaml").read_text()
    return text.replace("\nname: ci\n", f"\nname: {name}\n")


def test_an_empty_profile_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pmempty.yaml"
    path.write_text("# only a comment\n")
    assert "the profile is empty" in assert_render_refused(path, "pmempty", str(path))


def test_a_key_written_twice_is_refused_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "pmdup.yaml"
    text = ci_text("pmdup")
    path.write_text(text + "memory:\n  policy: noeviction\n")
    line = assert_render_refused(path, "pmdup", str(path))
    assert f"line {len(text.splitlines()) + 1}: key 'memory' appears twice in one mapping; keep one" in line


@pytest.mark.parametrize(
    ("yaml_line", "field"),
    [
        ("alerts:\n  miss_ratio: .inf", "alerts.miss_ratio: .inf and .nan"),
        ("ttl:\n  price: .nan", "ttl.price: .inf and .nan"),
        ("persistence:\n  rdb_save: [.inf]", "persistence.rdb_save[0]: .inf and .nan"),
        ("resources:\n  cpus: -.inf", "resources.cpus: .inf and .nan"),
    ],
)
def test_inf_and_nan_anywhere_are_refused(tmp_path: Path, yaml_line: str, field: str) -> None:
    path = tmp_path / "pminf.yaml"
    raw = yaml.safe_load(ci_text("pminf"))
    section = yaml_line.split(":")[0]
    del raw[section]
    path.write_text(yaml.safe_dump(raw) + yaml_line + "\n")
    assert_render_refused(path, "pminf", field)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {"resources__memory": "99999999999999999999gb"},
            "resources.memory: '99999999999999999999gb' is more than 1 TiB",
        ),
        ({"resources__memory": 2**70}, "resources.memory: 1180591620717411303424 is more than 1 TiB"),
        ({"alerts__slow_update": "99999999999h"}, "alerts.slow_update: 3.6e+14 s is more than Redis accepts"),
        ({"ttl__historical": "99999999999999999h"}, "ttl.historical: 3.6e+20 s is longer than Redis accepts"),
        ({"network__host": "::1"}, "network.host: ::1 is an IPv6 address, which the harness does not support"),
    ],
)
def test_values_redis_or_docker_cannot_take_are_refused(tmp_path: Path, change: dict, field: str) -> None:
    assert_render_refused(write_profile(tmp_path, "pmrange", **change), "pmrange", field)


def test_a_sentinel_timeout_past_what_sentinel_reads_is_refused(tmp_path: Path) -> None:
    raw = yaml.safe_load((REPO / "profiles" / "ha.yaml").read_text())
    raw["name"] = "pmsentinel"
    raw["sentinel"]["failover_timeout"] = "25d"  # 2,160,000,000 ms: atoi() would wrap it negative
    path = tmp_path / "pmsentinel.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert_render_refused(path, "pmsentinel", "sentinel.failover_timeout: 2160000000 ms is more than Sentinel accepts")


def test_nested_aliases_give_one_short_line(tmp_path: Path) -> None:
    path = tmp_path / "pmlaughs.yaml"
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    path.write_text("name: pmlaughs\n" + "\n".join(levels) + "\n")
    line = assert_render_refused(path, "pmlaughs", f"{path}: aliases expand to more than 10000 values")
    assert len(line) < 300


def test_a_yaml_syntax_error_is_one_short_line(tmp_path: Path) -> None:
    path = tmp_path / "pmsyntax.yaml"
    path.write_text(ci_text("pmsyntax") + 'extra: "' + "x" * 5000 + "\n  : [\n")
    line = assert_render_refused(path, "pmsyntax", f"{path}: line")
    assert "not valid YAML" in line and len(line) < 300


def test_a_long_bad_value_is_quoted_short(tmp_path: Path) -> None:
    line = assert_render_refused(write_profile(tmp_path, "pmlong", memory__policy="x" * 100_000), "pmlong", "memory")
    assert len(line) < 400


def test_a_binary_profile_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pmbinary.yaml"
    path.write_bytes(b"name: pmbinary\n\xff\xfe\x00\x01")
    assert "not UTF-8 text (byte 0xff at offset 15)" in assert_render_refused(path, "pmbinary", str(path))


def test_a_binary_env_file_is_refused(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_bytes(b"REDIS_PASSWORD=\xff\xfe\n")
    path = write_profile(tmp_path, "pmbinenv")
    assert_render_refused(path, "pmbinenv", f"{dotenv}: not UTF-8 text", env={"REDIS_HARNESS_ENV_FILE": str(dotenv)})


def test_an_unclosed_quote_in_env_is_named_not_reported_as_unset(tmp_path: Path) -> None:
    env = generated_env()
    dotenv = tmp_path / ".env"
    lines = [f"{k}={v}" for k, v in env.items() if k != "REDIS_ADMIN_PASSWORD"]
    dotenv.write_text("\n".join(lines) + f"\nREDIS_ADMIN_PASSWORD='{env['REDIS_ADMIN_PASSWORD']}\n")
    path = write_profile(tmp_path, "pmquote")
    line = assert_render_refused(
        path, "pmquote", f"{dotenv}: line {len(lines) + 1} cannot be read", env={"REDIS_HARNESS_ENV_FILE": str(dotenv)}
    )
    assert "unclosed quote" in line and "not set" not in line
    assert env["REDIS_ADMIN_PASSWORD"] not in line


@pytest.mark.parametrize("variable", ["REDIS_PASSWORD", "REDIS_PRICE_PASSWORD"])
def test_a_password_equal_to_the_admin_password_is_refused(tmp_path: Path, variable: str) -> None:
    env = generated_env()
    env[variable] = env["REDIS_ADMIN_PASSWORD"]
    line = assert_render_refused(write_profile(tmp_path, "pmsame"), "pmsame", f"{variable}: the same as", env=env)
    assert env["REDIS_ADMIN_PASSWORD"] not in line


def test_limits_above_the_host_are_refused_by_up_before_anything_is_written(tmp_path: Path) -> None:
    cpus = psutil.cpu_count() or 1
    if cpus >= 64:
        pytest.skip("the profile model allows at most 64 cpus; this host has as many")
    result = run_cli("up", str(write_profile(tmp_path, "pmhost", resources__cpus=float(cpus + 1))))
    assert_refused(result, f"resources.cpus: {cpus + 1} is more than this host's {cpus} CPUs")
    memory = write_profile(tmp_path, "pmhost", resources__memory="1024gb")
    assert_refused(run_cli("up", str(memory)), "resources.memory: 1024.0 GiB is more than this host's memory (")
    assert not (REPO / "compose" / "pmhost").exists()
    assert not (REPO / ".state" / "pmhost").exists()


def test_a_published_address_this_host_does_not_have_is_refused_by_up_and_plan(tmp_path: Path) -> None:
    path = write_profile(
        tmp_path,
        "netnsaddr",
        network__publish="host",
        network__host="198.18.99.99",  # RFC 2544's test range: on no real host
        network__port=6745,
        network__allow=["198.18.1.0/24"],
        security__tls={"enabled": True},
    )
    for command in ("up", "plan"):
        assert_refused(run_cli(command, str(path)), "network.host: 198.18.99.99 is not an address of this host (")
    assert not (REPO / "compose" / "netnsaddr").exists()
    assert not (REPO / ".state" / "netnsaddr").exists()


def test_a_second_file_with_the_same_name_cannot_take_the_deployment_over(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "pmclaim.yaml", tmp_path / "b" / "pmclaim.yaml"
    for path in (first, second):
        path.parent.mkdir()
        path.write_text(ci_text("pmclaim"))
    target = REPO / "compose" / "pmclaim"
    try:
        assert run_cli("render", str(first)).returncode == 0
        before = {p.name: p.read_bytes() for p in target.iterdir()}
        result = run_cli("render", str(second))
        assert_refused(result, f"name: 'pmclaim' in {second} is already the name of the deployment rendered from")
        assert str(first) in result.stderr and f"redis-harness down {first} --volumes" in result.stderr
        assert {p.name: p.read_bytes() for p in target.iterdir()} == before
        assert run_cli("render", str(first)).returncode == 0  # the file it came from renders as before
        first.unlink()  # moved away: the name is free again
        assert run_cli("render", str(second)).returncode == 0
        assert (target / ".profile-source").read_text() == f"{second}\n"
    finally:
        subprocess.run(["rm", "-rf", str(target), str(REPO / ".state" / "pmclaim")], check=True)
