"""The network attacks of the review against a real deployment, with and without the host's rules.

- A neighbour that routes a container's bridge address through this host
  (played by a network namespace joined to the host by a veth pair, routing
  the deployment's subnets via the host) must not reach Redis.
- Containers must not open connections to the host or to anything outside.
- A name Docker does not know (a stopped node's) must fail fast inside a container:
  Sentinels and replicas look up a dead primary's name on their event loop.

Each is shown working with the rules taken out (the weakened variant), then
refused with them in. Only addresses on this machine; one connection attempt each.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from redis_harness.deploy import firewall
from redis_harness.deploy.containers import project_containers
from redis_harness.deploy.engine import docker_client

from .conftest import REPO, Deployment, deployed, variant_profile

pytestmark = pytest.mark.integration

LISTENER_PORT = 6525
NS = f"secns{os.getpid() % 10000}"
VETH_HOST, VETH_NS = f"vs{os.getpid() % 10000}h", f"vs{os.getpid() % 10000}n"
HOST_SIDE, NS_SIDE = "10.253.77.1", "10.253.77.2"


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {result.stderr.strip()}")
    return result


@pytest.fixture(scope="module")
def secnet(tmp_path_factory: pytest.TempPathFactory, secret_env: dict[str, str]) -> Iterator[Deployment]:
    firewall.ensure_rules()
    profile = variant_profile("ci", tmp_path_factory.mktemp("secnet"), "secnet", network={"port": 6518})
    with deployed(profile, secret_env) as deployment:
        yield deployment
    firewall.ensure_rules()


def _networks(deployment: Deployment) -> dict[str, dict[str, Any]]:
    """Docker network name -> {subnet, gateway, containers: {container name: address}}."""
    client = docker_client()
    found: dict[str, dict[str, Any]] = {}
    for container in project_containers(deployment.profile):
        for name, net in container.attrs["NetworkSettings"]["Networks"].items():
            if name not in found:
                ipam = client.networks.get(name).attrs["IPAM"]["Config"][0]
                found[name] = {"subnet": ipam["Subnet"], "gateway": ipam["Gateway"], "containers": {}}
            found[name]["containers"][container.name] = net["IPAddress"]
    return found


@pytest.fixture
def neighbour(secnet: Deployment) -> Iterator[str]:
    """A namespace that routes the deployment's subnets through this host, like a machine next door."""
    sh("ip", "netns", "add", NS)
    try:
        sh("ip", "link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_NS)
        sh("ip", "link", "set", VETH_NS, "netns", NS)
        sh("ip", "addr", "add", f"{HOST_SIDE}/30", "dev", VETH_HOST)
        sh("ip", "link", "set", VETH_HOST, "up")
        sh("ip", "netns", "exec", NS, "ip", "addr", "add", f"{NS_SIDE}/30", "dev", VETH_NS)
        sh("ip", "netns", "exec", NS, "ip", "link", "set", VETH_NS, "up")
        sh("ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up")
        for net in _networks(secnet).values():
            sh("ip", "netns", "exec", NS, "ip", "route", "add", net["subnet"], "via", HOST_SIDE)
        yield NS
    finally:
        sh("ip", "link", "del", VETH_HOST, check=False)
        sh("ip", "netns", "del", NS, check=False)


def _reachable_from(namespace: str, address: str, port: int) -> bool:
    """One TCP connection attempt from inside the namespace (1 s)."""
    probe = (
        "import socket,sys\ns=socket.socket();s.settimeout(1)\n"
        f"sys.exit(0 if s.connect_ex(({address!r},{port}))==0 else 1)"
    )
    return sh("ip", "netns", "exec", namespace, "python3", "-c", probe, check=False).returncode == 0


def _redis_addresses(deployment: Deployment) -> list[str]:
    return [address for net in _networks(deployment).values() for address in net["containers"].values() if address]


def test_a_neighbour_routing_to_the_bridge_address_cannot_reach_redis(secnet: Deployment, neighbour: str) -> None:
    targets = _redis_addresses(secnet)
    assert targets
    port = secnet.profile.network.container_port
    firewall.remove_rules()
    try:
        weakened = [t for t in targets if _reachable_from(neighbour, t, port)]
    finally:
        firewall.ensure_rules()
    assert weakened, "without the rules the neighbour should reach the edge address (Docker 20.10 forwards it)"
    reached = [t for t in targets if _reachable_from(neighbour, t, port)]
    assert reached == [], f"reached {reached} from a routed neighbour"


def test_uninstalling_the_rules_leaves_the_weakened_host_and_setup_closes_it_again(
    secnet: Deployment, neighbour: str
) -> None:
    """`python -m redis_harness.deploy.firewall --remove` (README, Uninstall) takes the jumps and the
    chains out, so the neighbour gets through again; setup's run puts everything back."""
    targets = _redis_addresses(secnet)
    port = secnet.profile.network.container_port
    remove = [".venv/bin/python", "-m", "redis_harness.deploy.firewall", "--remove"]
    try:
        removed = subprocess.run(remove, cwd=REPO, capture_output=True, text=True, timeout=60)
        assert removed.returncode == 0, removed.stderr
        assert sh("iptables", "-n", "-L", firewall.FORWARD_CHAIN, check=False).returncode != 0
        assert sh("iptables", "-n", "-L", firewall.INPUT_CHAIN, check=False).returncode != 0
        assert len(firewall.missing_rules()) == len(firewall.rules())
        assert any(_reachable_from(neighbour, t, port) for t in targets)
    finally:
        restored = subprocess.run(remove[:-1], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert restored.returncode == 0, restored.stderr
    assert firewall.missing_rules() == []
    assert not any(_reachable_from(neighbour, t, port) for t in targets)


class Listener:
    """A TCP listener on every host address that counts who connects."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.peers: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except OSError:
                continue
            self.peers.append(peer[0])
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


def _host_addresses() -> list[str]:
    """This machine's own non-loopback IPv4 addresses (the "outside" a container may not reach)."""
    out = sh("ip", "-4", "-o", "addr", "show").stdout
    addresses = [line.split()[3].split("/")[0] for line in out.splitlines()]
    return [a for a in addresses if not ipaddress.ip_address(a).is_loopback]


def _egress_attempts(deployment: Deployment, targets: list[str]) -> None:
    for container in project_containers(deployment.profile):
        for target in targets:
            container.exec_run(["sh", "-c", f"timeout 2 redis-cli -h {target} -p {LISTENER_PORT} ping"])


def test_containers_cannot_connect_to_the_host_or_outside(secnet: Deployment) -> None:
    gateways = [net["gateway"] for net in _networks(secnet).values()]
    targets = sorted(set(gateways) | set(_host_addresses()))
    listener = Listener(LISTENER_PORT)
    try:
        firewall.remove_rules()
        try:
            _egress_attempts(secnet, targets)
        finally:
            firewall.ensure_rules()
        weakened = list(listener.peers)
        listener.peers.clear()
        _egress_attempts(secnet, targets)
        guarded = list(listener.peers)
    finally:
        listener.close()
    assert weakened, "without the rules a container should reach a host listener"
    assert guarded == [], f"containers connected to the host from {guarded}"


def _lookup_s(container: Any) -> float:
    """Seconds a lookup of a name no container has takes in `container` (capped at 4 s)."""
    started = time.monotonic()
    container.exec_run(["timeout", "4", "getent", "hosts", "redis-node-that-is-gone"])
    return time.monotonic() - started


def test_an_absent_nodes_name_fails_fast(secnet: Deployment) -> None:
    """With DNS to the host's resolvers blocked, the lookup hangs (Sentinel went into TILT and
    never failed over); with the rules as shipped it is answered at once."""
    container = next(c for c in project_containers(secnet.profile) if "redis" in c.name)
    firewall.ensure_rules(resolvers=[])
    try:
        blocked = _lookup_s(container)
    finally:
        firewall.ensure_rules()
    shipped = _lookup_s(container)
    assert blocked > 3.5, f"the blocked variant answered in {blocked:.1f} s: the test shows nothing"
    assert shipped < 1.0, f"a gone node's name took {shipped:.1f} s to fail (resolvers {firewall.docker_resolvers()})"


def test_firewall_rules_are_idempotent(secnet: Deployment) -> None:
    assert firewall.ensure_rules() == []
    listed = sh("iptables", "-S", "DOCKER-USER").stdout
    assert listed.count(f"-j {firewall.FORWARD_CHAIN}") == 1
    assert firewall.missing_rules() == []


def test_verify_names_missing_firewall_rules(secnet: Deployment, tmp_path_factory: pytest.TempPathFactory) -> None:
    """verify's host_firewall_closes_the_bridges fails with the rules taken out and passes with them."""
    from .test_verify import verify_outcomes

    tmp = tmp_path_factory.mktemp("fwverify")
    firewall.remove_rules()
    try:
        weakened = verify_outcomes(secnet.profile, secnet.env, tmp, "-k", "firewall")
    finally:
        firewall.ensure_rules()
    guarded = verify_outcomes(secnet.profile, secnet.env, tmp, "-k", "firewall")
    assert weakened == {"host_firewall_closes_the_bridges": "fail"}
    assert guarded == {"host_firewall_closes_the_bridges": "pass"}
