"""Follow the docs literally: run every command README.md and docs/*.md show, page by page, in
the order shown, and compare what it prints with the page (tests/doc_commands.py: same words,
any numbers and paths). A page whose commands drift from the code fails here, naming the line.

The commands run as a reader runs them: from the repository root, through bash, with the
venv on PATH and the secrets files `env init` writes (`.env` for dev, created only when
missing, as `scripts/run` does). They use the `dev` profile as the README does; commands
on `ci` run against the session's ci deployment with the session's secrets. Blocks marked
`covered-by` are run by the tests they name (tests/test_docs.py checks that), `not-run`
ones never (another host, or they would uninstall the harness).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from rich.cells import cell_len

from . import doc_commands
from .conftest import REPO, Deployment

pytestmark = pytest.mark.integration

# A progress note (cli/progress.py): on a terminal one transient live line, which the pages do not show.
PROGRESS = re.compile(r"^[\w ./-]+: .+ \(\d+\.\d s\)$")
DELIMITER = "@@docs-exit"
WIDTH = 100
COMMAND_TIMEOUT_S = 600
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def reader_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment of a reader at the repository root: no test secrets unless given, the venv first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
    env["PATH"] = f"{REPO / '.venv' / 'bin'}:{env.get('PATH', '')}"
    env["COLUMNS"] = str(WIDTH)
    env.update(extra)
    return env


def run_block(block: doc_commands.Block, env: dict[str, str]) -> list[tuple[str, list[str], int]]:
    """Run a block's commands in one bash (so `set -a; . ./.env` carries over); each command's
    output (stdout and stderr, as a terminal shows them) and exit code."""
    script = ["exec 2>&1"]
    for command in block.commands:
        script += [command.text, f'echo "{DELIMITER} $?"']
    marker = block.marker or ("", "")
    if marker[0] == "interrupt-after":
        return [_interrupted(c.text, float(marker[1]), env) for c in block.commands]
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    results, lines = [], []
    for line in done.stdout.splitlines():
        if line.startswith(DELIMITER):
            results.append((block.commands[len(results)].text, lines, int(line.split()[1])))
            lines = []
        elif not PROGRESS.match(line):
            lines.append(line)
    return results


def _interrupted(command: str, after_s: float, env: dict[str, str]) -> tuple[str, list[str], int]:
    """A live view: started, Ctrl-C after `after_s`, as a reader stops it."""
    process = subprocess.Popen(
        ["bash", "-c", f"exec {command}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    time.sleep(after_s)
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    return command, [line for line in output.splitlines() if not PROGRESS.match(line)], process.returncode


def check_block(block: doc_commands.Block, env: dict[str, str]) -> list[str]:
    """What differs between the page and the commands' real output (empty when nothing does)."""
    problems = []
    marker = block.marker or ("", "")
    expected_codes = {int(marker[1])} if marker[0] == "exit" else {0}
    if marker[0] == "interrupt-after":
        expected_codes = {0, 130}
    results = run_block(block, env)
    if len(results) != len(block.commands):
        return [f"{block.where}: bash stopped after {len(results)} of {len(block.commands)} commands"]
    for command, (text, output, code) in zip(block.commands, results, strict=True):
        if code not in expected_codes:
            tail = "\n".join(output[-15:])
            problems.append(f"{block.where}: `{text}` exited {code}, expected {sorted(expected_codes)}:\n{tail}")
            continue
        wide = [line for line in output if cell_len(line) > WIDTH]
        if wide:
            problems.append(f"{block.where}: `{text}` printed {len(wide)} lines wider than {WIDTH}: {wide[0]!r}")
        if command.output is not None:
            mismatch = doc_commands.shape_mismatch(command.output, output)
            if mismatch:
                problems.append(f"{block.where}: `{text}`: {mismatch}")
    return problems


def runnable(page: Path) -> list[doc_commands.Block]:
    return [b for b in doc_commands.blocks(page) if not b.marker or b.marker[0] not in ("covered-by", "not-run")]


@pytest.fixture(scope="module")
def ci_env(ci_deployment: Deployment) -> dict[str, str]:
    """Commands on `ci` run against the session's ci deployment, with its secrets in the environment."""
    return {k: v for k, v in ci_deployment.env.items() if k.startswith("REDIS_")}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_commands_run_as_shown(page: Path, ci_env: dict[str, str]) -> None:
    blocks = runnable(page)
    if not blocks:
        pytest.skip(f"{page.name} shows no command to run here")
    problems = []
    for block in blocks:
        uses_ci = any(re.search(r"\bci\b", c.text) for c in block.commands)
        problems += check_block(block, reader_env(ci_env if uses_ci else {}))
    assert not problems, "\n".join(problems)
