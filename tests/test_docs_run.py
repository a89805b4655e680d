"""Follow the docs literally: run every command README.md and docs/*.md show, page by page, in
the order shown, and compare what it prints with the page (tests/doc_commands.py: same words,
any numbers and paths). A page whose commands drift from the code fails here, naming the line.

The reader is a newcomer with a fresh clone: a copy of this checkout's files (what `git clone`
would give, plus what is not committed yet), sharing only the venv, where the commands run
from the clone's root through bash, as typed, with nothing set up but the host. That clone owns
the `dev` deployment the pages use (deploy.ownership), so a `dev` another checkout on this host
owns (a developer's own) is left alone and those commands are skipped, saying so; CI's host has
none. Commands on `ci` run from this checkout against the session's ci deployment, with its
secrets. Blocks marked `covered-by` are run by the tests they name (tests/test_docs.py checks
that), `not-run` ones never (another host, or they would uninstall the harness). Every line
printed must fit 100 columns, except the one-line errors, which must stay one line.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.cells import cell_len

from redis_harness.deploy import ownership
from redis_harness.profile.model import load_profile

from . import doc_commands
from .conftest import REPO, Deployment

pytestmark = pytest.mark.integration

# A progress note (cli/progress.py): on a terminal one transient live line, which the pages do not show.
PROGRESS = re.compile(r"^[\w ./-]+: .+ \(\d+\.\d s\)$")
DELIMITER = "@@docs-exit"
WIDTH = 100
COMMAND_TIMEOUT_S = 900
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def reader_env(root: Path, extra: dict[str, str]) -> dict[str, str]:
    """A reader's shell at `root`: no secrets in the environment unless given, the venv first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
    env["PATH"] = f"{root / '.venv' / 'bin'}:{env.get('PATH', '')}"
    env["COLUMNS"] = str(WIDTH)
    if root != REPO:
        env["REDIS_HARNESS_HOME"] = str(root)
    env.update(extra)
    return env


def reader_venv(root: Path) -> None:
    """A venv of the clone's own: its code from the clone's src/, the packages it needs from this
    checkout's venv (a path, not a copy; never the venv itself, which `scripts/setup` in the clone
    would reinstall pointing at the clone), its `redis-harness` command, and the stamp that tells
    `scripts/setup` it is installed."""
    venv = root / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # .pth lines are added in name order: the clone's code before the shared packages.
    (site / "a-reader-clone.pth").write_text(f"{root / 'src'}\n")
    (site / "b-shared-packages.pth").write_text(f"{sysconfig.get_paths()['purelib']}\n")
    script = venv / "bin" / "redis-harness"
    script.write_text(f"#!{python}\nimport sys\nfrom redis_harness.cli import main\nsys.exit(main())\n")
    script.chmod(0o755)
    stamp = hashlib.sha256((root / "pyproject.toml").read_bytes()).hexdigest()
    (venv / ".pyproject.sha256").write_text(stamp + "\n")


def fresh_clone(target: Path) -> Path:
    """This checkout's files as a clone would have them (tracked, and new files not ignored yet),
    with a venv of its own (reader_venv) and the Node packages shared instead of installed again."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    reader_venv(target)
    (target / "tests" / "node" / "node_modules").symlink_to(REPO / "tests" / "node" / "node_modules")
    return target


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The newcomer's clone, owning `dev` while the pages run; dev removed with its data after."""
    owner = ownership.recorded_owner(load_profile("dev"))
    leftover = owner is not None and "docs-reader" in owner.checkout and not Path(owner.checkout).exists()
    if owner is not None and not leftover:
        pytest.skip(
            f"the dev deployment belongs to {owner.describe()}; following the pages needs a host where dev "
            "is free (CI's is): `redis-harness down dev --volumes` there first to run them here"
        )
    root = fresh_clone(tmp_path_factory.mktemp("docs-reader"))
    env = reader_env(root, {})
    if leftover:  # an earlier run of this test that did not finish
        subprocess.run(["bash", "-c", "redis-harness down dev --volumes --take-over"], cwd=root, env=env, check=False)
    try:
        yield root
    finally:
        subprocess.run(["bash", "-c", "redis-harness down dev --volumes"], cwd=root, env=env, capture_output=True)


@pytest.fixture(scope="module")
def ci_env(ci_deployment: Deployment) -> dict[str, str]:
    """Commands on `ci` run against the session's ci deployment, with its secrets in the environment."""
    return {k: v for k, v in ci_deployment.env.items() if k.startswith("REDIS_")}


def run_block(block: doc_commands.Block, root: Path, env: dict[str, str]) -> list[tuple[str, list[str], int]]:
    """Run a block's commands in one bash (so `set -a; . ./.env` carries over); each command's
    output (stdout and stderr, as a terminal shows them) and exit code."""
    marker = block.marker or ("", "")
    if marker[0] == "interrupt-after":
        return [_interrupted(c.text, float(marker[1]), root, env) for c in block.commands]
    script = ["exec 2>&1"]
    for command in block.commands:
        # On a line of its own, whatever the command left unfinished (a live view's last frame).
        script += [command.text, f'printf "\\n{DELIMITER} %s\\n" "$?"']
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    results: list[tuple[str, list[str], int]] = []
    lines: list[str] = []
    for line in done.stdout.splitlines():
        if line.startswith(DELIMITER):
            results.append((block.commands[len(results)].text, lines, int(line.split()[1])))
            lines = []
        elif not PROGRESS.match(line):
            lines.append(line)
    return results


def _interrupted(command: str, after_s: float, root: Path, env: dict[str, str]) -> tuple[str, list[str], int]:
    """A live view: started, Ctrl-C after `after_s`, as a reader stops it."""
    process = subprocess.Popen(
        ["bash", "-c", f"exec {command}"],
        cwd=root,
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


def check_block(block: doc_commands.Block, root: Path, env: dict[str, str]) -> list[str]:
    """What differs between the page and the commands' real output (empty when nothing does)."""
    problems = []
    marker = block.marker or ("", "")
    expected_codes = {int(marker[1])} if marker[0] == "exit" else {0}
    if marker[0] == "interrupt-after":
        expected_codes = {0, 130}
    results = run_block(block, root, env)
    if len(results) != len(block.commands):
        return [f"{block.where}: bash stopped after {len(results)} of {len(block.commands)} commands"]
    for command, (text, output, code) in zip(block.commands, results, strict=True):
        if code not in expected_codes:
            tail = "\n".join(output[-15:])
            problems.append(f"{block.where}: `{text}` exited {code}, expected {sorted(expected_codes)}:\n{tail}")
            continue
        ours = text.startswith(("redis-harness", "scripts/"))  # docker's and redis-cli's output are theirs
        wide = [ln for ln in output if ours and cell_len(ln) > WIDTH and not ln.startswith("redis-harness: ")]
        if wide:
            problems.append(f"{block.where}: `{text}` printed {len(wide)} lines wider than {WIDTH}: {wide[0]!r}")
        if command.output is not None:
            mismatch = doc_commands.shape_mismatch(command.output, output)
            if mismatch:
                problems.append(f"{block.where}: `{text}`: {mismatch}")
    return problems


# Commands that act on a deployment: on `ci` they go to the session's ci deployment (this checkout's).
ON_CI = re.compile(r"redis-harness (up|down|plan|status|verify|monitor|load|bench|fault|rollback) ci(\s|$)")


def _on_ci(block: doc_commands.Block) -> bool:
    return any(ON_CI.search(c.text) for c in block.commands)


def runnable(page: Path) -> list[doc_commands.Block]:
    return [b for b in doc_commands.blocks(page) if not b.marker or b.marker[0] not in ("covered-by", "not-run")]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_commands_run_as_shown(page: Path, reader: Path, ci_env: dict[str, str]) -> None:
    blocks = runnable(page)
    if not blocks:
        pytest.skip(f"{page.name} shows no command to run here")
    problems = []
    for block in blocks:
        if _on_ci(block):
            problems += check_block(block, REPO, reader_env(REPO, ci_env))
        else:
            problems += check_block(block, reader, reader_env(reader, {}))
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def dev_service_env(reader: Path) -> dict[str, str]:
    """dev up as the README brings it up, and what `env init --service price` tells a service to use."""
    env = reader_env(reader, {})
    for command in ("redis-harness env init", "redis-harness up dev", "redis-harness env init --service price"):
        done = subprocess.run(["bash", "-c", command], cwd=reader, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
    pairs = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line and not line.startswith("#"))
    assert pairs.get("REDIS_USERNAME") == "price", done.stdout
    return pairs


EXAMPLES = [
    e
    for page in PAGES
    for e in doc_commands.examples(page)
    if not e.marker or e.marker[0] not in ("covered-by", "not-run")
]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.where)
def test_example_programs_run_against_dev(
    example: doc_commands.Example, reader: Path, dev_service_env: dict[str, str]
) -> None:
    """The Python and Node programs the pages show, run as a service would: with the settings
    `env init --service price` printed. Node ones run beside tests/node's ioredis and redis."""
    if example.lang == "python":
        argv, cwd = [str(reader / ".venv" / "bin" / "python"), "-"], reader
    else:
        argv, cwd = ["node", "--input-type=module", "-"], reader / "tests" / "node"
    done = subprocess.run(
        argv,
        input=example.code,
        cwd=cwd,
        env=reader_env(reader, dev_service_env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{example.where}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
