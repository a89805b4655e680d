"""The certificate lifecycle's pure parts: why a certificate is due, what `cert` shows and prints as
JSON, the cert_expiry figure and alert. No containers (tests/test_certs_integration.py has those)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml

from redis_harness import paths
from redis_harness.cli import main
from redis_harness.cli.cert import format_certificates
from redis_harness.cli.plan import format_plan
from redis_harness.deploy.plan import Change, Plan
from redis_harness.monitor.alerts import ALERT_NAMES, CERT_ALERT, evaluate
from redis_harness.monitor.figures import cert_expiry
from redis_harness.monitor.view import alerts_view
from redis_harness.profile.model import Profile, load_profile
from redis_harness.render import certificates as certs
from redis_harness.terminal import plain_text

from .conftest import REPO, variant_profile

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def tls_profile(tmp_path: Path, base: str = "ha", name: str = "certsunit", **tls: object) -> Profile:
    """profiles/<base>.yaml with TLS (mutual) and `tls` settings, read back as a user's file would be."""
    raw = yaml.safe_load((REPO / "profiles" / f"{base}.yaml").read_text())
    security = {**raw["security"], "tls": {"enabled": True, "client_auth": "required", **tls}}
    return load_profile(str(variant_profile(base, tmp_path, name, security=security).source))


@pytest.fixture
def ha(tmp_path: Path) -> Profile:
    return tls_profile(tmp_path)


def issued(profile: Profile, now: dt.datetime = NOW) -> dict[str, str]:
    return certs.tls_files(profile, {}, now)


def serials(files: dict[str, str]) -> dict[str, int]:
    return {name: certs.read_cert(name, text).serial for name, text in files.items() if name.endswith(".crt")}


# --------------------------------------------------------------------------- renewal reasons


def test_a_fresh_set_has_nothing_due_and_reissuing_it_keeps_every_file(ha: Profile) -> None:
    files = issued(ha)
    assert certs.renewal_reasons(ha, files, NOW) == {}
    assert certs.tls_files(ha, files, NOW + DAY) == files


def test_a_certificate_is_due_from_renew_before_on_and_not_a_day_earlier(ha: Profile) -> None:
    files = issued(ha)
    validity, renew_before = dt.timedelta(seconds=ha.tls.validity_s), dt.timedelta(seconds=ha.tls.renew_before_s)
    not_yet = NOW + validity - renew_before - DAY
    due_at = NOW + validity - renew_before + DAY
    assert certs.renewal_reasons(ha, files, not_yet) == {}
    due = certs.renewal_reasons(ha, files, due_at)
    leaves = {n for n in files if n.endswith(".crt") and n != certs.CA_CERT}
    assert set(due) == leaves  # every leaf, not the CA (it lives ten years)
    assert due["tls-redis-0.crt"].startswith("expires in 29.0 days (renew_before 30d)")
    # `up` issues exactly those again: new serials for the leaves, the CA kept.
    renewed = certs.tls_files(ha, files, due_at)
    before, after = serials(files), serials(renewed)
    assert after[certs.CA_CERT] == before[certs.CA_CERT]
    assert all(after[n] != before[n] for n in leaves)


def test_a_certificate_whose_names_differ_from_the_profile_is_due(tmp_path: Path) -> None:
    files = issued(tls_profile(tmp_path))
    renamed = tls_profile(tmp_path, names=["redis.internal"])  # a YAML list, as a user writes it
    assert renamed.tls.names == ("redis.internal",)
    due = certs.renewal_reasons(renamed, files, NOW)
    assert due == {f"tls-{n.service}.crt": "names differ from the profile's" for n in renamed.nodes}


def test_a_certificate_from_another_ca_or_without_its_key_is_due(ha: Profile) -> None:
    files, other = issued(ha), issued(ha)
    mixed = {**files, "tls-redis-1.crt": other["tls-redis-1.crt"]}
    del mixed["tls-client-price.key"]
    due = certs.renewal_reasons(ha, mixed, NOW)
    assert due == {"tls-redis-1.crt": "not signed by the deployment's CA", "tls-client-price.crt": "missing"}


def test_a_ca_within_a_year_of_its_end_makes_everything_due(ha: Profile) -> None:
    files = issued(ha)
    late = NOW + certs.CA_VALIDITY - certs.CA_RENEW_BEFORE + DAY
    assert list(certs.renewal_reasons(ha, files, late)) == [certs.CA_CERT]
    statuses = certs.certificate_statuses(ha, files, late)
    assert all(s.reason for s in statuses)  # `cert` says every certificate goes with the CA


def test_rotate_issues_every_leaf_again_and_keeps_the_ca(ha: Profile) -> None:
    files = issued(ha)
    rotated = certs.tls_files(ha, files, NOW, renew_all=True)
    before, after = serials(files), serials(rotated)
    assert after[certs.CA_CERT] == before[certs.CA_CERT] and rotated[certs.CA_KEY] == files[certs.CA_KEY]
    assert {n for n in before if before[n] == after[n]} == {certs.CA_CERT}
    assert all(certs.signed_by(rotated[n], rotated[certs.CA_CERT]) for n in after if n != certs.CA_CERT)


def test_renewals_due_lists_file_and_reason(ha: Profile) -> None:
    files = issued(ha)
    late = NOW + dt.timedelta(seconds=ha.tls.validity_s) - DAY
    lines = certs.renewals_due(ha, files, late)
    assert "tls-sentinel-2.crt: expires in 1.0 days (renew_before 30d)" in lines


# --------------------------------------------------------------------------- the view and its JSON


@pytest.mark.parametrize("width", [100, 80])
def test_the_view_fits_the_width_and_names_every_certificate(ha: Profile, width: int) -> None:
    files = issued(ha)
    late = NOW + dt.timedelta(seconds=ha.tls.validity_s) - 2 * DAY
    for now in (NOW, late):
        text = format_certificates(ha, certs.certificate_statuses(ha, files, now), now, width)
        assert max(len(line) for line in text.splitlines()) <= width, text
        for name in certs.certificate_file_names(ha):
            assert name in text
        assert "PRIVATE KEY" not in text and ".key" not in text
    assert "none due for renewal" in format_certificates(ha, certs.certificate_statuses(ha, files, NOW), NOW, width)
    due_text = format_certificates(ha, certs.certificate_statuses(ha, files, late), late, width)
    assert "10 due for renewal" in due_text and "tls-redis-0.crt: expires in 2.0 days" in due_text


def test_the_view_shows_expiry_date_and_days_left(ha: Profile) -> None:
    files = issued(ha)
    text = format_certificates(ha, certs.certificate_statuses(ha, files, NOW), NOW, 100)
    row = next(line for line in text.splitlines() if line.startswith("tls-redis-0.crt"))
    assert "2027-03-04" in row and "90 d" in row and row.rstrip().endswith("no")


def test_the_json_of_a_certificate(ha: Profile) -> None:
    files = issued(ha)
    statuses = certs.certificate_statuses(ha, files, NOW)
    assert [s.role for s in statuses] == ["ca"] + ["server"] * 6 + ["client"] * 4
    document = json.loads(json.dumps([s.as_json(NOW) for s in statuses]))
    redis0 = next(c for c in document if c["file"] == "tls-redis-0.crt")
    assert set(redis0) == {
        "file",
        "role",
        "owner",
        "common_name",
        "subject",
        "issuer",
        "dns",
        "ips",
        "serial",
        "not_after",
        "days_left",
        "due",
        "reason",
    }
    assert redis0["owner"] == "redis-0" and redis0["common_name"] == "redis-0"
    assert redis0["dns"] == ["redis-0", "localhost"] and redis0["ips"] == ["127.0.0.1"]
    assert redis0["days_left"] == 90.0 and redis0["due"] is False and redis0["reason"] is None
    assert int(redis0["serial"], 16) == certs.read_cert("", files["tls-redis-0.crt"]).serial
    assert "KEY" not in json.dumps(document)


def test_own_pki_certificates_are_due_in_your_own_pki(tmp_path: Path) -> None:
    mine = tls_profile(tmp_path)
    files = issued(mine)
    (tmp_path / "ca.pem").write_text(files[certs.CA_CERT])
    (tmp_path / "server.pem").write_text(files["tls-redis-0.crt"])
    (tmp_path / "server.key").write_text(files["tls-redis-0.key"])
    own = tls_profile(tmp_path, name="certsown", ca_file="ca.pem", cert_file="server.pem", key_file="server.key")
    given = certs.tls_files(own, {})
    late = NOW + dt.timedelta(seconds=own.tls.validity_s) - DAY
    reasons = {s.info.file: s.reason for s in certs.certificate_statuses(own, given, late)}
    assert reasons[certs.CA_CERT] is None
    assert reasons["tls-redis-1.crt"] == "expires in 1.0 days: renew it in your own PKI"


# --------------------------------------------------------------------------- the command's refusals


def test_cert_on_a_profile_with_tls_off_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cert", "ci"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["redis-harness: security.tls.enabled: ci has TLS off, so it has no certificates; set enabled: true"]


def test_cert_before_up_says_to_run_up_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = tls_profile(tmp_path, name="certsnever")
    assert not paths.state_dir("certsnever").exists()
    assert main(["cert", str(profile.source)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "no certificates issued for certsnever yet" in line and "redis-harness up" in line
    assert not paths.state_dir("certsnever").exists()  # nothing written


def test_cert_with_a_wrong_word_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["cert", "renew", "ci"])
    assert exit_.value.code == 2
    assert "expected PROFILE or `rotate PROFILE`" in capsys.readouterr().err


# --------------------------------------------------------------------------- plan's renewals


def test_plan_lists_renewals_within_the_width() -> None:
    plan = Plan(
        changes=[
            Change(
                "sentinel-2",
                "tls certificate",
                "serial 6250f7e57d, until 2026-12-06",
                "serial 61e92f90d7, until 2027-03-04: expires in 2.0 days (renew_before 30d)",
                "restart",
            )
        ],
        renewals=["tls-sentinel-2.crt: expires in 2.0 days (renew_before 30d)"],
    )
    for width in (100, 80):
        text = format_plan("certsha", plan, width)
        assert max(len(line) for line in text.splitlines()) <= width, text
        assert "renewal due: tls-sentinel-2.crt: expires in 2.0 days" in text


# --------------------------------------------------------------------------- monitor's cert_expiry


def test_cert_expiry_is_the_soonest_served_certificate(ha: Profile) -> None:
    files = issued(ha)
    short = certs.tls_files(ha, {k: v for k, v in files.items() if "redis-2" not in k}, NOW - 80 * DAY)
    served: dict[str, certs.CertInfo | str] = {
        "redis-0": certs.read_cert("redis-0", files["tls-redis-0.crt"]),
        "redis-2": certs.read_cert("redis-2", short["tls-redis-2.crt"]),
        "sentinel-0": "no TLS handshake with 127.0.0.1:26400: refused",
    }
    figure = cert_expiry(served, NOW)
    assert figure is not None
    assert (figure["node"], figure["days"], figure["unreadable"]) == ("redis-2", 10.0, ["sentinel-0"])
    assert cert_expiry({"redis-0": "refused"}, NOW) is None


def _figures(days: float | None) -> dict[str, object]:
    return {"memory": {}, "cert_expiry": None if days is None else {"days": days}}


@pytest.mark.parametrize(("days", "firing"), [(31.0, False), (30.0, True), (2.0, True), (None, False)])
def test_the_cert_expiry_alert_fires_within_renew_before(days: float | None, firing: bool) -> None:
    alerts = load_profile("ci").alerts
    state = evaluate(_figures(days), alerts, 30 * 86400.0)[-1]
    assert (state.name, state.firing, state.threshold) == (CERT_ALERT, firing, 30.0)
    # Without TLS there is no such alert at all.
    assert [s.name for s in evaluate(_figures(days), alerts)] == list(ALERT_NAMES)


def test_a_firing_cert_expiry_reads_as_days_at_or_below_the_threshold() -> None:
    state = evaluate(_figures(2.0), load_profile("ci").alerts, 30 * 86400.0)[-1]
    text = plain_text(alerts_view([state], {}), 80)
    assert "cert_expiry  2.0 d <= 30.0 d" in text
