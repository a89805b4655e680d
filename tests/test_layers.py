"""The layer contracts hold, and would catch the client library importing the harness."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import REPO

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(src: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(REPO / "pyproject.toml")],
        capture_output=True,
        text=True,
        env=env,
        cwd=src,
        timeout=120,
    )


def test_the_contracts_hold_for_the_code_as_it_is(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(REPO / "src" / "redis_harness", src / "redis_harness")
    result = lint_imports(src)
    assert result.returncode == 0, result.stdout[-2000:]


def lint_with_added_import(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess[str]:
    """lint-imports on a copy of the package where `module` (a path under redis_harness/) gained `line`."""
    src = tmp_path / "src"
    shutil.copytree(REPO / "src" / "redis_harness", src / "redis_harness")
    target = src / "redis_harness" / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    return lint_imports(src)


def test_a_client_module_importing_the_profile_breaks_the_independence_contract(tmp_path: Path) -> None:
    result = lint_with_added_import(tmp_path, "client/keys.py", "from redis_harness.profile.model import Profile")
    assert result.returncode == 1
    assert "independent of the harness BROKEN" in result.stdout


def test_a_stage_importing_a_later_stage_breaks_the_layers_contract(tmp_path: Path) -> None:
    result = lint_with_added_import(tmp_path, "render/files.py", "from redis_harness.deploy import compose")
    assert result.returncode == 1
    assert "only the stages before them BROKEN" in result.stdout
