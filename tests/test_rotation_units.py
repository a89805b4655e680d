"""Password rotation, the parts that need no server: previous values, ACL lines with two hashes,
which plan rows a rotation may carry, and what of sentinel.conf it sets live."""

from __future__ import annotations

import pytest

from redis_harness.cli.common import note_previous_passwords
from redis_harness.deploy.plan import Change, Plan, _rotation_alone, _without_rotated_lines
from redis_harness.errors import BadInput
from redis_harness.profile.credentials import load_secrets, sha256_hex
from redis_harness.profile.model import load_profile
from redis_harness.render.acl import acl_users, sentinel_acl_users

from .conftest import generated_env


def test_a_services_previous_password_stays_accepted_beside_the_new() -> None:
    env = generated_env()
    env["REDIS_PRICE_PASSWORD_PREVIOUS"] = "an-older-price-password-0123456789"
    secrets = load_secrets(load_profile("ha"), env=env)
    price = next(u for u in acl_users(load_profile("ha"), secrets) if u.name == "price")
    assert price.password_hashes == (
        sha256_hex(env["REDIS_PRICE_PASSWORD"]),
        sha256_hex(env["REDIS_PRICE_PASSWORD_PREVIOUS"]),
    )
    assert price.line.count(" #") == 2
    assert env["REDIS_PRICE_PASSWORD_PREVIOUS"] in secrets.all_passwords(), "scanned for like any password"


def test_the_admins_previous_password_only_logs_in_it_is_never_rendered() -> None:
    env = generated_env()
    env["REDIS_ADMIN_PASSWORD_PREVIOUS"] = "the-admin-password-it-runs-with-0123456789"
    profile = load_profile("ha")
    secrets = load_secrets(profile, env=env)
    previous = secrets.previous_admin()
    assert previous is not None and previous.admin.password == env["REDIS_ADMIN_PASSWORD_PREVIOUS"]
    rendered = [u.line for u in acl_users(profile, secrets) + sentinel_acl_users(secrets)]
    old_hashes = {sha256_hex(env["REDIS_ADMIN_PASSWORD_PREVIOUS"])} | {
        sha256_hex(previous.derived(p)) for p in ("healthcheck", "replication", "sentinel", "sentinel-peer")
    }
    assert not [line for line in rendered if any(h in line for h in old_hashes)]
    assert all(line.count(" #") <= 1 for line in rendered)
    assert previous.derived("replication") in secrets.all_passwords()


def test_a_previous_value_equal_to_the_current_one_is_no_rotation() -> None:
    env = generated_env()
    env["REDIS_ADMIN_PASSWORD_PREVIOUS"] = env["REDIS_ADMIN_PASSWORD"]
    assert load_secrets(load_profile("ha"), env=env).previous_admin() is None


def test_a_services_previous_password_equal_to_the_admins_is_refused() -> None:
    env = generated_env()
    env["REDIS_PRICE_PASSWORD_PREVIOUS"] = env["REDIS_ADMIN_PASSWORD"]
    with pytest.raises(BadInput, match="^REDIS_PRICE_PASSWORD_PREVIOUS: the same as REDIS_ADMIN_PASSWORD"):
        load_secrets(load_profile("ha"), env=env)


def test_a_rotation_refuses_to_ride_with_other_changes() -> None:
    rows = [
        Change("redis-0", "admin and internal passwords", "accepts the previous admin password only", "new", "live"),
        Change("redis-0", "ACL user replication", "hash 1", "hash 2", "live"),
        Change("redis-0", "masterauth", "(secret)", "(another secret)", "live"),
        Change("(all)", "secret file replication.conf", "sha256 a", "sha256 b", "live"),
    ]
    alone = Plan(changes=list(rows), rotation=True)
    _rotation_alone(alone)
    assert alone.refusal == ""
    mixed = Plan(changes=[*rows, Change("redis-0", "maxmemory-policy", "allkeys-lru", "volatile-lru", "live")])
    mixed.rotation = True
    _rotation_alone(mixed)
    assert mixed.refusal.startswith("up: the admin password rotates live, and 1 other change(s) are pending (redis-0")
    tls = Plan(changes=[*rows, Change("(all)", "secret file tls-ca.crt", "a", "b", "live")], rotation=True)
    _rotation_alone(tls)
    assert tls.refusal, "a certificate is no password: it does not ride with a rotation"


def test_a_rotation_sets_sentinel_users_live_and_nothing_else() -> None:
    conf = "port 26379\nsentinel down-after-milliseconds m 2200\nuser admin on #aa +@all\n"
    rotated = conf.replace("#aa", "#bb")
    assert _without_rotated_lines(conf) == _without_rotated_lines(rotated)
    assert _without_rotated_lines(conf) != _without_rotated_lines(rotated.replace("port 26379", "port 26380"))


def test_up_and_plan_say_what_each_previous_password_still_does(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    env = generated_env()
    env["REDIS_ADMIN_PASSWORD_PREVIOUS"] = "the-admin-password-it-ran-with-0123456789"
    env["REDIS_ACQUISITION_PASSWORD_PREVIOUS"] = "an-older-acquisition-password-0123456789"
    secrets = load_secrets(load_profile("ha"), env=env)
    note_previous_passwords(secrets, in_sync=False)
    assert capsys.readouterr().err == "", "nothing while a change is pending"
    note_previous_passwords(secrets, in_sync=True)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "note: every node runs with the new REDIS_ADMIN_PASSWORD; remove REDIS_ADMIN_PASSWORD_PREVIOUS"
    assert lines[1].startswith("note: REDIS_ACQUISITION_PASSWORD_PREVIOUS keeps acquisition's old password accepted")
    assert all(len(line) <= 100 for line in lines) and len(lines) == 3
