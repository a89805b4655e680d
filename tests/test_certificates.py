"""security.tls and network.publish: host in the profile, and the deployment's CA and certificates
(render/certificates.py): what is issued, what is reused, what is renewed, and what the files hold."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from redis_harness.errors import BadInput
from redis_harness.profile.model import Profile, profile_from_mapping
from redis_harness.render import certificates as certs
from redis_harness.render.files import render_files
from redis_harness.render.secret_files import CONTAINER_UID, MONITORING_UID, key_owner

from .conftest import generated_env
from .test_profile import dev_raw, refused

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)


def tls_profile(tls: dict | None = None, topology: str = "standalone", **sections: object) -> Profile:
    raw = dev_raw()
    raw["name"] = "tlsunit"
    raw["topology"] = topology
    raw["security"]["tls"] = {"enabled": True, "client_auth": "required", **(tls or {})}
    raw.update(sections)
    return profile_from_mapping(raw, Path("/tmp/tlsunit.yaml"))


def load(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


# --------------------------------------------------------------------------- the profile


def test_tls_is_off_by_default_and_publish_host_needs_it() -> None:
    raw = dev_raw()
    assert profile_from_mapping(raw, Path("dev.yaml")).tls.enabled is False
    raw["network"] = {"publish": "host", "host": "198.18.0.1", "port": 6379, "allow": ["198.18.1.0/24"]}
    message = refused(raw)
    assert message.startswith("network.publish:") and "plaintext" in message and "tls.enabled" in message
    raw["network"]["allow"] = ["127.0.0.0/8"]  # only loopback: nothing crosses a network
    assert profile_from_mapping(raw, Path("dev.yaml")).network.publish == "host"


@pytest.mark.parametrize(
    ("network", "field", "words"),
    [
        ({"publish": "host", "host": "198.18.0.1"}, "network.allow:", "e.g. allow"),
        ({"publish": "host", "host": "198.18.0.1", "allow": ["0.0.0.0/0"]}, "network.allow", "every address"),
        ({"publish": "host", "host": "198.18.0.1", "allow": ["198.18.1.7/24"]}, "network.allow", "network address"),
        ({"publish": "host", "host": "198.18.0.1", "allow": ["fe80::/64"]}, "network.allow", "IPv6"),
        ({"publish": "host", "host": "198.18.0.1", "allow": "198.18.1.0/24"}, "network.allow", "a list"),
        ({"publish": "host", "host": "0.0.0.0", "allow": ["198.18.1.0/24"]}, "network.host:", "one host address"),
        ({"publish": "loopback", "allow": ["198.18.1.0/24"]}, "network.allow:", "only publish: host"),
    ],
)
def test_bad_publish_settings_are_refused_in_one_line(network: dict, field: str, words: str) -> None:
    raw = dev_raw()
    raw["security"]["tls"] = {"enabled": True}
    raw["network"] = {**raw["network"], **network}
    message = refused(raw)
    assert message.startswith(field) and words in message, message


@pytest.mark.parametrize(
    ("tls", "field", "words"),
    [
        ({"client_auth": "sometimes"}, "security.tls.client_auth:", "required"),
        ({"min_version": "TLSv1.1"}, "security.tls.min_version:", "TLSv1.2"),
        ({"validity": "12h"}, "security.tls.validity:", "1d and 825d"),
        ({"validity": "30d", "renew_before": "30d"}, "security.tls.renew_before:", "not shorter"),
        ({"ca_file": "ca.pem"}, "security.tls.ca_file:", "cert_file, key_file"),
        ({"names": ["bad name"]}, "security.tls.names", "host name"),
        ({"enabled": False, "ca_file": "a", "cert_file": "b", "key_file": "c"}, "security.tls.enabled:", "TLS is off"),
    ],
)
def test_bad_tls_settings_are_refused_in_one_line(tls: dict, field: str, words: str) -> None:
    raw = dev_raw()
    raw["security"]["tls"] = {"enabled": True, **tls}
    message = refused(raw)
    assert message.startswith(field) and words in message, message


def test_monitoring_with_tls_is_accepted_but_still_only_on_loopback() -> None:
    raw = dev_raw()
    raw["security"]["tls"] = {"enabled": True}
    raw["monitoring"] = {"enabled": True}
    assert profile_from_mapping(raw, Path("dev.yaml")).monitoring.enabled
    raw["network"] = {**raw["network"], "publish": "host", "host": "198.18.0.1", "allow": ["198.18.1.0/24"]}
    assert refused(raw).startswith("monitoring.enabled: needs network.publish: loopback")


def test_monitoring_with_tls_gives_the_exporter_a_client_certificate_its_containers_own() -> None:
    profile = tls_profile(monitoring={"enabled": True})
    files = certs.tls_files(profile, {}, NOW)
    cert_file, key_file = certs.client_files("exporter")
    cert = load(files[cert_file])
    cert.verify_directly_issued_by(load(files[certs.CA_CERT]))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "exporter"
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    assert {cert_file, key_file} <= set(certs.mounted_names(profile))
    node_key = certs.node_files(profile.nodes[0])[1]
    owners = {name: key_owner(profile, name) for name in (key_file, node_key, certs.client_files("admin")[1])}
    assert owners == {key_file: MONITORING_UID, node_key: CONTAINER_UID, certs.client_files("admin")[1]: None}
    # Without monitoring nobody needs it: not issued, not mounted.
    plain = tls_profile()
    assert cert_file not in certs.tls_files(plain, {}, NOW) and cert_file not in certs.mounted_names(plain)
    assert key_owner(plain, key_file) is None


# --------------------------------------------------------------------------- issuing


def test_every_node_gets_its_own_certificate_naming_what_clients_use() -> None:
    profile = tls_profile({"names": ["redis.internal", "10.0.4.7"]}, topology="sentinel")
    files = certs.tls_files(profile, {}, NOW)
    ca = load(files[certs.CA_CERT])
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    serials = set()
    for node in profile.nodes:
        crt, key = certs.node_files(node)
        cert = load(files[crt])
        serials.add(cert.serial_number)
        cert.verify_directly_issued_by(ca)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert set(san.get_values_for_type(x509.DNSName)) == {node.service, "localhost", "redis.internal"}
        assert set(san.get_values_for_type(x509.IPAddress)) == {
            ipaddress.ip_address(a) for a in ("127.0.0.1", "10.0.4.7")
        }
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(usages)
        assert cert.not_valid_after_utc - NOW == dt.timedelta(days=90)
        assert "BEGIN PRIVATE KEY" in files[key]
    assert len(serials) == len(profile.nodes) == 6


def test_client_certificates_for_every_service_and_the_harness() -> None:
    profile = tls_profile()
    files = certs.tls_files(profile, {}, NOW)
    for user in ("price", "processing", "acquisition", "admin"):
        cert = load(files[certs.client_files(user)[0]])
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == user
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]  # a client certificate cannot serve


def test_a_second_up_reuses_every_certificate() -> None:
    profile = tls_profile()
    first = certs.tls_files(profile, {}, NOW)
    again = certs.tls_files(profile, first, NOW + dt.timedelta(days=10))
    assert again == first
    assert certs.renewals_due(profile, first, NOW + dt.timedelta(days=10)) == []


def test_certificates_within_renew_before_are_issued_again_and_listed_first() -> None:
    profile = tls_profile({"validity": "90d", "renew_before": "30d"})
    first = certs.tls_files(profile, {}, NOW)
    later = NOW + dt.timedelta(days=61)
    due = certs.renewals_due(profile, first, later)
    assert due and all("expires in 29.0 days (renew_before 30d)" in line for line in due), due
    renewed = certs.tls_files(profile, first, later)
    assert renewed[certs.CA_CERT] == first[certs.CA_CERT]  # the CA stays: clients keep trusting it
    crt = certs.node_files(profile.data_nodes[0])[0]
    assert renewed[crt] != first[crt] and load(renewed[crt]).not_valid_after_utc == later + dt.timedelta(days=90)
    assert certs.renewals_due(profile, renewed, later) == []


def test_a_changed_name_or_another_ca_issues_the_certificate_again() -> None:
    profile = tls_profile()
    first = certs.tls_files(profile, {}, NOW)
    renamed = tls_profile({"names": ["redis.internal"]})
    due = certs.renewals_due(renamed, first, NOW)
    assert [line for line in due if "names differ" in line] and not [line for line in due if "client" in line]
    crt = certs.node_files(profile.data_nodes[0])[0]
    foreign = certs.tls_files(tls_profile(), {}, NOW)  # another deployment's CA
    mixed = {**first, crt: foreign[crt]}
    assert certs.renewals_due(profile, mixed, NOW) == [f"{crt}: not signed by the deployment's CA"]
    assert certs.signed_by(certs.tls_files(profile, mixed, NOW)[crt], first[certs.CA_CERT])


def test_rotation_issues_every_leaf_again() -> None:
    profile = tls_profile()
    first = certs.tls_files(profile, {}, NOW)
    rotated = certs.tls_files(profile, first, NOW, renew_all=True)
    leaves = [name for name in first if name.endswith(".crt") and name != certs.CA_CERT]
    assert all(rotated[name] != first[name] for name in leaves)
    assert rotated[certs.CA_CERT] == first[certs.CA_CERT]


def test_tls_off_issues_nothing() -> None:
    raw = dev_raw()
    profile = profile_from_mapping(raw, Path("dev.yaml"))
    assert certs.tls_files(profile, {}, NOW) == {} and certs.tls_file_names(profile) == ()


# --------------------------------------------------------------------------- your own PKI


def test_own_pki_files_are_used_as_given(tmp_path: Path) -> None:
    issued = certs.tls_files(tls_profile(), {}, NOW)
    node_crt, node_key = certs.node_files(tls_profile().data_nodes[0])
    for name, text in (
        ("ca.pem", issued[certs.CA_CERT]),
        ("server.pem", issued[node_crt]),
        ("key.pem", issued[node_key]),
    ):
        (tmp_path / name).write_text(text)
    raw = dev_raw()
    raw["security"]["tls"] = {"enabled": True, "ca_file": "ca.pem", "cert_file": "server.pem", "key_file": "key.pem"}
    profile = profile_from_mapping(raw, tmp_path / "mine.yaml")
    files = certs.tls_files(profile, {}, NOW)
    assert certs.CA_KEY not in files  # the harness holds no CA key of yours
    assert files[certs.CA_CERT] == issued[certs.CA_CERT] and files[node_crt] == issued[node_crt]
    assert certs.renewals_due(profile, files, NOW) == []


def test_own_pki_refuses_a_certificate_of_another_ca_or_a_missing_file(tmp_path: Path) -> None:
    mine, other = certs.tls_files(tls_profile(), {}, NOW), certs.tls_files(tls_profile(), {}, NOW)
    node_crt, node_key = certs.node_files(tls_profile().data_nodes[0])
    (tmp_path / "ca.pem").write_text(other[certs.CA_CERT])
    (tmp_path / "server.pem").write_text(mine[node_crt])
    (tmp_path / "key.pem").write_text(mine[node_key])
    raw = dev_raw()
    raw["security"]["tls"] = {"enabled": True, "ca_file": "ca.pem", "cert_file": "server.pem", "key_file": "key.pem"}
    profile = profile_from_mapping(raw, tmp_path / "mine.yaml")
    with pytest.raises(BadInput, match=r"^security\.tls\.cert_file: not signed by security\.tls\.ca_file"):
        certs.tls_files(profile, {}, NOW)
    (tmp_path / "key.pem").unlink()
    with pytest.raises(BadInput, match=r"^security\.tls\.key_file: .*key\.pem: No such file"):
        certs.tls_files(profile, {}, NOW)


# --------------------------------------------------------------------------- rendered configuration


@pytest.mark.parametrize("topology", ["standalone", "sentinel", "cluster"])
def test_rendered_nodes_close_the_plaintext_port_and_use_tls_on_every_link(topology: str) -> None:
    from redis_harness.profile.credentials import load_secrets

    profile = tls_profile(topology=topology)
    secrets = load_secrets(profile, env=generated_env())
    files = render_files(profile, secrets)
    conf = files["redis.conf"].splitlines()
    assert "port 0" in conf and "tls-port 6379" in conf and "tls-auth-clients yes" in conf
    assert ("tls-replication yes" in conf) == (topology != "standalone")
    assert ("tls-cluster yes" in conf) == (topology == "cluster")
    if topology == "sentinel":
        sentinel = files["sentinel.conf"].splitlines()
        assert "port 0" in sentinel and "tls-port 26379" in sentinel and "tls-replication yes" in sentinel
    compose = yaml.safe_load(files["docker-compose.yml"])
    for node in profile.nodes:
        mounted = compose["services"][node.service]["secrets"]
        own = [m for m in mounted if isinstance(m, dict)]
        assert {(m["source"], m["target"]) for m in own} == {
            (f"tls-{node.service}.crt", "tls-server.crt"),
            (f"tls-{node.service}.key", "tls-server.key"),
        }
        assert certs.CA_KEY not in str(mounted)
        assert "--tls" in " ".join(compose["services"][node.service]["healthcheck"]["test"])
    assert certs.CA_KEY not in compose["secrets"]  # never handed to any container
