"""The pictures the docs show, shot by the tests that bring about what they show.

A test that makes a state worth showing (the web UI after Stop, an eviction run's charts,
`monitor` with an alert firing, Prometheus's alerts page) keeps a picture of it here, in
reports/docs-pictures/; `scripts/docs-pictures` copies them into docs/ after a test run, so
the docs' pictures are re-shot from tests, never drawn by hand. tests/test_docs.py holds every
picture the docs show to a test that keeps it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .conftest import REPO

PICTURES_DIR = REPO / "reports" / "docs-pictures"


def keep(name: str, picture: bytes | Path) -> Path:
    """Keep a picture for the docs under `name` (the file name the docs use)."""
    PICTURES_DIR.mkdir(parents=True, exist_ok=True)
    target = PICTURES_DIR / name
    if isinstance(picture, Path):
        shutil.copyfile(picture, target)
    else:
        target.write_bytes(picture)
    return target
