"""Pure parsers the checks share: redis.conf directives, ACL rules, /proc, cgroups, sockets, the healthcheck.

Unit-tested without containers; infra_tests/ applies them to what it reads from the running ones.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis_harness.profile.credentials import sha256_hex

# --------------------------------------------------------------------------- ACL


@dataclass(frozen=True)
class AclEntry:
    """One ACL user, reduced to what decides access."""

    name: str
    enabled: bool
    nopass: bool
    hashes: frozenset[str]
    key_patterns: frozenset[str]
    channel_patterns: frozenset[str]
    command_rules: tuple[str, ...]
    selectors: tuple[str, ...] = ()
    other: tuple[str, ...] = ()

    def summary(self, units: Mapping[str, CommandUnit] | None = None) -> str:
        parts = ["on" if self.enabled else "off"]
        hashes = ",".join(sorted(h[:8] for h in self.hashes))
        parts.append("nopass" if self.nopass else f"hash {hashes or 'none'}")
        parts.append("keys " + (" ".join(sorted(self.key_patterns)) or "none"))
        parts.append("channels " + (" ".join(sorted(self.channel_patterns)) or "none"))
        if units is not None:
            parts.append(f"{len(allowed_commands(self.command_rules, units))} commands")
        return ", ".join(parts)


def parse_acl_line(line: str) -> AclEntry:
    """An ACL LIST line (or a users.acl line) applied rule by rule, like ACL SETUSER does."""
    tokens = _acl_tokens(line)
    if len(tokens) < 2 or tokens[0] != "user":
        raise ValueError(f"not an ACL user line: {line[:60]!r}")
    name = tokens[1]
    enabled, nopass = False, False
    hashes: set[str] = set()
    keys: set[str] = set()
    channels: set[str] = set()
    commands: list[str] = []
    selectors: list[str] = []
    other: list[str] = []
    for token in tokens[2:]:
        if token == "on":
            enabled = True
        elif token == "off":
            enabled = False
        elif token == "nopass":
            nopass, hashes = True, set()
        elif token == "resetpass":
            nopass, hashes = False, set()
        elif token.startswith("#"):
            hashes.add(token[1:].lower())
            nopass = False
        elif token.startswith(">"):
            hashes.add(sha256_hex(token[1:]))
            nopass = False
        elif token.startswith(("<", "!")):
            hashes.discard(sha256_hex(token[1:]) if token[0] == "<" else token[1:].lower())
        elif token == "allkeys" or token.startswith(("~", "%")):
            keys.add("~*" if token == "allkeys" else token)
        elif token == "resetkeys":
            keys.clear()
        elif token == "allchannels" or token.startswith("&"):
            channels.add("&*" if token == "allchannels" else token)
        elif token == "resetchannels":
            channels.clear()
        elif token in ("allcommands", "nocommands") or token[0] in "+-":
            commands.append(token)
        elif token.startswith("("):
            selectors.append(token)
        elif token == "reset":
            enabled, nopass = False, False
            hashes, keys, channels, commands, selectors = set(), set(), set(), [], []
        else:
            other.append(token)
    return AclEntry(
        name=name,
        enabled=enabled,
        nopass=nopass,
        hashes=frozenset(hashes),
        key_patterns=frozenset(keys),
        channel_patterns=frozenset(channels),
        command_rules=tuple(commands),
        selectors=tuple(selectors),
        other=tuple(other),
    )


def _acl_tokens(line: str) -> list[str]:
    """Split on spaces, keeping a selector `( ... )` as one token."""
    tokens: list[str] = []
    depth = 0
    for word in line.split():
        if depth:
            tokens[-1] += " " + word
        else:
            tokens.append(word)
        depth += word.count("(") - word.count(")")
    return tokens


@dataclass(frozen=True)
class CommandUnit:
    """A command or subcommand as ACL rules see it: each has its own permission bit."""

    arity: int
    categories: frozenset[str]


def command_units(command_table: Mapping[str, Any]) -> dict[str, CommandUnit]:
    """`COMMAND` (as redis-py parses it) -> every command and `parent|sub` with its ACL categories."""
    units: dict[str, CommandUnit] = {}
    for name, info in command_table.items():
        units[str(name).lower()] = CommandUnit(int(info["arity"]), frozenset(info.get("acl_categories") or ()))
        for sub in info.get("subcommands") or ():
            # A subcommand arrives as the raw reply: name, arity, flags, first, last, step, categories, …
            units[str(sub[0]).lower()] = CommandUnit(int(sub[1]), frozenset(sub[6]))
    return units


def allowed_commands(rules: Iterable[str], units: Mapping[str, CommandUnit]) -> frozenset[str]:
    """The units a sequence of command rules allows, applied in order as Redis does.

    Redis 7.0 writes the same permissions differently than it reads them (ACL
    LIST expands categories into commands), so two rule lists are compared by
    what they allow on this server's command table, not as text.
    """
    allowed: set[str] = set()
    for rule in rules:
        if rule in ("allcommands", "+@all"):
            allowed = set(units)
            continue
        if rule in ("nocommands", "-@all"):
            allowed.clear()
            continue
        grant, target = rule[0] == "+", rule[1:].lower()
        if target.startswith("@"):
            matched = {name for name, unit in units.items() if target in unit.categories}
        elif "|" in target:
            matched = {target}  # one subcommand (or a first-argument rule)
        else:
            matched = {name for name in units if name == target or name.startswith(target + "|")}
        if grant:
            allowed |= matched
        else:
            allowed -= matched
    return frozenset(allowed)


def acl_differences(expected: AclEntry, found: AclEntry, units: Mapping[str, CommandUnit]) -> list[str]:
    """What differs between the profile's user and the live one; [] when they grant the same."""
    diffs = []
    if found.enabled != expected.enabled:
        diffs.append("on" if found.enabled else "off")
    if found.nopass != expected.nopass:
        diffs.append("nopass" if found.nopass else "password required")
    if found.hashes != expected.hashes:
        diffs.append("password hashes differ")
    if found.key_patterns != expected.key_patterns:
        diffs.append("keys " + (" ".join(sorted(found.key_patterns)) or "none"))
    if found.channel_patterns != expected.channel_patterns:
        diffs.append("channels " + (" ".join(sorted(found.channel_patterns)) or "none"))
    if sorted(found.other) != sorted(expected.other):
        diffs.append("flags " + (" ".join(found.other) or "none"))
    if found.selectors != expected.selectors:
        diffs.append("selectors " + (" ".join(found.selectors) or "none"))
    extra = allowed_commands(found.command_rules, units) - allowed_commands(expected.command_rules, units)
    missing = allowed_commands(expected.command_rules, units) - allowed_commands(found.command_rules, units)
    if extra:
        diffs.append("also allows " + some_names(extra))
    if missing:
        diffs.append("denies " + some_names(missing))
    return diffs


def some_names(names: Iterable[str], limit: int = 5) -> str:
    ordered = sorted(names)
    more = f" (+{len(ordered) - limit} more)" if len(ordered) > limit else ""
    return " ".join(ordered[:limit]) + more


def dryrun_argv(unit: str, arity: int, key: str = "x") -> list[str]:
    """Arguments for `ACL DRYRUN user …` that satisfy the unit's arity.

    DRYRUN checks arity and permissions only and never executes, so padding
    with a placeholder is safe even for FLUSHALL or SHUTDOWN.
    """
    parts = unit.split("|")
    return parts + [key] * max(0, abs(arity) - len(parts))


# --------------------------------------------------------------------------- /proc, cgroups, sockets


def proc_status(text: str) -> dict[str, str]:
    """/proc/<pid>/status as a mapping of field -> raw value."""
    fields = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip()] = value.strip()
    return fields


def ids_of(status: Mapping[str, str], field_name: str) -> list[int]:
    """Uid/Gid line: real, effective, saved, filesystem."""
    return [int(v) for v in status.get(field_name, "").split()]


def capability_mask(status: Mapping[str, str], field_name: str) -> int:
    return int(status[field_name], 16)


def root_mount_options(mounts_text: str) -> list[str]:
    """Options of the mount at `/` in /proc/<pid>/mounts (the last one wins, as mounts stack)."""
    options: list[str] = []
    for line in mounts_text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1] == "/":
            options = parts[3].split(",")
    return options


def cgroup_limit(text: str) -> int | None:
    """A cgroup limit file (v1 bytes or v2 `max`); None when unlimited."""
    value = text.strip()
    if value in ("max", "-1", ""):
        return None
    number = int(value)
    # cgroup v1 writes "unlimited" as the largest page-aligned 64-bit value.
    return None if number >= 2**62 else number


def cgroup_cpus(quota_period: str) -> float | None:
    """CPU limit in cores from `QUOTA PERIOD` (v2 cpu.max, or v1 files joined); None when unlimited."""
    quota, period = quota_period.split()
    if quota in ("max", "-1"):
        return None
    return int(quota) / int(period)


def _decode_proc_address(hex_address: str) -> str:
    """/proc/net/tcp{,6} addresses: 32-bit words in host (little-endian) byte order."""
    raw = bytes.fromhex(hex_address)
    swapped = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(swapped))


def listening_sockets(proc_net_tcp: str) -> list[tuple[str, int]]:
    """(local address, port) of every LISTEN socket in a /proc/net/tcp or tcp6 table."""
    sockets = []
    for line in proc_net_tcp.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 4 or parts[3] != "0A":  # 0A = TCP_LISTEN
            continue
        address, _, port_hex = parts[1].partition(":")
        sockets.append((_decode_proc_address(address), int(port_hex, 16)))
    return sockets


def listening_addresses(proc_net_tcp: str, port: int) -> list[str]:
    """Local addresses with a LISTEN socket on `port` in a /proc/net/tcp or tcp6 table."""
    return [address for address, listening in listening_sockets(proc_net_tcp) if listening == port]


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def thp_mode(text: str) -> str:
    """The selected mode in /sys/kernel/mm/transparent_hugepage/enabled: `always [madvise] never`."""
    match = re.search(r"\[(\w+)\]", text)
    return match.group(1) if match else text.strip()


# --------------------------------------------------------------------------- secrets

PEM_LINE = 64  # base64 characters on every full line of a PEM body


def pem_body_lines(text: str) -> list[str]:
    """The full base64 lines of a PEM text (a private key): any one of them found elsewhere is the key leaking,
    whether the text was copied whole, joined into one line or escaped into JSON."""
    return [line for line in text.splitlines() if len(line) == PEM_LINE and not line.startswith("-----")]


# --------------------------------------------------------------------------- healthcheck


SECRET_FILE_RE = re.compile(r"/run/secrets/[\w.-]+")


def healthcheck_without_credentials(test: Sequence[str]) -> str:
    """The healthcheck command as a shell line, with every mounted secret read as empty.

    Run against the live server it gets a NOAUTH/WRONGPASS answer: a healthcheck
    that still passes then cannot tell a working server from a refusing one.
    """
    kind, *rest = test
    if kind == "CMD-SHELL":
        command = rest[0]
    elif kind == "CMD":
        command = shlex.join(rest)
    else:
        raise ValueError(f"healthcheck test {test!r} has no command")
    return SECRET_FILE_RE.sub("/dev/null", command)
