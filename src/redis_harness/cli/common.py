"""What every command shares: the PROFILE argument, help with examples, and a parser for subcommands."""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from typing import Any, NoReturn

from redis_harness import paths
from redis_harness.deploy import ownership
from redis_harness.errors import BadInput
from redis_harness.profile.credentials import PREVIOUS_SUFFIX, Secrets
from redis_harness.profile.model import Profile, load_profile
from redis_harness.terminal import view_width

# "  smoke         10 s of ...": a name and its text; a wrapped line continues under the text.
_LISTED = re.compile(r"^(\s*\S+\s{2,})\S")


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line that says where the help is (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message}; see `{self.prog} --help`", file=sys.stderr)
        sys.exit(2)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's help laid out for min(terminal, 100) columns.

    Descriptions and epilogs keep their paragraphs and lists; a line longer
    than the width wraps, a listed item under its own text."""

    def __init__(self, prog: str, **kwargs: Any) -> None:
        kwargs.setdefault("width", view_width() - 2)  # argparse's own margin
        super().__init__(prog, **kwargs)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines = []
        for line in text.splitlines():
            listed = _LISTED.match(line)
            hanging = " " * len(listed[1]) if listed else re.match(r"\s*", line)[0]  # type: ignore[index]
            lines += textwrap.wrap(
                line, width, initial_indent=indent, subsequent_indent=indent + hanging, break_on_hyphens=False
            ) or [""]
        return "\n".join(lines)


def known_profiles() -> list[str]:
    """The profile names in profiles/, as the user can type them."""
    return sorted(p.stem for p in paths.PROFILES_DIR.glob("*.yaml"))


def add_profile_argument(parser: argparse.ArgumentParser) -> None:
    names = ", ".join(known_profiles()) or "none yet"
    parser.add_argument(
        "profile", metavar="PROFILE", help=f"a profile name in profiles/ ({names}) or a path to a YAML file"
    )


def add_command(
    sub: Any, name: str, summary: str, examples: list[str], description: str = "", **kwargs: Any
) -> argparse.ArgumentParser:
    """A subcommand whose --help has a one-line summary, what it does, and examples to copy."""
    epilog = "examples:\n" + "\n".join(f"  {example}" for example in examples)
    text = summary[0].upper() + summary[1:] + "."
    if description:
        text += "\n\n" + description  # wrapped to the terminal when shown
    return sub.add_parser(
        name,
        help=summary,
        description=text,
        epilog=epilog,
        formatter_class=HelpFormatter,
        **kwargs,
    )


def add_take_over_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        ownership.TAKE_OVER_FLAG,
        dest="take_over",
        action="store_true",
        help="act on a deployment another checkout on this host owns, making this checkout its owner",
    )


def require_owned(profile: Profile, command: str) -> None:
    """A changing command (load, fault, bench) on another checkout's deployment: refused, exit 2,
    naming the owner and `up --take-over` (deploy.ownership). A target belongs to no checkout."""
    if profile.target is None:
        ownership.require_owned(profile, command)


def note_owner(profile: Profile) -> None:
    """Read-only commands work from any checkout; they say when the deployment is another's (on
    stderr, so their output and JSON stay the same)."""
    note = None if profile.target is not None else ownership.owner_note(profile)
    if note is not None:
        print(note, file=sys.stderr)


def note_previous_passwords(secrets: Secrets, in_sync: bool) -> None:
    """What each <VAR>_PREVIOUS still does, on stderr, once the deployment is what the profile says: the
    admin's is spent (every node runs with the new one), a service's keeps its old password accepted."""
    if not in_sync:
        return
    notes = []
    if secrets.admin.previous:
        admin = secrets.admin.env
        notes.append(f"note: every node runs with the new {admin}; remove {admin}{PREVIOUS_SUFFIX}")
    for user in (secrets.default, *secrets.services):
        if user.previous:
            notes.append(
                f"note: {user.env}{PREVIOUS_SUFFIX} keeps {user.user}'s old password accepted; remove it and `up` "
                "once its clients use the new one"
            )
    for note in notes:
        print(textwrap.fill(note, view_width(), subsequent_indent="  ", break_on_hyphens=False), file=sys.stderr)


def deployment_profile(argument: str, command: str) -> Profile:
    """The profile of a deployment the harness makes; a target (a Redis it did not deploy) is refused in
    one line, exit 2: this command changes or inspects the harness's own containers."""
    profile = load_profile(argument)
    if profile.target is not None:
        raise BadInput(
            f"{command}: '{profile.name}' is a target ({profile.target.where}), a Redis the harness did not "
            f"deploy; {command} needs the harness's own deployment (load, monitor and verify work on a target)"
        )
    return profile
