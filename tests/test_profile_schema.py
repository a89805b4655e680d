"""The published profile schema and the settings table in docs/profiles.md: generated from the model,
checked for drift, and every shipped profile valid against the schema."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from redis_harness import paths
from redis_harness.profile import schema

from .conftest import REPO
from .test_cli import run_cli

SHIPPED = sorted((REPO / "profiles").glob("*.yaml"))


def validator() -> jsonschema.Draft202012Validator:
    published = json.loads((REPO / "profiles" / schema.SCHEMA_NAME).read_text())
    jsonschema.Draft202012Validator.check_schema(published)
    return jsonschema.Draft202012Validator(published)


def test_schema_and_settings_table_are_up_to_date() -> None:
    assert schema.stale(paths.ROOT) == []
    result = run_cli("profile", "schema", "--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_names_a_stale_schema_and_table_and_regenerating_fixes_them(tmp_path: Path) -> None:
    page = tmp_path / schema.SETTINGS_PAGE
    (tmp_path / "profiles").mkdir()
    page.parent.mkdir()
    shutil.copy(REPO / schema.SETTINGS_PAGE, page)
    shutil.copy(REPO / "profiles" / schema.SCHEMA_NAME, tmp_path / "profiles" / schema.SCHEMA_NAME)
    assert schema.stale(tmp_path) == []
    text = page.read_text()
    page.write_text(text.replace("| `memory.policy` | `volatile-lru`", "| `memory.policy` | `x`"))
    (tmp_path / "profiles" / schema.SCHEMA_NAME).write_text("{}\n")
    assert schema.stale(tmp_path) == [tmp_path / "profiles" / schema.SCHEMA_NAME, page]
    assert len(schema.write(tmp_path)) == 2
    assert schema.stale(tmp_path) == []
    assert page.read_text() == text


def test_the_table_lists_every_setting_with_its_description() -> None:
    table = schema.settings_table()
    assert "| `resources.memory` | `256mb` | Container memory limit" in table
    assert "| `alerts.slow_update` | `100ms` |" in table
    assert "| `security.services.<name>.password_env` |" in table


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_profile_names_the_schema_on_its_first_line(path: Path) -> None:
    assert path.read_text().splitlines()[0] == schema.MODELINE


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_profile_is_valid_against_the_schema(path: Path) -> None:
    errors = [e.message for e in validator().iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("memory", "polcy", "allkeys-lru"),
        ("memory", "policy", "lru"),
        ("memory", "maxmemory_ratio", 0.95),
        ("resources", "memory", "1.5gb"),
        ("resources", "memory", "2tb"),
        ("alerts", "slow_update", "soon"),
        ("persistence", "rdb_save", ["300"]),
        ("network", "port", 80),
        ("server", "maxclients", "many"),
    ],
)
def test_the_schema_refuses_what_the_model_refuses(section: str, key: str, value: Any) -> None:
    raw = yaml.safe_load((REPO / "profiles" / "dev.yaml").read_text())
    raw[section][key] = value
    assert not validator().is_valid(raw)


def test_every_setting_in_the_schema_has_a_description() -> None:
    published = schema.profile_schema()
    sections = [published, *published["$defs"].values()]
    missing = [
        f"{section.get('title')}.{name}"
        for section in sections
        for name, prop in section.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert missing == []
    assert len([name for s in sections for name in s.get("properties", {})]) > 50
