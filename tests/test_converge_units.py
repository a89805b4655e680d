"""Pure parts of converge: mirrors from /etc/apt, generations, the in-place write, image tag rules."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from redis_harness import paths
from redis_harness.deploy import apt_sources, generations, image
from redis_harness.deploy.desired import secrets_fingerprint
from redis_harness.deploy.plan import _container_rows
from redis_harness.errors import BadInput
from redis_harness.profile.credentials import load_secrets
from redis_harness.profile.model import Image
from redis_harness.render.conf_text import config_directives
from redis_harness.render.files import render, render_files

from .conftest import generated_env, variant_profile


def test_source_lines_reuse_the_machines_mirrors_in_both_formats(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("deb [arch=amd64] http://mirror.invalid/debian bookworm main\n")
    (tmp_path / "sources.list.d" / "sec.sources").write_text(
        "Types: deb\nURIs: http://security.invalid/debian-security\nSuites: bookworm-security\nComponents: main\n"
    )
    assert apt_sources.source_lines("bookworm", tmp_path) == [
        "deb http://mirror.invalid/debian bookworm main",
        "deb http://mirror.invalid/debian bookworm-updates main",
        "deb http://security.invalid/debian-security bookworm-security main",
    ]


def test_source_lines_refuse_a_machine_without_security_updates(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("deb http://mirror.invalid/debian bookworm main\n")
    with pytest.raises(BadInput, match="bookworm-security"):
        apt_sources.source_lines("bookworm", tmp_path)


def test_generations_keep_the_newest_and_find_the_one_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "STATE_DIR", tmp_path / "state")
    profile = variant_profile("ci", tmp_path, "cvgen")
    assert generations.latest(profile) is None
    for n in range(generations.KEEP + 2):
        generations.record(profile, {"redis.conf": f"maxmemory {n}\n"}, {"image_ref": "x", "secrets_hash": "h"})
    latest = generations.latest(profile)
    assert latest is not None and latest.number == generations.KEEP + 2
    before = generations.before(profile, latest.number)
    assert before is not None and before.files == {"redis.conf": f"maxmemory {generations.KEEP}\n"}
    assert len(list(generations.folder(profile).iterdir())) == generations.KEEP


def test_render_rewrites_files_in_the_same_directory(tmp_path: Path) -> None:
    """Containers mount the folder: it must stay the same directory while its files change."""
    profile = variant_profile("ci", tmp_path, "cvinplace")
    secrets = load_secrets(profile, env=generated_env())
    target = render(profile, secrets, tmp_path / "out")
    inode = target.stat().st_ino
    changed = variant_profile("ci", tmp_path, "cvinplace", memory={"maxmemory_ratio": 0.5})
    render(changed, secrets, target)
    assert target.stat().st_ino == inode
    assert (target / "redis.conf").read_text() == render_files(changed, secrets)["redis.conf"]


def test_conf_directives_read_like_config_get() -> None:
    assert config_directives('save "3600 1"\nsave "60 10"\nappenddirname "aof"\n# x\n') == {
        "save": "3600 1 60 10",
        "appenddirname": "aof",
    }


def test_secrets_fingerprint_tells_secrets_apart_and_shows_none(tmp_path: Path) -> None:
    profile = variant_profile("ci", tmp_path, "cvfp")
    env = generated_env()
    one, same = load_secrets(profile, env=env), load_secrets(profile, env=dict(env))
    other = load_secrets(profile, env={**env, "REDIS_PRICE_PASSWORD": env["REDIS_PRICE_PASSWORD"] + "x"})
    assert secrets_fingerprint(one) == secrets_fingerprint(same) != secrets_fingerprint(other)
    assert not any(p in secrets_fingerprint(one) for p in one.all_passwords())


def test_a_missing_non_default_harness_tag_is_refused_not_built() -> None:
    with pytest.raises(BadInput, match="only redis-harness/redis:7.0-bookworm is built on demand"):
        image.ensure(Image(ref="redis-harness/redis:7.0-bookwrom"))


def test_acl_list_order_of_single_commands_is_no_drift() -> None:
    """Redis 7.0 lists single commands in hash-table order, new with every process (seen after a
    `fault kill`): the same rules in another order are the same user; a rule less is not."""
    from redis_harness.deploy.plan import _acl_tokens

    before = "user price on #ab ~price:* resetchannels -@all +@string +get -select +ttl"
    after = "user price on #ab ~price:* resetchannels -@all +@string +ttl +get -select"
    assert _acl_tokens(before) == _acl_tokens(after)
    assert _acl_tokens(before) != _acl_tokens(after.replace(" -select", ""))


def test_source_lines_of_another_release_reuse_the_debian_mirrors_not_a_third_party_one(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "deb http://vendor.invalid/apt nodistro main\n"  # a third-party source with a bare suite
        "deb http://mirror.invalid/debian bookworm main\n"
        "deb http://mirror.invalid/debian bookworm-updates main\n"
        "deb http://security.invalid/debian-security bookworm-security main\n"
    )
    assert apt_sources.source_lines("trixie", tmp_path) == [
        "deb http://mirror.invalid/debian trixie main",
        "deb http://mirror.invalid/debian trixie-updates main",
        "deb http://security.invalid/debian-security trixie-security main",
    ]
    (tmp_path / "sources.list").write_text("deb http://vendor.invalid/apt nodistro main\n")
    with pytest.raises(BadInput, match="trixie"):
        apt_sources.source_lines("trixie", tmp_path)


def test_a_monitoring_container_is_compared_with_its_own_image() -> None:
    """Not with the nodes' image: every `up` of a monitored deployment recreated Prometheus, Alertmanager
    and the exporters, and a live password rotation was refused for those 'changes'."""
    desired = SimpleNamespace(profile=SimpleNamespace(project="p"), image_ref="redis-harness/redis:7.0-bookworm")
    container = SimpleNamespace(attrs={"Config": {"Image": "redis-harness/monitoring:bookworm"}, "HostConfig": {}})
    same = _container_rows("prometheus", container, {"image": "redis-harness/monitoring:bookworm"}, desired)
    assert [r for r in same if r[0] == "image"] == []
    other = _container_rows("prometheus", container, {"image": "redis-harness/monitoring:trixie"}, desired)
    assert [r for r in other if r[0] == "image"] == [
        ("image", "redis-harness/monitoring:bookworm", "redis-harness/monitoring:trixie")
    ]
