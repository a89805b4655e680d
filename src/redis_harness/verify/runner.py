"""Run the checks of infra_tests/ against a running deployment, node by node; print the table; an exit code.

The checks are pytest + pytest-testinfra (docker:// backend), the Docker SDK and
redis-py; this module runs them in-process, collects what each one expected
and found, and maps the outcome to an exit code: 0 all passed, 1 a check
failed, 2 the profile is invalid or the deployment is not running.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

from redis_harness import paths, progress
from redis_harness.deploy.connect import endpoint
from redis_harness.deploy.containers import running_container
from redis_harness.errors import BadInput
from redis_harness.profile.credentials import load_secrets
from redis_harness.profile.model import Profile, load_profile
from redis_harness.verify.table import ResultCollector, format_report

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


def run_verify(
    profile_arg: str,
    junit: Path | None = None,
    keyword: str | None = None,
    as_json: bool = False,
    verbose: bool = False,
) -> int:
    """Run infra_tests/ against PROFILE's running deployment; print the report (or JSON); return the exit code."""
    profile = load_profile(profile_arg)
    load_secrets(profile)  # a missing or weak secret is bad input, before any check runs
    endpoint(profile)  # the server checks reach Redis on the loopback endpoint
    for node in profile.data_nodes:
        running_container(profile, node.service)
    if not INFRA_TESTS_DIR.is_dir():
        raise BadInput(f"verify: {INFRA_TESTS_DIR} is missing; run from a checkout of redis-harness")

    # pytest writes JUnit into a scratch folder; the files are moved to --junit only after the
    # table is out, so an unwritable path costs the XML, never the results.
    with tempfile.TemporaryDirectory(prefix="redis-harness-verify-") as scratch:
        runs = []
        staged: list[tuple[Path, Path]] = []
        nodes = profile.data_nodes
        started = time.monotonic()
        # Every data node gets the whole suite ("the standalone checks on every node"); the
        # deployment-wide topology checks (replication, Sentinel, Cluster) run with the first.
        for index, node in enumerate(nodes, start=1):
            of = f" ({index} of {len(nodes)})" if len(nodes) > 1 else ""
            progress.note(f"checking {node.service}{of} against the profile")
            node_junit = None
            if junit is not None:
                target = junit if len(nodes) == 1 else _node_junit(junit, node.service)
                node_junit = Path(scratch) / target.name
                staged.append((node_junit, target))
            runs.append(_verify_node(profile, node.service, node_junit, keyword))
        matched = [(code, collector) for code, collector in runs if code != NO_TESTS_COLLECTED]
        if not matched:  # -k matched no check on any node
            print(
                f"redis-harness: -k: no check matches {keyword!r}; run without -k to see every check's name",
                file=sys.stderr,
            )
            return 2
        code = max(exit_code(c, collector) for c, collector in matched)
        written = _publish_junit(staged) if staged else []
        if written is None:  # unwritable --junit: the results still count, and the command fails
            code = max(code, 2)
        if as_json:
            print(json.dumps(_as_json(profile, [collector for _, collector in runs], code), indent=2))
            return code
        print(_report(profile, [collector for _, collector in runs], time.monotonic() - started, verbose))
        for path in written or []:
            print(f"JUnit XML: {path}")
        return code


def _report(profile: Profile, collectors: list[ResultCollector], elapsed_s: float, verbose: bool) -> str:
    nodes = f" ({len(collectors)} data nodes)" if len(collectors) > 1 else ""
    named = paths.profile_argument(profile.name, profile.source)
    text = format_report(
        f"verify {profile.project}{nodes}",
        [(collector.node, collector.results) for collector in collectors],
        elapsed_s,
        source=named,  # as the user named it: `dev`, or the path they gave
        verbose=verbose,
        drift_hint=f"`redis-harness plan {named}` shows the drift; `up {named}` restores it",
    )
    errors = [f"collection error: {error}" for collector in collectors for error in collector.collection_errors]
    return "\n".join([text, *errors])


def _publish_junit(staged: list[tuple[Path, Path]]) -> list[Path] | None:
    """Move the staged JUnit files into place, all or none; None (and one line on stderr) when a path is unwritable."""
    placed: list[Path] = []
    target = staged[0][1]
    try:
        for source, target in staged:
            if not source.is_file():
                continue  # -k matched nothing on this node
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.partial")
            try:
                shutil.copyfile(source, partial)
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
            placed.append(target)
    except OSError as exc:
        for path in placed:
            path.unlink(missing_ok=True)
        where = f"{exc.filename}: " if exc.filename and Path(exc.filename) != target else ""
        print(
            f"redis-harness: --junit: cannot write {target} ({where}{exc.strerror or exc}); "
            "the results are above, no XML was written; give a writable path",
            file=sys.stderr,
        )
        return None
    return placed


def _as_json(profile: Profile, collectors: list[ResultCollector], code: int) -> dict:
    """Every check with the full text of what it expected and found (the table shortens them)."""
    results = [r for collector in collectors for r in collector.results]
    return {
        "profile": profile.name,
        "project": profile.project,
        "source": str(profile.source),
        "exit_code": code,
        "passed": code == 0,
        "counts": {s: sum(r.status == s for r in results) for s in ("pass", "fail", "error", "warn", "skip")},
        "checks": [r.as_dict() for r in results],
        "collection_errors": [e for collector in collectors for e in collector.collection_errors],
    }


def _node_junit(junit: Path, node: str) -> Path:
    return junit.with_name(f"{junit.stem}-{node}{junit.suffix}")


def _verify_node(profile: Profile, node: str, junit: Path | None, keyword: str | None) -> tuple[int, ResultCollector]:
    """Run the suite against one data node; return pytest's code and the results."""
    collector = ResultCollector(node)
    code = int(pytest.main(pytest_args(profile, junit, keyword, node), plugins=[collector]))
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
