"""Which resolvers the firewall lets containers' DNS reach, and where those rules sit (no iptables run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from redis_harness.deploy import firewall


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(firewall, "DAEMON_JSON", tmp_path / "daemon.json")
    monkeypatch.setattr(firewall, "RESOLV_CONFS", (tmp_path / "resolv.conf", tmp_path / "resolved.conf"))
    return tmp_path


def test_host_resolv_conf(host: Path) -> None:
    (host / "resolv.conf").write_text("# comment\nnameserver 10.0.0.2\nnameserver ::1\nnameserver 10.0.0.2\nsearch x\n")
    assert firewall.docker_resolvers() == ["10.0.0.2"]


def test_loopback_host_resolver_means_systemd_resolveds_upstream(host: Path) -> None:
    (host / "resolv.conf").write_text("nameserver 127.0.0.53\n")
    (host / "resolved.conf").write_text("nameserver 192.0.2.53\n")
    assert firewall.docker_resolvers() == ["192.0.2.53"]


def test_daemon_dns_wins(host: Path) -> None:
    (host / "daemon.json").write_text('{"dns": ["198.51.100.1", "not-an-address"]}')
    (host / "resolv.conf").write_text("nameserver 10.0.0.2\n")
    assert firewall.docker_resolvers() == ["198.51.100.1"]


def test_unreadable_daemon_json_and_no_resolver(host: Path) -> None:
    (host / "daemon.json").write_text("{broken")
    assert firewall.docker_resolvers() == []


def test_dns_rules_come_before_the_drops() -> None:
    rules = firewall.rules(["10.0.0.2"])
    forward = [" ".join(r.args) for r in rules if r.chain == firewall.FORWARD_CHAIN]
    dns = [i for i, r in enumerate(forward) if "53" in r]
    drops = [i for i, r in enumerate(forward) if r.endswith(("DROP", "REJECT"))]
    assert len(dns) == 4 and max(dns) < min(drops)
    assert all("10.0.0.2" in forward[i] for i in dns)
    assert not any("53" in " ".join(r.args) for r in firewall.rules([]))
