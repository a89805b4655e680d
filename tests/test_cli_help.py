"""A CLI that explains itself: every command, subcommand and option carries help, and every command examples.

The walk covers the whole argparse tree, so a command added later is held to the same rule.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from redis_harness import __version__, paths
from redis_harness.cli import build_parser
from redis_harness.cli.common import add_command, known_profiles

from .conftest import REPO


def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parser and every parser below it, depth first."""
    yield parser
    for action in parser._actions:  # argparse offers no public walk of its tree
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from parsers(child)


def problems(root: argparse.ArgumentParser) -> list[str]:
    """Every parser without a one-line description or an example, and every option without help."""
    found = []
    for parser in parsers(root):
        description = (parser.description or "").strip()
        if not description or len(description.splitlines()[0]) > 120:
            found.append(f"{parser.prog}: no one-line description")
        examples = (parser.epilog or "").split("examples:", 1)
        if len(examples) < 2 or not any(line.strip().startswith("redis-harness") for line in examples[1].splitlines()):
            found.append(f"{parser.prog}: no example in --help")
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            name = "/".join(action.option_strings) or action.metavar or action.dest
            if not action.help or action.help == argparse.SUPPRESS:
                found.append(f"{parser.prog}: {name} has no help")
            if isinstance(action, argparse._SubParsersAction):
                listed = {choice.dest for choice in action._choices_actions}
                for sub in action.choices:
                    if sub not in listed:
                        found.append(f"{parser.prog}: {sub} has no summary in the command list")
    return found


def test_every_command_and_option_explains_itself() -> None:
    assert problems(build_parser()) == []


def test_the_walk_reaches_every_command_and_subcommand() -> None:
    progs = {p.prog for p in parsers(build_parser())}
    assert {"redis-harness", "redis-harness verify", "redis-harness image build", "redis-harness env init"} <= progs


def test_the_walk_fails_on_a_command_without_help_or_examples() -> None:
    root = build_parser()
    sub = next(a for a in root._actions if isinstance(a, argparse._SubParsersAction))
    bare = sub.add_parser("bare")  # as a command added without cli/common.add_command would be
    bare.add_argument("--quiet", action="store_true")
    good = add_command(sub, "good", "a command done right", ["redis-harness good"])
    good.add_argument("--loud", action="store_true")  # but an option without help
    found = problems(root)
    assert "redis-harness bare: no one-line description" in found
    assert "redis-harness bare: no example in --help" in found
    assert "redis-harness bare: --quiet has no help" in found
    assert "redis-harness: bare has no summary in the command list" in found
    assert "redis-harness good: --loud has no help" in found
    assert not [p for p in found if p.startswith("redis-harness good:") and "--loud" not in p]


def run_help(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "redis_harness.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=60
    )


def test_version() -> None:
    result = run_help("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"redis-harness {__version__}"


@pytest.mark.parametrize("command", ["up", "verify", "load", "status", "image build", "env init"])
def test_help_shows_examples_through_the_real_cli(command: str) -> None:
    result = run_help(*command.split(), "--help")
    assert result.returncode == 0, result.stderr
    examples = result.stdout.split("examples:", 1)[1]
    assert f"redis-harness {command}" in examples


def test_the_profile_list_comes_from_profiles_folder() -> None:
    names = known_profiles()
    assert names == sorted(p.stem for p in paths.PROFILES_DIR.glob("*.yaml")) and "ci" in names
    helptext = run_help("up", "--help").stdout
    assert f"({', '.join(names)})" in " ".join(helptext.split())


def test_a_usage_error_is_one_line_naming_the_help() -> None:
    result = run_help("verfy", "dev")
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines() == [result.stderr.strip()] and "see `redis-harness --help`" in result.stderr
    )
    result = run_help("verify")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "PROFILE" in result.stderr and "`redis-harness verify --help`" in result.stderr


def test_a_hint_names_the_profile_as_the_user_gave_it(tmp_path: Path) -> None:
    assert paths.profile_argument("ci", paths.PROFILES_DIR / "ci.yaml") == "ci"
    elsewhere = tmp_path / "ci.yaml"  # same name, another file: `up ci` would take the wrong one
    assert paths.profile_argument("ci", elsewhere) == str(elsewhere)
    assert paths.profile_argument("x", tmp_path / "x.yaml") == str(tmp_path / "x.yaml")
