"""Target profiles (a Redis the harness did not deploy): the model, bad input, refusals, secrets, and the
pure parts of load, monitor and verify on a target. The real servers are in test_target_integration.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from redis_harness.errors import BadInput
from redis_harness.load import run as load_run
from redis_harness.load.scenarios import get_scenario
from redis_harness.monitor.alerts import evaluate as evaluate_alerts
from redis_harness.profile.credentials import TargetSecrets, load_secrets, secrets_for, target_secrets
from redis_harness.profile.model import Alerts, Profile, load_profile, profile_from_mapping
from redis_harness.report.gates import Gate, evaluate, unjudgeable, verdict
from redis_harness.report.junit import junit
from redis_harness.verify.audit import Audit, check_transport

from .test_cli import run_cli
from .test_cli_errors import assert_one_line, tree

SERVICES = {"price": {"password_env": "REDIS_PRICE_PASSWORD"}}


def target(**fields: Any) -> dict[str, Any]:
    return {"name": "external-t", "target": {"address": "127.0.0.1:6390", "services": SERVICES, **fields}}


def refused(raw: dict[str, Any]) -> str:
    with pytest.raises(BadInput) as caught:
        profile_from_mapping(raw, Path("t.yaml"))
    return str(caught.value)


def test_the_shipped_example_is_a_standalone_target_with_an_optional_admin() -> None:
    profile = load_profile("external")
    assert profile.is_target and profile.target is not None
    assert profile.target.kind == "standalone" and profile.target.seeds == (("127.0.0.1", 6390),)
    assert profile.target.services() == (("price", "price", "REDIS_PRICE_PASSWORD"),)
    assert profile.target.admin is not None and profile.target.admin.password_env == "REDIS_ADMIN_PASSWORD"
    assert [n.service for n in profile.data_nodes] == ["127.0.0.1:6390"] and profile.sentinel_nodes == ()


def test_a_deployment_profile_is_not_a_target() -> None:
    assert load_profile("dev").target is None and not load_profile("dev").is_target


def test_sentinel_and_cluster_targets() -> None:
    sentinel = target(address=None, sentinels=["10.0.0.5:26379", "sentinel.internal:26379"], master_name="mymaster")
    profile = profile_from_mapping(sentinel, Path("t.yaml"))
    assert profile.target is not None and profile.target.kind == "sentinel"
    assert profile.target.where == "Sentinel master 'mymaster' via 10.0.0.5:26379,sentinel.internal:26379"
    cluster = profile_from_mapping(target(address=None, cluster=["10.0.0.5:7000", "10.0.0.6:7000"]), Path("t.yaml"))
    assert cluster.target is not None and cluster.target.kind == "cluster" and len(cluster.data_nodes) == 2


@pytest.mark.parametrize(
    ("raw", "phrases"),
    [
        ({**target(), "image": {"ref": "redis:7.2.5"}}, ("image:", "remove image", "ttl, alerts")),
        ({**target(), "topology": "sentinel"}, ("topology:", "no deployment settings")),
        (target(address=None), ("target.address:", "exactly one of", "none is given")),
        (target(cluster=["a:1"]), ("target.cluster:", "address and cluster are given")),
        (target(address="127.0.0.1"), ("target.address:", "host:port")),
        (target(address="127.0.0.1:70000"), ("target.address:", "from 1 to 65535")),
        (target(address="::1:6379"), ("target.address:", "IPv6")),
        (target(address="bad host:1"), ("target.address:", "not a host name")),
        (target(address=None, sentinels=["a:1"]), ("target.master_name:", "add master_name")),
        (target(address=None, sentinels="a:1", master_name="m"), ("target.sentinels:", "not a list")),
        (target(master_name="m"), ("target.master_name:", "Sentinel target")),
        (target(tls={"ca_file": "ca.crt", "cert_file": "c.crt"}), ("target.tls.key_file:", "add key_file")),
        (target(tls={"cert_file": "c.crt", "key_file": "c.key"}), ("target.tls.ca_file:", "missing")),
        (target(services={}), ("target.services:", "empty")),
        (target(services={"Bad Name": {}}), ("target.services.Bad Name:", "not a usable")),
        (target(services={"admin": {}}), ("target.services.admin:", "not a usable")),
        (target(services={"price": {"password_env": "lower"}}), ("target.services.price.password_env:",)),
        (target(admin={"user": "admin"}), ("target.admin.password_env:", "missing")),
        (target(adress="x:1"), ("target.adress:", "did you mean 'address'")),
        (target(eviction_policy="lru"), ("target.eviction_policy:",)),
    ],
)
def test_bad_target_is_one_line_naming_the_field(raw: dict[str, Any], phrases: tuple[str, ...]) -> None:
    message = refused(raw)
    assert "\n" not in message
    for phrase in phrases:
        assert phrase in message, message


def test_bad_target_from_the_command_line_is_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "external-bad.yaml"
    path.write_text(yaml.safe_dump({**target(), "network": {"port": 6391}}))
    before = tree(tmp_path)
    assert_one_line(run_cli("load", str(path), "--scenario", "smoke"), 2, "network:", "remove network")
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    "args", [("up",), ("down",), ("rollback",), ("render",), ("plan",), ("status",), ("fault", "kill")]
)
def test_commands_that_need_the_harness_deployment_refuse_a_target(tmp_path: Path, args: tuple[str, ...]) -> None:
    path = tmp_path / "external-t.yaml"
    path.write_text(yaml.safe_dump(target()))
    before = tree(tmp_path)
    result = run_cli(args[0], str(path), *args[1:])
    assert_one_line(result, 2, "is a target (127.0.0.1:6390)", "needs the harness's own deployment")
    assert tree(tmp_path) == before


def test_bench_on_a_target_without_its_admin_refuses_before_anything_is_written(tmp_path: Path) -> None:
    """bench works on a target with its admin (tests/test_target_integration.py); without one it refuses."""
    path = tmp_path / "external-t.yaml"
    path.write_text(yaml.safe_dump(target()))
    before = tree(tmp_path)
    result = run_cli("bench", str(path), "--report", str(tmp_path / "run"))
    assert_one_line(result, 2, "target.admin: bench creates a temporary ACL user")
    assert tree(tmp_path) == before


def test_a_deployment_profile_still_reaches_those_commands() -> None:
    # The broken variant of the refusal above: a profile without target: is not refused by it.
    result = run_cli("render", "dev", "--out", "/nonexistent/never")
    assert "is a target" not in result.stderr


def profile_of(raw: dict[str, Any]) -> Profile:
    return profile_from_mapping(raw, Path("t.yaml"))


def test_target_secrets_need_each_service_password_and_take_the_admin_when_set() -> None:
    profile = profile_of(target(admin={"user": "boss", "password_env": "BOSS_PW"}))
    with pytest.raises(BadInput, match="REDIS_PRICE_PASSWORD: not set"):
        target_secrets(profile, {})
    without = target_secrets(profile, {"REDIS_PRICE_PASSWORD": "short"})  # the target's own rules decide strength
    assert without.admin is None and without.login("price") == ("price", "short")
    both = target_secrets(profile, {"REDIS_PRICE_PASSWORD": "p", "BOSS_PW": "b"})
    assert both.admin is not None and both.login("boss") == ("boss", "b")
    with pytest.raises(BadInput, match="REDIS_PRICE_PASSWORD: contains a newline"):
        target_secrets(profile, {"REDIS_PRICE_PASSWORD": "a\nb"})


def test_a_service_may_log_in_as_another_acl_user() -> None:
    profile = profile_of(target(services={"price": {"user": "default", "password_env": "REDIS_PASSWORD"}}))
    secrets = target_secrets(profile, {"REDIS_PASSWORD": "pw"})
    assert secrets.login("price") == ("default", "pw") and secrets.service("price").user == "price"
    with pytest.raises(BadInput, match="no service user 'processing'"):
        secrets.login("processing")


def test_secrets_for_dispatches_and_load_secrets_refuses_a_target() -> None:
    profile = profile_of(target())
    assert isinstance(secrets_for(profile, {"REDIS_PRICE_PASSWORD": "pw"}), TargetSecrets)
    with pytest.raises(BadInput, match="is a target"):
        load_secrets(profile, {})


@pytest.mark.parametrize(("scenario", "fault"), [("eviction", None), ("recovery", None), ("failover", None),
                                                  ("smoke", "kill")])  # fmt: skip
def test_load_refuses_what_would_change_or_evict_a_target(scenario: str, fault: str | None) -> None:
    options = load_run.LoadOptions(fault=fault)
    with pytest.raises(BadInput, match="is a target"):
        load_run.check_options(profile_of(target()), get_scenario(scenario), options)
    load_run.check_options(profile_of(target()), get_scenario("smoke"), load_run.LoadOptions())  # allowed


def test_gates_without_info_or_container_are_not_judged_and_do_not_decide_the_run() -> None:
    names = ("error_rate", "memory", "no_oom_kill", "eviction_rate")
    why = unjudgeable(names, info=False, container=False)
    assert set(why) == {"memory", "no_oom_kill", "eviction_rate"}
    assert unjudgeable(names, info=True, container=True) == {}
    report = {"commands": {"GET": {"count": 10, "errors": 0, "p99_us": 1}}, "server": {}}
    gates = evaluate(report, Alerts(), ("error_rate", "memory"), {"memory": why["memory"]})
    assert [g.judged for g in gates] == [True, False] and verdict(gates)
    # The broken variant: a judged gate that failed still fails the run, a not-judged one beside it or not.
    failed = [Gate("error_rate", False, 1.0, 0.01, "x"), *gates[1:]]
    assert not verdict(failed) and not verdict(gates[1:])  # nothing judged: nothing passed
    xml = junit({"profile": "p", "scenario": "smoke", "duration_s": 1}, gates)
    assert 'skipped="1"' in xml and 'failures="0"' in xml and "<skipped" in xml


def test_alerts_whose_command_was_denied_are_not_available() -> None:
    figures = {"memory": {"ratio": None}, "nodes_down": [], "not_available": ["slowlog", "info"]}
    states = {s.name: s for s in evaluate_alerts(figures, Alerts())}
    assert not states["slow_updates"].available and not states["memory"].available
    assert states["down"].available and states["memory"].as_json()["available"] is False
    states = {s.name: s for s in evaluate_alerts({**figures, "not_available": []}, Alerts())}
    assert states["memory"].available and "available" not in states["memory"].as_json()


def test_plaintext_to_a_target_off_the_host_is_a_finding() -> None:
    secrets = TargetSecrets(services=(), logins={})
    away = Audit(profile_of(target(address="10.255.255.1:6379")), secrets)
    assert check_transport(away).status == "fail"
    near = Audit(profile_of(target()), secrets)
    assert check_transport(near).status == "pass"


@pytest.mark.parametrize(
    "args", [("load", "--scenario", "smoke"), ("monitor", "--once", "--json"), ("verify",), ("verify", "--json")]
)
def test_a_target_that_does_not_answer_is_one_line_exit_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    path = tmp_path / "external-t.yaml"
    path.write_text(yaml.safe_dump(target(address="127.0.0.1:6719")))  # nothing listens there
    before = tree(tmp_path)
    result = run_cli(args[0], str(path), *args[1:], env={"REDIS_PRICE_PASSWORD": "pw"})
    assert_one_line(result, 2, "target: 127.0.0.1:6719 does not answer")
    assert tree(tmp_path) == before and result.stdout == ""


def test_a_target_service_password_missing_is_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "external-t.yaml"
    path.write_text(yaml.safe_dump(target()))
    assert_one_line(run_cli("verify", str(path), env={}), 2, "REDIS_PRICE_PASSWORD: not set")
