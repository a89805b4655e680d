"""The alert rules tested like code: `promtool check rules` and `promtool test rules` with synthetic series.

The rules are rendered from profiles/ci.yaml with monitoring enabled, exactly
as `up` renders them; tests/promtool/rules_test.yml holds the series and the
alerts each must (not) produce. A changed threshold makes those tests fail.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from redis_harness.profile.credentials import load_secrets
from redis_harness.profile.model import Profile
from redis_harness.render.files import render_files

from .conftest import REPO, generated_env, variant_profile

RULES_TEST = REPO / "tests" / "promtool" / "rules_test.yml"
# What rules_test.yml assumes of the ci profile (see its header).
ASSUMED = {
    "miss_ratio": 0.2,
    "memory_ratio": 0.8,
    "slow_update_s": 0.1,
    "evictions_per_s": 100,
    "keys_without_ttl_ratio": 0.5,
}
MONITORING = {"enabled": True, "scrape_interval": "5s", "alert_for": "30s"}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing; scripts/bootstrap-host installs Debian's prometheus package, which has it")
    return path


def rendered_rules(tmp_path: Path, **alerts: object) -> Path:
    profile: Profile = variant_profile("ci", tmp_path, "promtool", monitoring=MONITORING, alerts=alerts)
    files = render_files(profile, load_secrets(profile, env=generated_env()))
    (tmp_path / "rules.yml").write_text(files["rules.yml"])
    shutil.copy(RULES_TEST, tmp_path / "rules_test.yml")
    return tmp_path


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, cwd=cwd, timeout=60)


def test_ci_thresholds_are_the_ones_the_rule_tests_assume(tmp_path: Path) -> None:
    profile = variant_profile("ci", tmp_path, "promtool", monitoring=MONITORING)
    assert {name: getattr(profile.alerts, name) for name in ASSUMED} == ASSUMED


def test_rendered_rules_pass_promtool_check(tmp_path: Path) -> None:
    folder = rendered_rules(tmp_path)
    result = run("check", "rules", "rules.yml", cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 rules found" in result.stdout


def test_each_alert_fires_above_its_threshold_and_not_at_it(tmp_path: Path) -> None:
    folder = rendered_rules(tmp_path)
    result = run("test", "rules", "rules_test.yml", cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("alerts", "alert"),
    [
        ({"memory_ratio": 0.81}, "RedisMemoryHigh"),
        ({"miss_ratio": 0.25}, "RedisMissRatioHigh"),
        ({"evictions_per_s": 98}, "RedisEvictionsFrequent"),
        ({"slow_update": "50ms"}, "RedisSlowUpdates"),
        ({"keys_without_ttl_ratio": 0.45}, "RedisKeysWithoutTtl"),
    ],
)
def test_a_changed_threshold_fails_the_rule_tests(tmp_path: Path, alerts: dict, alert: str) -> None:
    folder = rendered_rules(tmp_path, **alerts)
    result = run("test", "rules", "rules_test.yml", cwd=folder)
    assert result.returncode != 0
    assert f"alertname: {alert}" in result.stdout + result.stderr


def test_broken_rule_file_fails_promtool_check(tmp_path: Path) -> None:
    folder = rendered_rules(tmp_path)
    rules = folder / "rules.yml"
    rules.write_text(rules.read_text().replace("redis_memory_used_bytes /", "redis_memory_used_bytes //", 1))
    assert run("check", "rules", "rules.yml", cwd=folder).returncode != 0
