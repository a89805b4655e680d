"""Facts about one running deployment, gathered once per session.

Every "expected" comes from the Profile loaded from the same file the
templates were rendered from (`--redis-profile PATH`, or the environment
variable REDIS_HARNESS_PROFILE); every "found" comes from the running server,
the container (testinfra's docker:// backend) or `docker inspect`.
Standalone: `pytest infra_tests --redis-profile ci`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import testinfra
import yaml

from redis_harness import paths
from redis_harness.deploy import containers
from redis_harness.deploy.connect import connect_node
from redis_harness.deploy.engine import docker_client
from redis_harness.errors import HarnessError
from redis_harness.profile.credentials import Secrets, load_secrets
from redis_harness.profile.model import Profile, load_profile
from redis_harness.profile.topology import Node
from redis_harness.render.acl import acl_users
from redis_harness.render.certificates import is_private_key, tls_file_names
from redis_harness.render.conf_text import config_directives
from redis_harness.render.files import render_files
from redis_harness.verify import parsers, runner
from redis_harness.verify.check import Check

_PROFILE_KEY = pytest.StashKey[Profile]()
_SECRETS_KEY = pytest.StashKey[Secrets]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        runner.PROFILE_OPTION,
        default=os.environ.get("REDIS_HARNESS_PROFILE"),
        help="profile name or path whose running deployment is checked (env REDIS_HARNESS_PROFILE)",
    )
    parser.addoption(runner.NODE_OPTION, default=None, help="data node to check (default: the first)")


def session_node(config: pytest.Config) -> Node:
    profile = session_profile(config)
    name = config.getoption(runner.NODE_OPTION) or profile.data_nodes[0].service
    for node in profile.data_nodes:
        if node.service == name:
            return node
    raise pytest.UsageError(f"{runner.NODE_OPTION}: {name!r} is not a data node of {profile.name}")


# What a check may need of the deployment. Where the profile has none of it the check is not
# collected at all, rather than listed as skipped: a standalone deployment's report names no
# Sentinel, Cluster or replica checks.
PARTS: dict[str, Callable[[Profile], bool]] = {
    "replicas": lambda profile: profile.topology.has_replicas,
    "sentinel": lambda profile: profile.topology.sentinel is not None,
    "cluster": lambda profile: profile.topology.cluster is not None,
    "monitoring": lambda profile: profile.monitoring.enabled,
    "published_host": lambda profile: profile.network.publish == "host",
    "tls": lambda profile: profile.tls.enabled,
    "client_certificates": lambda profile: profile.tls.enabled and profile.tls.client_auth == "required",
    "harness_ca": lambda profile: profile.tls.enabled and not profile.tls.own_pki,
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"needs(part): only where the deployment has the part ({', '.join(PARTS)})")
    config.addinivalue_line("markers", "deployment_wide: checked once, with the first data node")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect what does not apply: checks of parts the profile has not, and deployment-wide checks
    (replication, Sentinel, Cluster, monitoring) on any node but the first."""
    profile = session_profile(config)
    first = session_node(config) == profile.data_nodes[0]

    def applies(item: pytest.Item) -> bool:
        if item.get_closest_marker("deployment_wide") is not None and not first:
            return False
        return all(PARTS[part](profile) for marker in item.iter_markers("needs") for part in marker.args)

    keep = [item for item in items if applies(item)]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


def session_profile(config: pytest.Config) -> Profile:
    if _PROFILE_KEY not in config.stash:
        name = config.getoption(runner.PROFILE_OPTION)
        if not name:
            raise pytest.UsageError(f"infra_tests need {runner.PROFILE_OPTION}=PROFILE (or REDIS_HARNESS_PROFILE)")
        config.stash[_PROFILE_KEY] = load_profile(name)
    return config.stash[_PROFILE_KEY]


def session_secrets(config: pytest.Config) -> Secrets:
    if _SECRETS_KEY not in config.stash:
        config.stash[_SECRETS_KEY] = load_secrets(session_profile(config))
    return config.stash[_SECRETS_KEY]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One check per directive, ACL user and service, named after it."""
    config = metafunc.config
    if "directive" in metafunc.fixturenames:
        rendered = render_files(session_profile(config), session_secrets(config))
        metafunc.parametrize("directive", sorted(config_directives(rendered["redis.conf"])))
    if "acl_user" in metafunc.fixturenames:
        names = [u.name for u in acl_users(session_profile(config), session_secrets(config))]
        metafunc.parametrize("acl_user", names)
    if "service" in metafunc.fixturenames:
        metafunc.parametrize("service", [s.name for s in session_profile(config).security.services])
    if "tls_node" in metafunc.fixturenames:
        nodes = tls_nodes(session_profile(config), session_node(config))
        metafunc.parametrize("tls_node", nodes, ids=[n.service for n in nodes])


def tls_nodes(profile: Profile, node: Node) -> list[Node]:
    """The published TLS ports a node's run checks: its own, and the Sentinels' with the first data node."""
    sentinels = list(profile.sentinel_nodes) if node == profile.data_nodes[0] else []
    return [n for n in [node, *sentinels] if n.host_port is not None]


# --------------------------------------------------------------------------- the profile side


@pytest.fixture(scope="session")
def profile(pytestconfig: pytest.Config) -> Profile:
    return session_profile(pytestconfig)


@pytest.fixture(scope="session")
def secrets(pytestconfig: pytest.Config) -> Secrets:
    return session_secrets(pytestconfig)


@pytest.fixture(scope="session")
def node(pytestconfig: pytest.Config) -> Node:
    """The data node whose server and container these checks look at."""
    return session_node(pytestconfig)


@pytest.fixture(scope="session")
def rendered(profile: Profile, secrets: Secrets) -> dict[str, str]:
    """A fresh render of the profile in memory: what the deployment should be running."""
    return render_files(profile, secrets)


@pytest.fixture(scope="session")
def expected_directives(rendered: dict[str, str]) -> dict[str, str]:
    return config_directives(rendered["redis.conf"])


@pytest.fixture(scope="session")
def expected_compose(rendered: dict[str, str]) -> dict[str, Any]:
    return yaml.safe_load(rendered["docker-compose.yml"])


@pytest.fixture(scope="session")
def secret_markers(profile: Profile, secrets: Secrets) -> list[str]:
    """What must appear in no file, inspect or command line: every password, and every full line of every
    private key of the deployment (TLS keys in .state/<name>/)."""
    state = paths.state_dir(profile.name)
    keys = [state / name for name in tls_file_names(profile) if is_private_key(name)]
    lines = [line for key in keys if key.is_file() for line in parsers.pem_body_lines(key.read_text())]
    return [*secrets.all_passwords(), *lines]


@pytest.fixture(scope="session")
def expected_acl(profile: Profile, secrets: Secrets) -> dict[str, parsers.AclEntry]:
    return {u.name: parsers.parse_acl_line(u.line) for u in acl_users(profile, secrets)}


# --------------------------------------------------------------------------- the running side


@pytest.fixture(scope="session")
def container(profile: Profile, node: Node) -> Any:
    """The node's running Redis container (Docker SDK); a deployment that is not running stops the session."""
    try:
        found = containers.running_container(profile, node.service)
    except HarnessError as exc:
        pytest.exit(str(exc), returncode=2)
    found.reload()
    return found


@pytest.fixture(scope="session")
def inspect(container: Any) -> dict[str, Any]:
    """`docker inspect` of the Redis container."""
    return container.attrs


@pytest.fixture(scope="session")
def docker() -> Any:
    return docker_client()


@pytest.fixture(scope="session")
def host(container: Any) -> Any:
    """testinfra in the container, as the container's configured user."""
    return testinfra.get_host(f"docker://{container.name}")


@pytest.fixture(scope="session")
def admin(profile: Profile, secrets: Secrets, node: Node) -> Iterator[redis.Redis]:
    client = connect_node(profile, node, "admin", secrets.admin.password)
    yield client
    client.close()


@pytest.fixture(scope="session")
def live_acl(admin: redis.Redis) -> dict[str, parsers.AclEntry]:
    entries = (parsers.parse_acl_line(line) for line in admin.acl_list())
    return {entry.name: entry for entry in entries}


@pytest.fixture(scope="session")
def units(admin: redis.Redis) -> dict[str, parsers.CommandUnit]:
    """This server's commands and subcommands with their ACL categories."""
    return parsers.command_units(admin.execute_command("COMMAND"))


@pytest.fixture(scope="session")
def redis_pid(admin: redis.Redis) -> int:
    """The server's own pid in the container's pid namespace (not assumed to be 1)."""
    return int(admin.info("server")["process_id"])


@pytest.fixture(scope="session")
def redis_status(host: Any, redis_pid: int) -> dict[str, str]:
    """/proc/<redis pid>/status read inside the container: uid, capabilities, NoNewPrivs."""
    return parsers.proc_status(host.file(f"/proc/{redis_pid}/status").content_string)


@pytest.fixture(scope="session")
def cgroup(host: Any) -> dict[str, str]:
    """The container's own cgroup limits as the container sees them (v1 or v2)."""
    v2 = host.file("/sys/fs/cgroup/cgroup.controllers").exists
    files = (
        {"memory": "memory.max", "cpu": "cpu.max", "pids": "pids.max"}
        if v2
        else {
            "memory": "memory/memory.limit_in_bytes",
            "cpu_quota": "cpu/cpu.cfs_quota_us",
            "cpu_period": "cpu/cpu.cfs_period_us",
            "pids": "pids/pids.max",
        }
    )
    paths = " ".join(f"/sys/fs/cgroup/{f}" for f in files.values())
    values = host.check_output(f"cat {paths}").split("\n")
    facts = dict(zip(files, values, strict=True))
    if not v2:
        facts["cpu"] = f"{facts.pop('cpu_quota')} {facts.pop('cpu_period')}"
    facts["version"] = "v2" if v2 else "v1"
    return facts


# --------------------------------------------------------------------------- recording


@pytest.fixture
def check(request: pytest.FixtureRequest) -> Check:
    """Record expected/found/status on the test item: the verify table and JUnit properties read them."""
    return Check(request.node.user_properties.append)
