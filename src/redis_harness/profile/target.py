"""A target: a Redis the harness did not deploy (a managed Redis, one on Kubernetes, a staging VM).

A profile with `target:` names where that Redis answers (one address, Sentinels and a
master name, or Cluster seed nodes), how to speak TLS to it, and which environment
variables hold which users' passwords: one or more service users (the load workloads
log in as them) and, optionally, an admin whose INFO, SLOWLOG and CONFIG give the
server-side figures. The commands that only read or load a Redis work on a target; the
ones that change a deployment (up, down, rollback, fault, render, and bench, which adds
its own ACL user) refuse.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator, model_validator

from redis_harness.profile.types import Section, refuse

TargetKind = Literal["standalone", "sentinel", "cluster"]
ENV_NAME_PATTERN = r"^[A-Z][A-Z0-9_]*$"
USER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
ADDRESS_PATTERN = r"^[A-Za-z0-9.-]+:[0-9]{1,5}$"


def parse_address(value: Any) -> tuple[str, int]:
    """'host:port' -> (host, port); a one-line refusal naming the fix otherwise."""
    if not isinstance(value, str):
        raise refuse(f"{value!r} is not an address; write host:port, e.g. 127.0.0.1:6390")
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise refuse(f"{value!r} is not host:port with a port from 1 to 65535; e.g. 127.0.0.1:6390")
    try:
        version = ipaddress.ip_address(host.strip("[]")).version
    except ValueError:
        version = None
    if version == 6:
        raise refuse(f"{host} is an IPv6 address, which the harness does not support; use an IPv4 address or name")
    if version is None and not _HOST.match(host):
        raise refuse(f"{host!r} is not a host name or IPv4 address; e.g. redis.internal:6379")
    return host, int(port)


Address = Annotated[
    tuple[str, int],
    BeforeValidator(parse_address),
    WithJsonSchema({"type": "string", "pattern": ADDRESS_PATTERN}),
]


class TargetUser(Section):
    """An ACL user of the target and the environment variable (or .env entry) holding its password."""

    user: str = Field(pattern=USER_PATTERN, description="ACL user name on the target")
    password_env: str = Field(
        pattern=ENV_NAME_PATTERN, description="Environment variable (or .env entry) with the user's password"
    )


class TargetService(Section):
    """A service of the target: its load workloads use keys `<service>:*` and log in as its user."""

    user: str | None = Field(
        None,
        pattern=USER_PATTERN,
        description="ACL user the service logs in as; default the service's name (`default` for a Redis with "
        "only a password)",
    )
    password_env: str | None = Field(
        None,
        pattern=ENV_NAME_PATTERN,
        description="Environment variable (or .env entry) with the user's password; default REDIS_<NAME>_PASSWORD",
    )


class TargetTls(Section):
    """TLS to the target: the server's certificate is checked against ca_file (and its name or address)."""

    ca_file: str = Field(description="CA bundle that signed the target's certificate (relative to the profile file)")
    cert_file: str | None = Field(None, description="Client certificate, for a target that asks for one")
    key_file: str | None = Field(None, description="The client certificate's private key")
    min_version: Literal["TLSv1.2", "TLSv1.3"] = Field("TLSv1.2", description="Oldest protocol accepted")

    @model_validator(mode="after")
    def _pair(self) -> TargetTls:
        if bool(self.cert_file) != bool(self.key_file):
            missing = "key_file" if self.cert_file else "cert_file"
            raise refuse(f"a client certificate needs both cert_file and key_file; add {missing}", missing)
        return self


class Target(Section):
    """A Redis the harness did not deploy: where it answers, TLS, and whose passwords the environment holds."""

    address: Address | None = Field(
        None, description="Standalone: host:port of the Redis (e.g. 127.0.0.1:6390); or use sentinels or cluster"
    )
    sentinels: tuple[Address, ...] = Field(
        (), description="Sentinel: host:port of each Sentinel (with master_name); the primary is asked of them"
    )
    master_name: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Sentinel: the name the Sentinels monitor the primary as"
    )
    sentinel_password_env: str | None = Field(
        None,
        pattern=ENV_NAME_PATTERN,
        description="Sentinel: variable with the Sentinels' own password, when they require one",
    )
    cluster: tuple[Address, ...] = Field(
        (), description="Cluster: host:port of one or more seed nodes; the rest is discovered from them"
    )
    tls: TargetTls | None = Field(None, description="TLS to the target (absent: plaintext)")
    service_specs: dict[str, TargetService] = Field(
        alias="services",
        min_length=1,
        description="The service users the load workloads log in as, e.g. {price: {password_env: "
        "REDIS_PRICE_PASSWORD}}; a workload whose service is not listed is left out of a run",
    )
    admin: TargetUser | None = Field(
        None,
        description="Optional admin user for server-side figures (INFO, SLOWLOG, CONFIG) and the audit's "
        "ACL checks; when absent, or its variable is unset, those figures are shown as not available",
    )
    eviction_policy: str = Field(
        "volatile-lru",
        pattern=r"^(volatile|allkeys)-(lru|lfu|random)$|^volatile-ttl$|^noeviction$",
        description="The eviction policy `verify` expects the target to run (the harness's own default)",
    )

    @field_validator("sentinels", "cluster", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            raise refuse(f"{value!r} is not a list; write e.g. [10.0.0.5:26379, 10.0.0.6:26379]")
        return tuple(value)

    @field_validator("service_specs")
    @classmethod
    def _names(cls, specs: dict[str, TargetService]) -> dict[str, TargetService]:
        for name in specs:
            if not re.match(r"^[a-z0-9][a-z0-9_-]{0,40}$", name) or name in ("default", "admin"):
                raise refuse(f"{name!r} is not a usable service user name; use lower-case letters and digits", name)
        return specs

    @model_validator(mode="after")
    def _one_kind(self) -> Target:
        given = [
            k for k, v in (("address", self.address), ("sentinels", self.sentinels), ("cluster", self.cluster)) if v
        ]
        if len(given) != 1:
            problem = "none is given" if not given else f"{' and '.join(given)} are given"
            raise refuse(
                f"name exactly one of address (standalone), sentinels (with master_name) or cluster; {problem}",
                given[-1] if given else "address",
            )
        if self.sentinels and not self.master_name:
            raise refuse("Sentinels need the name they monitor the primary as; add master_name", "master_name")
        if self.master_name and not self.sentinels:
            raise refuse("master_name is for a Sentinel target; add sentinels or remove it", "master_name")
        if self.sentinel_password_env and not self.sentinels:
            raise refuse("only a Sentinel target has a Sentinel password; remove it", "sentinel_password_env")
        return self

    @property
    def kind(self) -> TargetKind:
        return "sentinel" if self.sentinels else "cluster" if self.cluster else "standalone"

    @property
    def seeds(self) -> tuple[tuple[str, int], ...]:
        """Where a client starts: the address, the Sentinels, or the Cluster seed nodes."""
        return (self.address,) if self.address else self.sentinels or self.cluster

    @property
    def where(self) -> str:
        """The target as a person names it: 127.0.0.1:6390, sentinel 'mymaster' via a:1,b:2, cluster via …"""
        joined = ",".join(f"{h}:{p}" for h, p in self.seeds)
        if self.kind == "sentinel":
            return f"Sentinel master '{self.master_name}' via {joined}"
        return f"Cluster via {joined}" if self.kind == "cluster" else joined

    def services(self) -> tuple[tuple[str, str, str], ...]:
        """(service, the ACL user it logs in as, password variable) for each service."""
        return tuple(
            (name, spec.user or name, spec.password_env or f"REDIS_{name.upper()}_PASSWORD")
            for name, spec in self.service_specs.items()
        )

    def tls_files(self, source: Path) -> dict[str, str | None]:
        """The TLS files as paths a client opens (relative ones are relative to the profile file)."""
        tls = self.tls
        if tls is None:
            return {}

        def resolve(path: str | None) -> str | None:
            return None if path is None else str((source.parent / path).resolve())

        return {"ca_file": resolve(tls.ca_file), "cert_file": resolve(tls.cert_file), "key_file": resolve(tls.key_file)}


# Top-level keys a target profile may have: the target, and what judges a run or a view of it.
TARGET_KEYS = ("name", "target", "ttl", "alerts")
