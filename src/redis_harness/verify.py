"""`redis-harness verify`: prove the running containers match their profile.

The checks live in infra_tests/ (pytest + pytest-testinfra with the docker://
backend, the Docker SDK and redis-py); this module runs them in-process,
collects what each one expected and found, prints one table and maps the
outcome to an exit code: 0 all passed, 1 a check failed, 2 the profile is
invalid or the deployment is not running.

The pure helpers below (ACL and /proc parsing, rule evaluation, the table)
are shared by infra_tests/ and unit-tested without containers.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import shlex
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from . import paths
from .client import endpoint
from .deploy import service_container
from .errors import BadInput
from .profile import Profile, load_profile
from .secrets import load_secrets, sha256_hex

INFRA_TESTS_DIR = paths.ROOT / "infra_tests"
PROFILE_OPTION = "--redis-profile"
NODE_OPTION = "--redis-node"  # which data node the server and container checks look at
# Directives a running server does not report through CONFIG GET.
NOT_GETTABLE = frozenset({"include", "rename-command", "user", "loadmodule"})
# Name of the network the reachability probe runs on; no profile declares it.
UNDECLARED_NETWORK_SUFFIX = "verify-undeclared"
CELL_WIDTH = 52
NO_TESTS_COLLECTED = 5  # pytest.ExitCode.NO_TESTS_COLLECTED, without importing pytest at module load


class HostSettingWarning(UserWarning):
    """A host setting Redis would like different; reported, never failed."""


# --------------------------------------------------------------------------- recording a check


class Check:
    """What a check expected and found, recorded on the test item for the table and JUnit.

    `record` is pytest's `request.node.user_properties.append`-like callable.
    """

    def __init__(self, record: Callable[[tuple[str, str]], None]) -> None:
        self._record = record

    def _note(self, expected: object, found: object, status: str) -> None:
        # An empty string would read as "nothing recorded" in the table.
        self._record(("expected", str(expected) if expected != "" else '""'))
        self._record(("found", str(found) if found != "" else '""'))
        self._record(("status", status))

    def that(self, ok: bool, expected: object, found: object) -> None:
        self._note(expected, found, "pass" if ok else "fail")
        if not ok:
            raise AssertionError(f"expected {expected}, found {found}")

    def equal(self, expected: object, found: object) -> None:
        self.that(expected == found, expected, found)

    def warn_unless(self, ok: bool, expected: object, found: object) -> None:
        """Host settings: a miss is a warning in the table, and the check still passes."""
        self._note(expected, found, "pass" if ok else "warn")
        if not ok:
            warnings.warn(HostSettingWarning(f"expected {expected}, found {found}"), stacklevel=2)


# --------------------------------------------------------------------------- redis.conf


def config_directives(conf_text: str) -> dict[str, str]:
    """Directive -> value as CONFIG GET reports it, from redis.conf text.

    Arguments are split the way Redis does (quotes group, are dropped) and
    joined with one space; a repeated directive accumulates (like `save`).
    """
    directives: dict[str, list[str]] = {}
    for line in conf_text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, *args = shlex.split(stripped, posix=True)
        name = name.lower()
        if name in NOT_GETTABLE:
            continue
        directives.setdefault(name, []).extend(args)
    return {name: " ".join(args) for name, args in directives.items()}


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


def listening_addresses(proc_net_tcp: str, port: int) -> list[str]:
    """Local addresses with a LISTEN socket on `port` in a /proc/net/tcp or tcp6 table."""
    addresses = []
    for line in proc_net_tcp.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 4 or parts[3] != "0A":  # 0A = TCP_LISTEN
            continue
        address, _, port_hex = parts[1].partition(":")
        if int(port_hex, 16) == port:
            addresses.append(_decode_proc_address(address))
    return addresses


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def thp_mode(text: str) -> str:
    """The selected mode in /sys/kernel/mm/transparent_hugepage/enabled: `always [madvise] never`."""
    match = re.search(r"\[(\w+)\]", text)
    return match.group(1) if match else text.strip()


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


# --------------------------------------------------------------------------- the deployment


def running_container(profile: Profile, service: str | None = None) -> Any:
    """A node's running container (the first data node by default), or BadInput (exit 2) naming the fix."""
    container = service_container(profile, service or profile.data_nodes[0].service)
    if container.status != "running":
        raise BadInput(
            f"verify: deployment {profile.project} is not running ({container.name} {container.status}); "
            f"run `redis-harness up {profile.name}`"
        )
    return container


# --------------------------------------------------------------------------- results and the table


@dataclass
class CheckResult:
    name: str
    status: str  # pass | fail | warn | skip | error
    expected: str = ""
    found: str = ""
    message: str = ""
    properties: dict[str, str] = field(default_factory=dict)


def check_name(nodeid: str) -> str:
    """`infra_tests/test_security.py::test_runs_as_non_root` -> `runs_as_non_root`."""
    name = nodeid.rpartition("::")[2]
    return name.removeprefix("test_")


class ResultCollector:
    """A pytest plugin object: one CheckResult per check, in run order."""

    def __init__(self) -> None:
        self.results: list[CheckResult] = []
        self.collection_errors: list[str] = []

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.collection_errors.append(f"{report.nodeid}: {_first_line(report)}")

    def pytest_runtest_logreport(self, report: Any) -> None:
        props = {str(k): str(v) for k, v in report.user_properties}
        name = check_name(report.nodeid)
        if report.when == "call":
            status = props.get("status") or ("pass" if report.passed else "skip" if report.skipped else "fail")
            if report.failed:
                status = "fail"
        elif report.when == "setup" and report.skipped:
            status = "skip"
        elif report.failed:  # a fixture could not gather the facts: the check did not pass
            status = "error"
        else:
            return
        message = "" if report.passed else _first_line(report)
        self.results.append(
            CheckResult(name, status, props.get("expected", ""), props.get("found", ""), message, props)
        )


def _first_line(report: Any) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return crash.message.splitlines()[0] if crash.message else ""
    if isinstance(report.longrepr, tuple):  # skip: (path, line, reason)
        return str(report.longrepr[2])
    return str(report.longrepr).strip().splitlines()[-1] if report.longrepr else ""


def _cell(text: str, width: int = CELL_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(results: Sequence[CheckResult]) -> str:
    """check | expected | found | result, one row per check, aligned."""
    header = ("CHECK", "EXPECTED", "FOUND", "RESULT")
    rows = []
    for r in results:
        found = r.found or r.message  # a check that stopped before recording: its error says why
        rows.append((r.name, _cell(r.expected), _cell(found), r.status.upper()))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    lines = ["  ".join(col.ljust(w) for col, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


def summarize(results: Sequence[CheckResult], elapsed_s: float) -> str:
    counts = {s: sum(r.status == s for r in results) for s in ("pass", "fail", "error", "warn", "skip")}
    line = (
        f"{len(results)} checks: {counts['pass']} passed, {counts['fail'] + counts['error']} failed, "
        f"{counts['warn']} warnings, {counts['skip']} skipped in {elapsed_s:.1f} s"
    )
    failed = [r.name for r in results if r.status in ("fail", "error")]
    if failed:
        line += "\nFAILED: " + ", ".join(failed)
    warned = [r.name for r in results if r.status == "warn"]
    if warned:
        line += "\nWARNING (host settings): " + ", ".join(warned)
    return line


# --------------------------------------------------------------------------- the command


def pytest_args(profile: Profile, junit: Path | None, keyword: str | None, node: str | None = None) -> list[str]:
    node = node or profile.data_nodes[0].service
    suite = f"redis-harness-verify-{profile.name}" + (f"-{node}" if len(profile.data_nodes) > 1 else "")
    args = [
        str(INFRA_TESTS_DIR),
        f"{PROFILE_OPTION}={profile.source}",
        f"{NODE_OPTION}={node}",
        "--rootdir",
        str(paths.ROOT),
        "-p",
        "no:cacheprovider",
        # The table below replaces pytest's own report.
        "-p",
        "no:terminal",
        # The repository's addopts are for tests/ and the terminal report (-ra).
        "-o",
        "addopts=",
        # xunit1 is the JUnit family that carries per-check properties (expected, found, status).
        "-o",
        "junit_family=xunit1",
        "-o",
        f"junit_suite_name={suite}",
    ]
    if junit is not None:
        args.append(f"--junitxml={junit}")
    if keyword:
        args += ["-k", keyword]
    return args


def run_verify(profile_arg: str, junit: Path | None = None, keyword: str | None = None) -> int:
    """Run infra_tests/ against PROFILE's running deployment; print the table; return the exit code."""
    profile = load_profile(profile_arg)
    load_secrets(profile)  # a missing or weak secret is bad input, before any check runs
    endpoint(profile)  # the server checks reach Redis on the loopback endpoint
    for node in profile.data_nodes:
        running_container(profile, node.service)
    if not INFRA_TESTS_DIR.is_dir():
        raise BadInput(f"verify: {INFRA_TESTS_DIR} is missing; run from a checkout of redis-harness")
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)

    # Every data node gets the whole suite ("the standalone checks on every node"); the
    # deployment-wide topology checks (replication, Sentinel, Cluster) run with the first.
    runs = []
    for node in profile.data_nodes:
        node_junit = junit if junit is None or len(profile.data_nodes) == 1 else _node_junit(junit, node.service)
        runs.append(_verify_node(profile, node.service, node_junit, keyword))
    matched = [(code, collector) for code, collector in runs if code != NO_TESTS_COLLECTED]
    if not matched:  # -k matched no check on any node
        print(f"verify: no check matches -k {keyword!r}; run without -k to see every check's name")
        return 2
    return max(exit_code(code, collector) for code, collector in matched)


def _node_junit(junit: Path, node: str) -> Path:
    return junit.with_name(f"{junit.stem}-{node}{junit.suffix}")


def _verify_node(profile: Profile, node: str, junit: Path | None, keyword: str | None) -> tuple[int, ResultCollector]:
    """Run the suite against one data node; print its table; return pytest's code and the results."""
    collector = ResultCollector()
    started = time.monotonic()
    code = int(pytest.main(pytest_args(profile, junit, keyword, node), plugins=[collector]))
    elapsed = time.monotonic() - started

    where = f" ({node})" if len(profile.data_nodes) > 1 else ""
    print(f"verify {profile.project}{where} against {profile.source}")
    if collector.results:
        print(format_table(collector.results))
    print(summarize(collector.results, elapsed))
    for error in collector.collection_errors:
        print(f"collection error: {error}")
    if junit is not None:
        print(f"JUnit XML: {junit}")
    return code, collector


def exit_code(pytest_code: int, collector: ResultCollector) -> int:
    if collector.collection_errors:
        return 2
    if pytest_code == NO_TESTS_COLLECTED:  # -k matched no check
        return 2
    if pytest_code == 0:
        return 0
    if pytest_code == 1 or any(r.status in ("fail", "error") for r in collector.results):
        return 1
    return 2  # interrupted, internal or usage error


def _cmd_verify(args: argparse.Namespace) -> int:
    return run_verify(args.profile, args.junit, args.keyword)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "verify",
        help="prove the running containers match the profile (pytest + testinfra); exit 1 names the failed checks",
    )
    p.add_argument("profile", help="a profile name in profiles/ (dev, ci, prod) or a path to a YAML file")
    p.add_argument("--junit", metavar="FILE", type=Path, help="also write the results as JUnit XML to FILE")
    p.add_argument("-k", dest="keyword", metavar="EXPR", help="run only the checks matching EXPR (pytest -k syntax)")
    p.set_defaults(func=_cmd_verify)
