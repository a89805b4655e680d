"""Which resolvers the firewall lets containers' DNS reach, where those rules sit, and a publish: host
deployment's allow list as rules (no iptables run)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from redis_harness.deploy import firewall
from redis_harness.profile.model import Profile, load_profile, profile_from_mapping

REPO = Path(__file__).resolve().parents[1]


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


def published(name: str = "netnsu", allow: tuple[str, ...] = ("198.18.1.0/24",), **network: object) -> Profile:
    raw = yaml.safe_load((REPO / "profiles" / "ci.yaml").read_text())
    raw["name"] = name
    raw["network"] = {"publish": "host", "host": "198.18.0.1", "port": 6740, "allow": list(allow), **network}
    raw["security"]["tls"] = {"enabled": True}
    return profile_from_mapping(raw, Path(f"{name}.yaml"))


def test_the_published_chain_is_jumped_to_for_dnat_traffic_before_any_drop() -> None:
    forward = [" ".join(r.args) for r in firewall.rules([]) if r.chain == firewall.FORWARD_CHAIN]
    jump = forward.index(f"-m conntrack --ctstate DNAT -j {firewall.PUBLISHED_CHAIN}")
    drops = [i for i, r in enumerate(forward) if r.endswith(("DROP", "REJECT"))]
    assert 0 < jump < min(drops)


def test_allow_rules_accept_each_allowed_network_to_each_published_port_by_original_destination() -> None:
    profile = published(allow=("198.18.1.0/24", "10.0.4.0/24"))
    rules = firewall.allow_rules(profile)
    chain = firewall.deployment_chain(profile)
    assert chain == "RHP-netnsu" and {r.chain for r in rules} == {chain}
    described = [" ".join(r.args) for r in rules]
    assert described == [
        f"-p tcp -m conntrack --ctorigsrc {source} --ctorigdst 198.18.0.1 --ctorigdstport 6740 -j ACCEPT"
        for source in ("198.18.1.0/24", "10.0.4.0/24")
    ]


def test_every_node_and_sentinel_port_has_its_rules() -> None:
    raw = yaml.safe_load((REPO / "profiles" / "ha.yaml").read_text())
    raw["network"] = {"publish": "host", "host": "198.18.0.1", "port": 6740, "allow": ["198.18.1.0/24"]}
    raw["security"]["tls"] = {"enabled": True}
    profile = profile_from_mapping(raw, Path("ha.yaml"))
    ports = {r.args[r.args.index("--ctorigdstport") + 1] for r in firewall.allow_rules(profile)}
    assert ports == {str(n.host_port) for n in profile.nodes} and len(ports) == len(profile.nodes) > 1


def test_loopback_and_unpublished_profiles_have_no_allow_rules() -> None:
    assert firewall.allow_rules(load_profile("ci")) == ()
    raw = yaml.safe_load((REPO / "profiles" / "ci.yaml").read_text())
    raw["network"] = {"publish": "none"}
    assert firewall.allow_rules(profile_from_mapping(raw, Path("x.yaml"))) == ()


def test_a_long_name_gets_a_chain_name_iptables_takes() -> None:
    long_one, other = published("a" * 41), published("a" * 40 + "b")
    names = {firewall.deployment_chain(long_one), firewall.deployment_chain(other)}
    assert len(names) == 2 and all(len(n) <= 28 and n.startswith("RHP-") for n in names)
