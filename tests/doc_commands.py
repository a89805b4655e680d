"""The commands README.md and docs/*.md show, and the shape their output must keep.

A fenced block is a *transcript* when its lines start with `$ `: each such line is a
command, and the lines under it are its output as the page shows it. Any other
`sh` block lists commands without output, one per line (`\\` continues a line,
`# …` is a comment). Blocks in other languages (yaml, python, js …) are not
commands; `python` and `js` examples are run by their own tests.

A comment right above a block says how the docs test treats it:
  <!-- docs: covered-by tests/test_x.py::test_y -->   another test runs these commands
  <!-- docs: not-run: REASON -->                      never run (e.g. another host); says why
  <!-- docs: interrupt-after SECONDS -->             a live view: Ctrl-C after that long
  <!-- docs: exit CODE -->                           the commands are meant to exit with CODE
Without one, the docs test runs the block as shown.

Shape: the output must have the shown lines in order, each the same text except for
numbers, sizes and paths; `<a placeholder>` stands for one value the page does not show (a
password), a line holding only `…` for any number of lines, and a line ending in `…` for its
beginning followed by anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

MARKER = re.compile(r"<!--\s*docs:\s*(?P<kind>[a-z-]+)\s*(?P<arg>.*?)\s*-->")
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,})(?P<lang>[\w+-]*)\s*$")
SKIP_ANY = "…"
KINDS = ("covered-by", "not-run", "interrupt-after", "exit")


@dataclass
class Command:
    text: str  # as the reader would type it
    output: list[str] | None  # the shown output (transcripts), None when none is shown


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    commands: list[Command] = field(default_factory=list)
    marker: tuple[str, str] | None = None  # (kind, argument)

    @property
    def where(self) -> str:
        return f"{self.page.name}:{self.line}"

    @property
    def transcript(self) -> bool:
        return any(c.output is not None for c in self.commands)


def _join_continuations(lines: list[str]) -> list[str]:
    joined: list[str] = []
    pending = ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1].rstrip() + " "
            continue
        joined.append(pending + line.strip() if pending else line)
        pending = ""
    if pending:
        joined.append(pending.strip())
    return joined


def strip_comment(line: str) -> str:
    """`redis-harness up dev   # comment` -> `redis-harness up dev` (a # inside quotes or a word stays)."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def _commands(lang: str, body: list[str]) -> list[Command]:
    if any(line.startswith("$ ") for line in body):
        commands: list[Command] = []
        for line in body:
            if line.startswith("$ "):
                commands.append(Command(strip_comment(line[2:]), []))
            elif commands:
                commands[-1].output.append(line)  # type: ignore[union-attr]
        return commands
    if lang not in ("sh", "bash", "shell", "console"):
        return []
    lines = _join_continuations(body)
    return [Command(strip_comment(line), None) for line in lines if strip_comment(line)]


def _fenced(page: Path) -> list[tuple[int, str, list[str], tuple[str, str] | None]]:
    """Every fenced block of a page: (line of its opening fence, language, body, marker above it)."""
    found = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, lang, start = opening.group("fence"), opening.group("lang"), i
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        i = end + 1
        above = start - 1
        while above >= 0 and not lines[above].strip():
            above -= 1
        marker = None
        if above >= 0 and (match := MARKER.fullmatch(lines[above].strip())):
            marker = (match.group("kind"), match.group("arg"))
        found.append((start + 1, lang, lines[start + 1 : end], marker))
    return found


def blocks(page: Path) -> list[Block]:
    """Every fenced block of a Markdown page that holds commands, with the marker above it."""
    return [
        Block(page, line, lang, commands, marker)
        for line, lang, body, marker in _fenced(page)
        if (commands := _commands(lang, body))
    ]


EXAMPLE_LANGS = {"python": "python", "js": "node", "javascript": "node"}


@dataclass
class Example:
    """A program a page shows (python, js): the docs test runs it against the deployment it names."""

    page: Path
    line: int
    lang: str
    code: str
    marker: tuple[str, str] | None = None

    @property
    def where(self) -> str:
        return f"{self.page.name}:{self.line}"


def examples(page: Path) -> list[Example]:
    """Every python/js block of a page, with the marker above it."""
    return [
        Example(page, line, lang, "\n".join(body) + "\n", marker)
        for line, lang, body, marker in _fenced(page)
        if lang in EXAMPLE_LANGS
    ]


def markers(page: Path) -> list[tuple[int, str, str]]:
    """Every docs marker on a page (line, kind, argument), to catch misspelt ones."""
    result = []
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        match = MARKER.fullmatch(line.strip())  # a marker stands on a line of its own (not quoted in prose)
        if match:
            result.append((number, match.group("kind"), match.group("arg")))
    return result


# --- shape ----------------------------------------------------------------------------------

_NUMBER = r"[-+]?(?:\d[\d,]*(?:\.\d+)?|\.\d+)"
_TOKEN = re.compile(
    r"(?P<placeholder><[^<>\s][^<>]*>)"  # <price's password>: a value the page does not show
    r"|(?P<path>(?<![\w.])(?:/[\w.@%+=:,-]+)+/?)"  # an absolute path: any absolute path
    r"|(?P<hex>\b[0-9a-f]{8,}\b)"  # ids and hashes
    r"|(?P<size>" + _NUMBER + r" ?(?:B|KiB|MiB|GiB|TiB)\b)"  # a size: any size, in any binary unit
    r"|(?P<number>" + _NUMBER + r")"
    r"|(?P<space>\s+)"
)


def line_pattern(shown: str) -> re.Pattern[str]:
    """A shown output line as a pattern: the same words, any numbers, hashes and paths, any spacing;
    a line that ends in `…` may go on with anything (what the host adds: a warning count)."""
    if shown.rstrip().endswith(SKIP_ANY) and shown.strip() != SKIP_ANY:
        head = line_pattern(shown.rstrip()[: -len(SKIP_ANY)])
        return re.compile(head.pattern + r".*")
    parts: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(shown):
        parts.append(re.escape(shown[pos : match.start()]))
        kind = match.lastgroup
        if kind == "placeholder":
            parts.append(r"\S+")
        elif kind == "path":
            parts.append(r"/\S*")
        elif kind == "hex":
            parts.append(r"[0-9a-f]+")
        elif kind == "size":
            parts.append(_NUMBER + r" ?(?:B|KiB|MiB|GiB|TiB)")
        elif kind == "number":
            parts.append(_NUMBER)
        else:
            parts.append(r"\s+")
        pos = match.end()
    parts.append(re.escape(shown[pos:]))
    return re.compile("".join(parts).strip() and r"\s*" + "".join(parts).strip() + r"\s*")


def shape_mismatch(shown: list[str], actual: list[str]) -> str | None:
    """None when `actual` has the shape of `shown`; else what differs, for the test's message (the
    mismatch that got furthest down the page, where a `…` allows several alignments)."""
    shown = [line for line in shown if line.strip()]
    actual = [line for line in actual if line.strip()]
    found = _match(shown, 0, actual, 0)
    return None if found is None else found[1]


def _match(shown: list[str], i: int, actual: list[str], j: int) -> tuple[int, str] | None:
    """None on a match; else (how far down `shown` it got, what differs there)."""
    while i < len(shown):
        if shown[i].strip() == SKIP_ANY:
            if i + 1 == len(shown):
                return None  # a trailing … takes the rest
            furthest: tuple[int, str] | None = None
            for k in range(j, len(actual) + 1):
                error = _match(shown, i + 1, actual, k)
                if error is None:
                    return None
                if furthest is None or error[0] > furthest[0]:
                    furthest = error
            return furthest
        if j >= len(actual):
            return i, f"output ended; the page shows next: {shown[i]!r}"
        if not line_pattern(shown[i]).fullmatch(actual[j]):
            return i, f"the page shows {shown[i]!r}, the command printed {actual[j]!r}"
        i += 1
        j += 1
    if j < len(actual):
        return i, f"the command printed more than the page shows, from {actual[j]!r} (end the block with … )"
    return None
