"""Network namespaces that play other hosts on this machine (tests, and verify's refused-source probe).

A `Hosts` context makes, and always removes, by name prefix:
- `add_address(a)`: an address of "this host" (on `lo`, labelled `lo:<prefix>`), e.g. the
  published address of a publish: host deployment;
- `namespace(name, subnet, reach)`: a namespace joined to this host by a veth pair, taking the
  subnet's second address (the host side the first), with a route to each address in `reach`
  (only those: nothing else is routed anywhere).

Only RFC 2544's benchmarking range 198.18.0.0/15 is used for what is made here, so nothing can
collide with a real network. `cleanup(prefix)` removes what a killed earlier run left behind.
"""

from __future__ import annotations

import contextlib
import ipaddress
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

TEST_RANGE = ipaddress.IPv4Network("198.18.0.0/15")
LABEL_MAX = 15  # an interface name or address label, as Linux allows
TIMEOUT_S = 30


class NetnsError(RuntimeError):
    """An `ip` command failed (not root, no netns support)."""


def _ip(*args: str, check: bool = True, namespace: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = ["ip", *args] if namespace is None else ["ip", "netns", "exec", namespace, "ip", *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S)
    if check and done.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done


def in_test_range(network: str) -> bool:
    return ipaddress.IPv4Network(network, strict=False).subnet_of(TEST_RANGE)


@dataclass(frozen=True)
class Namespace:
    """One namespace: its name, its own address, and the host side of its link."""

    name: str
    address: str
    gateway: str

    def run(
        self, argv: list[str], *, env: dict[str, str] | None = None, timeout_s: float = TIMEOUT_S
    ) -> subprocess.CompletedProcess[str]:
        """A command inside the namespace (its output captured; the caller judges the exit code)."""
        return subprocess.run(
            ["ip", "netns", "exec", self.name, *argv], capture_output=True, text=True, timeout=timeout_s, env=env
        )

    def python(
        self, code: str, *args: str, env: dict[str, str] | None = None, timeout_s: float = TIMEOUT_S
    ) -> subprocess.CompletedProcess[str]:
        """A Python snippet (sys.argv[1:] = args) inside the namespace, with this interpreter and its packages."""
        return self.run([sys.executable, "-c", code, *args], env=env, timeout_s=timeout_s)

    def connects(self, host: str, port: int, timeout_s: float = 1.0) -> bool:
        """One TCP connection attempt from inside: True when the handshake completes."""
        probe = (
            "import socket,sys\n"
            f"s=socket.socket();s.settimeout({timeout_s})\n"
            f"sys.exit(0 if s.connect_ex(({host!r},{port}))==0 else 1)"
        )
        return self.python(probe, timeout_s=timeout_s + 10).returncode == 0


@dataclass
class Hosts:
    """Namespaces and host addresses made under one prefix, removed on close (also after a failure)."""

    prefix: str
    _namespaces: list[str] = field(default_factory=list)
    _addresses: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.prefix.isalnum() or len(self.prefix) > 6:
            raise ValueError("prefix: up to 6 letters or digits (interface names are at most 15 characters)")

    def __enter__(self) -> Hosts:
        cleanup(self.prefix)  # a killed earlier run's leftovers under the same prefix
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def label(self) -> str:
        return f"lo:{self.prefix}"

    def add_address(self, address: str) -> str:
        """`address` becomes one of this host's own (on lo, as a /32)."""
        if not in_test_range(address):
            raise ValueError(f"{address} is outside {TEST_RANGE}")
        _ip("addr", "add", f"{address}/32", "dev", "lo", "label", self.label)
        self._addresses.append(address)
        return address

    def namespace(self, name: str, subnet: str, reach: Iterable[str]) -> Namespace:
        """A namespace on its own link to this host: `subnet`'s first address on the host side,
        its second inside; routes to the `reach` addresses (host addresses) through the link."""
        network = ipaddress.IPv4Network(subnet)
        if not network.subnet_of(TEST_RANGE):
            raise ValueError(f"{subnet} is outside {TEST_RANGE}")
        full = f"{self.prefix}-{name}"
        if len(full) > LABEL_MAX:
            raise ValueError(f"{full} is longer than {LABEL_MAX} characters")
        gateway, address = (str(a) for a in list(network.hosts())[:2])
        _ip("netns", "add", full)
        self._namespaces.append(full)
        _ip("link", "add", full, "type", "veth", "peer", "name", "eth0", "netns", full)
        _ip("addr", "add", f"{gateway}/{network.prefixlen}", "dev", full)
        _ip("link", "set", full, "up")
        _ip("addr", "add", f"{address}/{network.prefixlen}", "dev", "eth0", namespace=full)
        _ip("link", "set", "eth0", "up", namespace=full)
        _ip("link", "set", "lo", "up", namespace=full)
        for target in reach:
            _ip("route", "add", f"{target}/32", "via", gateway, namespace=full)
        return Namespace(full, address, gateway)

    def close(self) -> None:
        for full in self._namespaces:
            _ip("link", "del", full, check=False)
            _ip("netns", "del", full, check=False)
        for address in self._addresses:
            _ip("addr", "del", f"{address}/32", "dev", "lo", check=False)
        self._namespaces.clear()
        self._addresses.clear()


def cleanup(prefix: str) -> list[str]:
    """Remove every namespace, veth and lo address made under `prefix`; returns what was removed."""
    removed = []
    listed = _ip("netns", "list", check=False).stdout
    for line in listed.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(f"{prefix}-"):
            _ip("link", "del", name, check=False)
            _ip("netns", "del", name, check=False)
            removed.append(f"netns {name}")
    for line in _ip("-o", "link", "show", check=False).stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith(f"{prefix}-"):
            _ip("link", "del", name, check=False)
            removed.append(f"link {name}")
    for line in _ip("-4", "-o", "addr", "show", "dev", "lo", check=False).stdout.splitlines():
        words = line.replace("\\", " ").split()  # `ip -o` ends each record's first part with a backslash
        if f"lo:{prefix}" in words and "inet" in words:
            cidr = words[words.index("inet") + 1]
            with contextlib.suppress(NetnsError):
                _ip("addr", "del", cidr, "dev", "lo")
                removed.append(f"address {cidr}")
    return removed


@contextlib.contextmanager
def other_hosts(prefix: str) -> Iterator[Hosts]:
    with Hosts(prefix) as hosts:
        yield hosts
