"""The docs as a newcomer meets them: a short README with a table of contents whose links land,
pages in docs/ that link to each other correctly, every command shown either run by the docs
test (tests/test_docs_run.py) or by a named test that really runs it, and a troubleshooting
entry for every load gate and every verify check."""

from __future__ import annotations

import ast
import re
import shlex
import textwrap
from pathlib import Path

import pytest

from redis_harness.report.gates import GATES

from . import doc_commands
from .conftest import REPO

README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
README_MAX_LINES = 400
LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)\)")
IMAGE = re.compile(r"!\[[^\]]*\]\((?P<target>[^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    in_fence = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if doc_commands.FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and (match := re.match(r"^#{1,6}\s+(.*)$", line)):
            base = slug(match.group(1))
            name, n = base, 1
            while name in found:  # GitHub numbers repeated headings
                name, n = f"{base}-{n}", n + 1
            found.add(name)
    return found


def prose(page: Path) -> str:
    """The page without its fenced blocks (links inside code are examples, not links)."""
    kept, in_fence = [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if doc_commands.FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence:
            kept.append(line)
    return "\n".join(kept)


def test_readme_is_short_and_starts_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) < README_MAX_LINES
    first_block = doc_commands.blocks(README)[0]
    assert [c.text.split()[0] for c in first_block.commands] == ["scripts/run", "scripts/test"]
    assert "## Contents" in text


def test_readme_contents_lists_every_section() -> None:
    text = README.read_text(encoding="utf-8")
    contents = text.split("## Contents", 1)[1].split("\n## ", 1)[0]
    listed = {m.group("target")[1:] for m in LINK.finditer(contents) if m.group("target").startswith("#")}
    sections = {slug(h) for h in re.findall(r"^## (.*)$", text, flags=re.M)} - {"contents"}
    assert sections <= listed, f"sections missing from Contents: {sorted(sections - listed)}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_lands(page: Path) -> None:
    broken = []
    text = prose(page)
    for match in [*LINK.finditer(text), *IMAGE.finditer(text)]:
        target = match.group("target")
        if re.match(r"^[a-z]+://", target) or target.startswith("mailto:"):
            continue
        path_part, _, anchor = target.partition("#")
        target_page = (page.parent / path_part).resolve() if path_part else page
        if not target_page.exists():
            broken.append(f"{target}: no such file")
        elif anchor and target_page.suffix == ".md" and anchor not in anchors(target_page):
            broken.append(f"{target}: no heading with that anchor in {target_page.name}")
    assert not broken, broken


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {m.group("target").split("#")[0] for m in LINK.finditer(prose(README))}
    pages = {f"docs/{p.name}" for p in PAGES[1:]}
    assert pages <= linked, sorted(pages - linked)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_markers_are_known_and_sit_on_a_block(page: Path) -> None:
    used = {(b.line, b.marker) for b in doc_commands.blocks(page) if b.marker}
    used |= {(e.line, e.marker) for e in doc_commands.examples(page) if e.marker}  # a program run by another test
    for _line, kind, arg in doc_commands.markers(page):
        assert kind in doc_commands.KINDS, f"{page.name}: unknown docs marker {kind!r}"
        assert any(marker == (kind, arg) for _, marker in used), f"{page.name}: marker {kind} {arg} above no block"
        if kind == "not-run":
            assert len(arg) > 10, f"{page.name}: a not-run marker says why"


SHELL_OPERATORS = {"&&", "||", "|", ";", ">", ">>", "2>&1", "<"}


def _words(command: str) -> list[str]:
    """The words of a shown command that a test running it must also pass: the subcommand, its
    options and their names (a scenario, a fault). A covering test may use its own profile, file,
    numbers (users, durations, rates) and redirections."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    profiles = {p.stem for p in (REPO / "profiles").glob("*.yaml")}
    kept, skip_next = [], False
    for word in words:
        if skip_next:
            skip_next = False
        elif word in (">", ">>", "<"):
            skip_next = True  # the redirection's target
        elif not (
            word in SHELL_OPERATORS
            or word in ("redis-harness", *profiles)
            or word.startswith("$")
            or re.fullmatch(r"[\d.,]+(ms|s|m|h|%)?", word)
            or re.search(r"/|\.(ya?ml|xml|json|env)$", word)
        ):
            kept.append(word)
    return kept


def _test_source(reference: str) -> str:
    """The source of a test (or fixture) and of the module's functions it calls: a test that runs
    `load` through its module's `run_load` helper passes what the helper passes."""
    path, _, name = reference.partition("::")
    source = (REPO / path).read_text(encoding="utf-8")
    functions = {n.name: n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef)}
    if name not in functions:
        raise AssertionError(f"{reference}: no such test")
    called = {c.func.id for c in ast.walk(functions[name]) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
    parts = [functions[name], *(functions[n] for n in sorted(called) if n in functions and n != name)]
    lines = source.splitlines()

    def with_decorators(f: ast.FunctionDef) -> str:  # a parametrize list passes words too
        first = min([f.lineno, *(d.lineno for d in f.decorator_list)])
        return textwrap.dedent("\n".join(lines[first - 1 : f.end_lineno]))

    return "\n\n".join(with_decorators(f) for f in parts)


def _string_words(source: str) -> set[str]:
    """Every whitespace-separated word of every string literal in `source`."""
    words: set[str] = set()
    for node in ast.walk(ast.parse(textwrap.dedent(source))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            words.update(node.value.split())
    return words


def covered_blocks() -> list[doc_commands.Block]:
    return [b for p in PAGES for b in doc_commands.blocks(p) if b.marker and b.marker[0] == "covered-by"]


@pytest.mark.parametrize("block", covered_blocks(), ids=lambda b: b.where)
def test_a_covering_test_runs_the_shown_commands(block: doc_commands.Block) -> None:
    """`covered-by` must name tests that exist and contain every word of each shown command
    (subcommand, profile, options and their values), so the link cannot silently rot."""
    assert block.marker is not None
    passed = set().union(*(_string_words(_test_source(ref)) for ref in block.marker[1].split()))
    for command in block.commands:
        missing = [w for w in _words(command.text) if w not in passed]
        assert not missing, f"{block.where}: {command.text!r}: {block.marker[1]} never passes {missing}"


def test_shape_ignores_numbers_paths_and_spacing() -> None:
    shown = [
        "up redis-harness-dev: 1 create; generation 1, healthy in 4.6 s",
        "…",
        "report: /tmp/y/reports/20261126-035454-dev-smoke/report.html",
    ]
    actual = [
        "up redis-harness-dev: 1 create; generation 12, healthy in 10.25 s",
        "anything",
        "else",
        "report:   /work/main/reports/20261204-101010-dev-smoke/report.html",
    ]
    assert doc_commands.shape_mismatch(shown, actual) is None


@pytest.mark.parametrize(
    ("actual", "why"),
    [
        (["gate memory   FAIL  90 % > 80 %"], "a word changed (pass -> FAIL)"),
        (["gate memory   pass  10 % <= 80 %", "extra line"], "more output than shown"),
        ([], "no output"),
        (["gate memory   pass  10 <= 80 %"], "a unit dropped"),
    ],
)
def test_shape_fails_when_the_output_differs(actual: list[str], why: str) -> None:
    assert doc_commands.shape_mismatch(["gate memory   pass  10 % <= 80 %"], actual) is not None, why


def test_an_ellipsis_needs_the_lines_after_it() -> None:
    shown = ["first", "…", "last 1"]
    assert doc_commands.shape_mismatch(shown, ["first", "x", "y", "last 2"]) is None
    assert doc_commands.shape_mismatch(shown, ["first", "x", "y"]) is not None
    assert doc_commands.shape_mismatch(shown, ["second", "last 2"]) is not None


def test_a_line_ending_in_an_ellipsis_matches_its_beginning_only() -> None:
    shown = ["verify redis-harness-dev: passed…"]
    assert doc_commands.shape_mismatch(shown, ["verify redis-harness-dev: passed, 1 warning (profile dev)"]) is None
    assert doc_commands.shape_mismatch(shown, ["verify redis-harness-dev: passed"]) is None
    assert doc_commands.shape_mismatch(shown, ["verify redis-harness-dev: 2 failed (profile dev)"]) is not None


def test_commands_are_read_as_a_reader_types_them() -> None:
    assert doc_commands.strip_comment("redis-harness up dev   # converge") == "redis-harness up dev"
    assert doc_commands.strip_comment("redis-cli set 'a#b' 1") == "redis-cli set 'a#b' 1"
    page = REPO / "docs" / "load.md"
    texts = [c.text for b in doc_commands.blocks(page) for c in b.commands]
    assert all("#" not in t.split("'")[0] for t in texts)


# --- troubleshooting: every gate and every check has an entry ---------------------------------

TROUBLESHOOTING = REPO / "docs" / "troubleshooting.md"


def verify_checks() -> set[str]:
    names = set()
    for path in (REPO / "infra_tests").glob("test_*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                names.add(node.name.removeprefix("test_"))
    return names


def headed_names() -> set[str]:
    names: set[str] = set()
    for line in TROUBLESHOOTING.read_text(encoding="utf-8").splitlines():
        if match := re.match(r"^#{3,4} (.*)$", line):
            names |= {n.strip() for n in match.group(1).split(",")}
    return names


def test_every_gate_has_a_troubleshooting_entry() -> None:
    assert set(GATES) - headed_names() == set()


def test_every_verify_check_has_a_troubleshooting_entry() -> None:
    checks = verify_checks()
    assert len(checks) > 50  # the walk found the checks
    assert checks - headed_names() == set()


# --- pictures: every one the docs show is shot by a test -------------------------------------


def shown_pictures() -> set[str]:
    names = set()
    for page in PAGES:
        for match in IMAGE.finditer(prose(page)):
            target = match.group("target")
            if not re.match(r"^[a-z]+://", target):
                names.add(Path(target).name)
    return names


def test_every_picture_the_docs_show_is_shot_by_a_test() -> None:
    """tests/docs_pictures.keep("<name>", …) in the test that brings the state about; a picture
    drawn by hand, or one no test re-shoots any more, fails here."""
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "tests").glob("test_*.py"))
    kept = set(re.findall(r'\bkeep\(\s*"([^"]+)"', sources))
    shown = shown_pictures()
    assert shown, "the walk found the docs' pictures"
    assert shown - kept == set(), f"pictures no test shoots: {sorted(shown - kept)}"
    assert all((REPO / "docs" / name).is_file() for name in shown)
