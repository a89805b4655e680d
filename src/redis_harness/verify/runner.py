"""Run the checks of infra_tests/ against a running deployment, node by node; print the table; an exit code.

The checks are pytest + pytest-testinfra (docker:// backend), the Docker SDK and
redis-py; this module runs them in-process, collects what each one expected
and found, and maps the outcome to an exit code: 0 all passed, 1 a check
failed, 2 the profile is invalid or the deployment is not running.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from redis_harness import paths
from redis_harness.deploy.connect import endpoint
from redis_harness.deploy.containers import running_container
from redis_harness.errors import BadInput
from redis_harness.profile.credentials import load_secrets
from redis_harness.profile.model import Profile, load_profile
from redis_harness.verify.table import ResultCollector, format_table, summarize

INFRA_TESTS_DIR = paths.ROOT / "infra_tests"
PROFILE_OPTION = "--redis-profile"
NODE_OPTION = "--redis-node"  # which data node the server and container checks look at
# Name of the network the reachability probe runs on; no profile declares it.
UNDECLARED_NETWORK_SUFFIX = "verify-undeclared"
NO_TESTS_COLLECTED = 5  # pytest.ExitCode.NO_TESTS_COLLECTED, without importing pytest at module load


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
