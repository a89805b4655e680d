"""Redis servers the harness did not deploy, for the target tests, each from a hand-written redis.conf (no
compose, no labels, no users.acl rendered by the harness), on a loopback port of 6700-6719, started two ways:

- `docker`: the harness's image with a plain `docker run`, published on the port;
- `process`: Debian's redis-server (scripts/bootstrap-host installs the package, its service kept off)
  as a plain process of this host, listening on 127.0.0.1 only.

- permissive: a password on the `default` user (which may run everything), no other ACL user, no
  maxmemory, allkeys-lru, no persistence: what the audit is there to find.
- locked: `default` off, a `price` user limited to `price:*` with the harness's own service rules, an
  `admin`, maxmemory with volatile-lru, AOF on: what the audit passes.
"""

from __future__ import annotations

import datetime as dt
import secrets as pysecrets
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import yaml

from redis_harness.profile.credentials import sha256_hex
from redis_harness.profile.model import ServiceUser
from redis_harness.render.acl import ADMIN_RULES, service_rules
from redis_harness.render.certificates import Names, issue, issue_ca

from .conftest import variant_profile

IMAGE = "redis-harness/redis:7.0-bookworm"
PORTS = {("docker", "permissive"): 6701, ("docker", "locked"): 6702, ("process", "permissive"): 6703,
         ("process", "locked"): 6704}  # fmt: skip
HOWS = ("docker", "process")

PERMISSIVE_CONF = """\
bind 0.0.0.0
port 6379
protected-mode no
maxmemory 0
maxmemory-policy allkeys-lru
save ""
appendonly no
dir /tmp
user default on #{default_hash} ~* &* +@all
"""

LOCKED_CONF = """\
bind 0.0.0.0
port 6379
maxmemory 64mb
maxmemory-policy volatile-lru
appendonly yes
appendfsync everysec
save 3600 1 300 100
dir /tmp
user default off resetpass resetkeys resetchannels -@all
user admin on #{admin_hash} {admin_rules}
user price on #{price_hash} {price_rules}
"""


@dataclass
class ExternalRedis:
    """One Redis started outside the harness, and the environment holding its passwords."""

    name: str
    port: int
    env: dict[str, str] = field(default_factory=dict)
    how: str = "docker"
    pid: int | None = None  # the process's, when it is one

    def client(self, user: str | None, password: str) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, username=user, password=password, decode_responses=True)


def _wait(server: ExternalRedis, user: str | None, password: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if server.client(user, password).ping():
                return
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@contextmanager
def external_redis(kind: str, folder: Path, how: str = "docker") -> Iterator[ExternalRedis]:
    """A `kind` server started `how` (docker or process) with a hand-written config; removed on exit."""
    port = PORTS[(how, kind)]
    name = f"external-{kind}-{port}"
    env = {
        "REDIS_PASSWORD": pysecrets.token_hex(24),
        "REDIS_ADMIN_PASSWORD": pysecrets.token_hex(24),
        "REDIS_PRICE_PASSWORD": pysecrets.token_hex(24),
    }
    if kind == "permissive":
        text = PERMISSIVE_CONF.format(default_hash=sha256_hex(env["REDIS_PASSWORD"]))
    else:
        text = LOCKED_CONF.format(
            admin_hash=sha256_hex(env["REDIS_ADMIN_PASSWORD"]),
            admin_rules=ADMIN_RULES,
            price_hash=sha256_hex(env["REDIS_PRICE_PASSWORD"]),
            price_rules=service_rules(ServiceUser("price", "REDIS_PRICE_PASSWORD")),
        )
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / f"{name}.conf"
    with _started(how, name, port, folder, conf, text) as pid:
        server = ExternalRedis(name, port, env, how, pid)
        if kind == "permissive":
            _wait(server, None, env["REDIS_PASSWORD"])
        else:
            _wait(server, "admin", env["REDIS_ADMIN_PASSWORD"])
        yield server


@contextmanager
def _started(how: str, name: str, port: int, folder: Path, conf: Path, text: str) -> Iterator[int | None]:
    if how == "process":
        data = folder / name
        data.mkdir(exist_ok=True)
        local = {"bind 0.0.0.0": "bind 127.0.0.1", "port 6379": f"port {port}", "dir /tmp": f"dir {data}"}
        conf.write_text("".join(local.get(line, line) + "\n" for line in text.splitlines()) + "daemonize no\n")
        conf.chmod(0o600)
        server = subprocess.Popen(["redis-server", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            yield server.pid
        finally:
            server.terminate()
            server.wait(30)
        return
    conf.write_text(text)
    conf.chmod(0o644)  # read by the image's redis user; hashes only, no password
    subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True, check=False)  # -v: its /data volume too
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:6379",
         "-v", f"{conf}:/external.conf:ro", IMAGE, "redis-server", "/external.conf"],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield None
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True, check=False)  # -v: its /data volume too


def target_profile(folder: Path, name: str, port: int, *, login: str = "price", admin: str | None = "admin") -> Path:
    """A target profile for a server above: service `price` logging in as `login`; `admin` the admin user
    (`default` on the permissive server, whose default user may run everything), None for none."""
    price: dict[str, str] = {"password_env": "REDIS_PRICE_PASSWORD"}
    if login != "price":
        price = {"user": login, "password_env": "REDIS_PASSWORD"}
    target: dict[str, object] = {"address": f"127.0.0.1:{port}", "services": {"price": price}}
    if admin:
        variable = "REDIS_PASSWORD" if admin == "default" else "REDIS_ADMIN_PASSWORD"
        target["admin"] = {"user": admin, "password_env": variable}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "target": target}))
    return path


# Sentinel and Cluster targets: Debian's redis-server processes on loopback ports, so what the Sentinels
# and the Cluster announce (127.0.0.1:port) is what a client on this host reaches, as it is for a real
# deployment's clients; the harness's own deployments announce container names it maps instead.
TOPOLOGY_PORTS = {"sentinel": (6705, 6706, 6707), "cluster": (6708, 6709, 6710)}
MASTER_NAME = "extmaster"


@dataclass
class ExternalTopology:
    """A Sentinel (primary, replica, Sentinel) or Cluster (three primaries) the harness did not make."""

    kind: str
    ports: tuple[int, ...]
    env: dict[str, str]

    def admin(self, port: int) -> redis.Redis:
        password = self.env["REDIS_ADMIN_PASSWORD"]
        return redis.Redis(port=port, username="admin", password=password, decode_responses=True)

    def profile(self, folder: Path, admin: bool = True) -> Path:
        target: dict[str, object] = {"services": {"price": {"password_env": "REDIS_PRICE_PASSWORD"}}}
        if self.kind == "sentinel":
            target.update(
                sentinels=[f"127.0.0.1:{self.ports[2]}"],
                master_name=MASTER_NAME,
                sentinel_password_env="REDIS_PASSWORD",
            )
        else:
            target["cluster"] = [f"127.0.0.1:{self.ports[0]}"]
        if admin:
            target["admin"] = {"user": "admin", "password_env": "REDIS_ADMIN_PASSWORD"}
        name = f"external-{self.kind}" + ("" if admin else "-noadmin")
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"name": name, "target": target}))
        return path


def _node_conf(env: dict[str, str], port: int, data: Path, cluster: bool, extra: str = "") -> str:
    text = LOCKED_CONF.format(
        admin_hash=sha256_hex(env["REDIS_ADMIN_PASSWORD"]),
        admin_rules=ADMIN_RULES,
        price_hash=sha256_hex(env["REDIS_PRICE_PASSWORD"]),
        price_rules=service_rules(ServiceUser("price", "REDIS_PRICE_PASSWORD"), cluster=cluster),
    )
    local = {"bind 0.0.0.0": "bind 127.0.0.1", "port 6379": f"port {port}", "dir /tmp": f"dir {data}"}
    lines = [local.get(line, line) for line in text.splitlines()]
    if cluster:
        lines += ["cluster-enabled yes", "cluster-config-file nodes.conf", "cluster-node-timeout 5000"]
    return "\n".join(lines) + "\ndaemonize no\n" + extra


@contextmanager
def external_topology(kind: str, folder: Path) -> Iterator[ExternalTopology]:
    """Debian's redis-server as plain processes: a Sentinel set-up or a three-primary Cluster."""
    env = {name: pysecrets.token_hex(24) for name in ("REDIS_PASSWORD", "REDIS_ADMIN_PASSWORD", "REDIS_PRICE_PASSWORD")}
    ports = TOPOLOGY_PORTS[kind]
    processes: list[subprocess.Popen[bytes]] = []

    def start(port: int, text: str, *args: str) -> None:
        data = folder / f"{kind}-{port}"
        data.mkdir(parents=True, exist_ok=True)
        conf = data / "redis.conf"
        conf.write_text(text.replace("{data}", str(data)))
        conf.chmod(0o600)
        command = ["redis-server", str(conf), *args]
        processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    topology = ExternalTopology(kind, ports, env)
    try:
        if kind == "sentinel":
            primary, replica, sentinel = ports
            start(primary, _node_conf(env, primary, folder / f"{kind}-{primary}", cluster=False))
            follow = f"replicaof 127.0.0.1 {primary}\nmasteruser admin\nmasterauth {env['REDIS_ADMIN_PASSWORD']}\n"
            start(replica, _node_conf(env, replica, folder / f"{kind}-{replica}", cluster=False, extra=follow))
            start(
                sentinel,
                f"port {sentinel}\nbind 127.0.0.1\ndaemonize no\ndir {{data}}\n"
                f"user default on #{sha256_hex(env['REDIS_PASSWORD'])} ~* &* +@all\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {primary} 1\n"
                f"sentinel auth-user {MASTER_NAME} admin\n"
                f"sentinel auth-pass {MASTER_NAME} {env['REDIS_ADMIN_PASSWORD']}\n",
                "--sentinel",
            )
            for port in (primary, replica):
                _wait(ExternalRedis(kind, port), "admin", env["REDIS_ADMIN_PASSWORD"])
            asking = redis.Redis(port=sentinel, password=env["REDIS_PASSWORD"])
            _until(lambda: asking.sentinel_master(MASTER_NAME)["num-slaves"] == 1)
        else:
            for port in ports:
                start(port, _node_conf(env, port, folder / f"{kind}-{port}", cluster=True))
            for port in ports:
                _wait(ExternalRedis(kind, port), "admin", env["REDIS_ADMIN_PASSWORD"])
            nodes = [f"127.0.0.1:{port}" for port in ports]
            subprocess.run(
                ["redis-cli", "--user", "admin", "--cluster", "create", *nodes, "--cluster-replicas", "0",
                 "--cluster-yes"],
                env={"PATH": "/usr/bin:/bin", "REDISCLI_AUTH": env["REDIS_ADMIN_PASSWORD"]},
                check=True, capture_output=True, timeout=60,
            )  # fmt: skip
            _until(lambda: all(topology.admin(p).cluster("info")["cluster_state"] == "ok" for p in ports))
        yield topology
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)


def _until(predicate: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if predicate():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("the external topology did not come up")
        time.sleep(0.2)


TLS_PORT = 6712


@dataclass
class ExternalTls:
    """A locked-down Redis serving TLS only, asking every client for a certificate from its CA."""

    port: int
    env: dict[str, str]
    files: dict[str, Path]  # ca, cert and key (the price client's), server_cert, other_ca

    def profile(self, folder: Path, name: str, **tls: str) -> Path:
        target = {
            "address": f"127.0.0.1:{self.port}",
            "services": {"price": {"password_env": "REDIS_PRICE_PASSWORD"}},
            "admin": {"user": "admin", "password_env": "REDIS_ADMIN_PASSWORD"},
            "tls": tls,
        }
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"name": name, "target": target}))
        return path


@contextmanager
def external_tls(folder: Path) -> Iterator[ExternalTls]:
    """Debian's redis-server as a plain process, TLS on 127.0.0.1 only (port 0), with a CA, a server and a
    client certificate issued by the harness's own issuer, and a second CA nobody uses."""
    env = {name: pysecrets.token_hex(24) for name in ("REDIS_PASSWORD", "REDIS_ADMIN_PASSWORD", "REDIS_PRICE_PASSWORD")}
    data = folder / "tls"
    data.mkdir(parents=True, exist_ok=True)
    issuer = variant_profile("ci", data, "externaltls")
    now = dt.datetime.now(dt.UTC)
    ca, ca_key = issue_ca(issuer, now)
    server = issue(issuer, ca, ca_key, "external", Names(("localhost",), ("127.0.0.1",)), now, dt.timedelta(days=90))
    client = issue(issuer, ca, ca_key, "price", None, now, dt.timedelta(days=90))
    other_ca, _ = issue_ca(issuer, now)
    texts = {"ca": ca, "server_cert": server[0], "server_key": server[1], "cert": client[0], "key": client[1]}
    files = {name: data / f"{name}.pem" for name in (*texts, "other_ca")}
    for name, text in {**texts, "other_ca": other_ca}.items():
        files[name].write_text(text)
        files[name].chmod(0o600)
    tls = (
        f"port 0\ntls-port {TLS_PORT}\ntls-cert-file {files['server_cert']}\ntls-key-file {files['server_key']}\n"
        f"tls-ca-cert-file {files['ca']}\ntls-auth-clients yes\n"
    )
    conf = data / "redis.conf"
    conf.write_text(_node_conf(env, TLS_PORT, data, cluster=False).replace(f"port {TLS_PORT}\n", "") + tls)
    conf.chmod(0o600)
    process = subprocess.Popen(["redis-server", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    found = ExternalTls(TLS_PORT, env, files)
    try:
        admin = redis.Redis(
            port=TLS_PORT, username="admin", password=env["REDIS_ADMIN_PASSWORD"], ssl=True,
            ssl_ca_certs=str(files["ca"]), ssl_certfile=str(files["cert"]), ssl_keyfile=str(files["key"]),
        )  # fmt: skip
        _until(admin.ping)
        yield found
    finally:
        process.terminate()
        process.wait(30)
