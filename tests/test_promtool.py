"""The alert rules tested like code: `promtool check rules` and `promtool test rules` with synthetic series.

The rules are rendered from profiles/ci.yaml with monitoring enabled, exactly
as `up` renders them; tests/promtool/rules_test.yml holds the series and the
alerts each must (not) produce. A changed threshold makes those tests fail.
With security.tls on, tests/promtool/tls_rules_test.yml does the same for
RedisCertExpiringSoon (renew_before) and RedisTlsHandshakeFailing.
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
TLS_RULES_TEST = REPO / "tests" / "promtool" / "tls_rules_test.yml"
TLS_RENEW_BEFORE_DAYS = 30  # what tls_rules_test.yml assumes (the default renew_before)
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


def rendered_rules(tmp_path: Path, tls: dict | None = None, **alerts: object) -> Path:
    """rules.yml rendered beside its rule tests (the TLS ones with `tls`, the security.tls settings)."""
    security = {"security": {"tls": {"enabled": True, **tls}}} if tls is not None else {}
    profile: Profile = variant_profile("ci", tmp_path, "promtool", monitoring=MONITORING, alerts=alerts, **security)
    files = render_files(profile, load_secrets(profile, env=generated_env()))
    (tmp_path / "rules.yml").write_text(files["rules.yml"])
    shutil.copy(RULES_TEST if tls is None else TLS_RULES_TEST, tmp_path / "rules_test.yml")
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


def test_tls_rules_pass_promtool_check_and_assume_the_default_renew_before(tmp_path: Path) -> None:
    profile = variant_profile("ci", tmp_path, "promtool", security={"tls": {"enabled": True}}, monitoring=MONITORING)
    assert profile.tls.renew_before_s / 86400 == TLS_RENEW_BEFORE_DAYS
    folder = rendered_rules(tmp_path, tls={})
    result = run("check", "rules", "rules.yml", cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 rules found" in result.stdout


def test_cert_expiry_fires_within_renew_before_and_not_beyond_it(tmp_path: Path) -> None:
    folder = rendered_rules(tmp_path, tls={})
    result = run("test", "rules", "rules_test.yml", cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    "renew_before",
    [
        "29d",  # the certificate 29.9986 days from its end no longer fires
        "31d",  # the one 30.002 days from its end fires too
    ],
)
def test_another_renew_before_fails_the_cert_expiry_rule_tests(tmp_path: Path, renew_before: str) -> None:
    folder = rendered_rules(tmp_path, tls={"renew_before": renew_before})
    result = run("test", "rules", "rules_test.yml", cwd=folder)
    assert result.returncode != 0
    assert "alertname: RedisCertExpiringSoon" in result.stdout + result.stderr


def test_a_handshake_rule_that_ignores_the_blackbox_being_down_fails_its_rule_test(tmp_path: Path) -> None:
    folder = rendered_rules(tmp_path, tls={})
    rules = folder / "rules.yml"
    rules.write_text(rules.read_text().replace(' or up{job="tls"} == 0', "", 1))
    result = run("test", "rules", "rules_test.yml", cwd=folder)
    assert result.returncode != 0
    assert "alertname: RedisTlsHandshakeFailing" in result.stdout + result.stderr
