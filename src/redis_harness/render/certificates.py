"""The deployment's own small CA and the certificates it issues (security.tls), with `cryptography`.

Every file lives in .state/<name>/ beside the other secret files (never in compose/):

- tls-ca.key                 the CA's private key; never mounted into a container
- tls-ca.crt                 the CA certificate that every node and client trusts
- tls-<node>.crt / .key      one server certificate per node (redis-0, sentinel-1, …), mounted only into
                             that node as /run/secrets/tls-server.*; its SANs are every name and address
                             clients use: the node's service name, localhost, 127.0.0.1, network.host and
                             security.tls.names. Nodes also show it as their client certificate on
                             replication, Sentinel and Cluster-bus links (it carries clientAuth too).
- tls-client-<user>.crt/.key with client_auth none/optional/required: one per service user and one for
                             `admin` (the harness's own clients), for a client to prove who it is; with
                             monitoring on, one for `exporter`, mounted into the redis_exporters and the
                             blackbox_exporter (its key owned by their uid 990)

A certificate is reused while it is signed by the current CA, names what the profile says and is
further than renew_before from its expiry; otherwise a new one is issued (`up`, `cert rotate`). With
a user's own PKI (tls.ca_file/cert_file/key_file) the harness issues nothing: every node presents the
given certificate and the harness's clients show it as theirs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from redis_harness.errors import BadInput
from redis_harness.profile.model import Profile
from redis_harness.profile.topology import Node

CA_CERT, CA_KEY = "tls-ca.crt", "tls-ca.key"
# Where a node sees its own certificate and the CA (compose mounts tls-<node>.* there).
MOUNTED_CERT, MOUNTED_KEY, MOUNTED_CA = "tls-server.crt", "tls-server.key", CA_CERT
CA_VALIDITY = dt.timedelta(days=3650)
CA_RENEW_BEFORE = dt.timedelta(days=365)  # a new CA (and so every certificate) a year before the old one ends
HARNESS_CLIENT = "admin"  # the user the harness's own clients log in as
EXPORTER_CLIENT = "exporter"  # the ACL user the redis_exporters log in as (monitoring.enabled)


def node_files(node: Node) -> tuple[str, str]:
    return f"tls-{node.service}.crt", f"tls-{node.service}.key"


def client_files(user: str) -> tuple[str, str]:
    return f"tls-client-{user}.crt", f"tls-client-{user}.key"


def client_users(profile: Profile) -> tuple[str, ...]:
    """Users the harness issues a client certificate for: every service, admin for the harness itself, and
    exporter for the monitoring containers when monitoring is on."""
    exporter = (EXPORTER_CLIENT,) if profile.monitoring.enabled else ()
    return (*(s.name for s in profile.security.services), HARNESS_CLIENT, *exporter)


def tls_file_names(profile: Profile) -> tuple[str, ...]:
    """Every TLS file of the deployment (empty with TLS off)."""
    if not profile.tls.enabled:
        return ()
    names = [CA_CERT] if profile.tls.own_pki else [CA_CERT, CA_KEY]
    for node in profile.nodes:
        names += node_files(node)
    for user in client_users(profile):
        names += client_files(user)
    return tuple(names)


def mounted_names(profile: Profile) -> tuple[str, ...]:
    """The TLS files some container mounts: the CA certificate, each node's own pair and, with monitoring on,
    the exporter's client pair."""
    if not profile.tls.enabled:
        return ()
    exporter = client_files(EXPORTER_CLIENT) if profile.monitoring.enabled else ()
    return (CA_CERT, *(name for node in profile.nodes for name in node_files(node)), *exporter)


def is_private_key(name: str) -> bool:
    return name.startswith("tls-") and name.endswith(".key")


@dataclass(frozen=True)
class Names:
    dns: tuple[str, ...]
    ips: tuple[str, ...]

    def extension(self) -> x509.SubjectAlternativeName:
        return x509.SubjectAlternativeName(
            [x509.DNSName(name) for name in self.dns] + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in self.ips]
        )


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def server_names(profile: Profile, node: Node) -> Names:
    """What clients may call `node`: its service name inside the deployment, the loopback names and the
    published address on this host, and the profile's own extra names."""
    wanted = [node.service, "localhost", "127.0.0.1", profile.network.host, *profile.tls.names]
    unique = list(dict.fromkeys(wanted))
    return Names(
        dns=tuple(n for n in unique if not _is_ip(n)),
        ips=tuple(n for n in unique if _is_ip(n)),
    )


# --------------------------------------------------------------------------- issuing


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _name(common_name: str, profile: Profile) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "redis-harness"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, profile.project),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def issue_ca(profile: Profile, now: dt.datetime) -> tuple[str, str]:
    """A new CA for this deployment only: (certificate PEM, key PEM)."""
    key = _new_key()
    name = _name(f"{profile.project} CA", profile)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _cert_pem(cert), _key_pem(key)


def issue(
    profile: Profile,
    ca_pem: str,
    ca_key_pem: str,
    common_name: str,
    names: Names | None,
    now: dt.datetime,
    validity: dt.timedelta,
) -> tuple[str, str]:
    """A leaf certificate signed by the deployment's CA: (certificate PEM, key PEM). With `names` a server
    certificate (serverAuth and clientAuth: nodes show it on their own outgoing links too); without, a
    client certificate."""
    ca = x509.load_pem_x509_certificate(ca_pem.encode("ascii"))
    ca_key = serialization.load_pem_private_key(ca_key_pem.encode("ascii"), password=None)
    key = _new_key()
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if names else [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, profile))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()), critical=False)
    )
    if names is not None:
        builder = builder.add_extension(names.extension(), critical=False)
    return _cert_pem(builder.sign(ca_key, hashes.SHA256())), _key_pem(key)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class CertInfo:
    """What `cert` shows and `plan`/`up`/monitor judge of one certificate file."""

    file: str
    subject: str
    issuer: str
    dns: tuple[str, ...]
    ips: tuple[str, ...]
    not_after: dt.datetime
    serial: int

    def expires_in(self, now: dt.datetime) -> dt.timedelta:
        return self.not_after - now

    def names(self) -> Names:
        return Names(self.dns, self.ips)

    @property
    def short_serial(self) -> str:
        """The serial's first 10 hex digits: enough to tell two certificates apart in a view."""
        return f"{self.serial:x}"[:10]

    @property
    def common_name(self) -> str:
        return self.subject.split(",")[0].removeprefix("CN=")


def read_cert(file: str, pem: str) -> CertInfo:
    cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
        ips = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns, ips = (), ()
    return CertInfo(
        file=file,
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        dns=dns,
        ips=ips,
        not_after=cert.not_valid_after_utc,
        serial=cert.serial_number,
    )


def signed_by(cert_pem: str, ca_pem: str) -> bool:
    cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
    ca = x509.load_pem_x509_certificate(ca_pem.encode("ascii"))
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, Exception):  # cryptography raises InvalidSignature, ValueError or TypeError
        return False
    return True


def _renewal_reason(
    profile: Profile, cert_pem: str | None, ca_pem: str, names: Names | None, now: dt.datetime
) -> str | None:
    """Why a certificate must be issued again, or None when it may stay."""
    if cert_pem is None:
        return "missing"
    info = read_cert("", cert_pem)
    if not signed_by(cert_pem, ca_pem):
        return "not signed by the deployment's CA"
    left = info.expires_in(now)
    if left.total_seconds() <= profile.tls.renew_before_s:
        days = left.total_seconds() / 86400
        return f"expires in {days:.1f} days (renew_before {profile.tls.renew_before_s / 86400:g}d)"
    if names is not None and (set(info.dns), set(info.ips)) != (set(names.dns), set(names.ips)):
        return "names differ from the profile's"
    return None


# --------------------------------------------------------------------------- the deployment's set


def _own_pki(profile: Profile) -> dict[str, str]:
    """A user's own PKI: the given files, read where the profile names them (relative to the profile)."""
    tls = profile.tls
    base = profile.source.resolve().parent
    texts = {}
    for field, value in (("ca_file", tls.ca_file), ("cert_file", tls.cert_file), ("key_file", tls.key_file)):
        path = (base / str(value)).resolve()
        try:
            texts[field] = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a PEM text file"
            raise BadInput(f"security.tls.{field}: {path}: {reason}; give the path of a PEM file") from None
        if "-----BEGIN" not in texts[field]:
            raise BadInput(f"security.tls.{field}: {path} is not PEM (no BEGIN line); give a PEM file")
    try:
        signed = signed_by(texts["cert_file"], texts["ca_file"])
    except ValueError:
        raise BadInput("security.tls.cert_file: not a PEM certificate; give the server certificate") from None
    if not signed:
        raise BadInput("security.tls.cert_file: not signed by security.tls.ca_file; give the CA that issued it")
    files = {CA_CERT: texts["ca_file"]}
    for node in profile.nodes:
        cert, key = node_files(node)
        files[cert], files[key] = texts["cert_file"], texts["key_file"]
    for user in client_users(profile):
        cert, key = client_files(user)
        files[cert], files[key] = texts["cert_file"], texts["key_file"]
    return files


def tls_files(
    profile: Profile, existing: Mapping[str, str], now: dt.datetime | None = None, *, renew_all: bool = False
) -> dict[str, str]:
    """Every TLS file the deployment should have: the existing ones that may stay, new ones where a
    certificate is missing, due for renewal, misnamed or from another CA (`renew_all`: every leaf).
    Pure apart from the fresh keys: nothing is written here."""
    if not profile.tls.enabled:
        return {}
    if profile.tls.own_pki:
        return _own_pki(profile)
    now = now or dt.datetime.now(dt.UTC)
    ca_pem, ca_key = existing.get(CA_CERT), existing.get(CA_KEY)
    if ca_pem is None or ca_key is None or read_cert(CA_CERT, ca_pem).expires_in(now) <= CA_RENEW_BEFORE:
        ca_pem, ca_key = issue_ca(profile, now)
    files = {CA_CERT: ca_pem, CA_KEY: ca_key}
    validity = dt.timedelta(seconds=profile.tls.validity_s)
    wanted: list[tuple[str, str, str, Names | None]] = []
    for node in profile.nodes:
        cert, key = node_files(node)
        wanted.append((cert, key, node.service, server_names(profile, node)))
    for user in client_users(profile):
        cert, key = client_files(user)
        wanted.append((cert, key, user, None))
    for cert, key, common_name, names in wanted:
        current = existing.get(cert) if key in existing else None
        if renew_all or _renewal_reason(profile, current, ca_pem, names, now) is not None:
            files[cert], files[key] = issue(profile, ca_pem, ca_key, common_name, names, now, validity)
        else:
            files[cert], files[key] = existing[cert], existing[key]
    return files


def renewal_reasons(profile: Profile, existing: Mapping[str, str], now: dt.datetime | None = None) -> dict[str, str]:
    """Certificate file -> why `up` would issue it again (the ones that may stay are left out)."""
    if not profile.tls.enabled or profile.tls.own_pki:
        return {}
    now = now or dt.datetime.now(dt.UTC)
    ca_pem = existing.get(CA_CERT)
    if ca_pem is None or CA_KEY not in existing:
        return {CA_CERT: "missing (a new CA and every certificate)"}
    ca_left = read_cert(CA_CERT, ca_pem).expires_in(now)
    if ca_left <= CA_RENEW_BEFORE:
        return {CA_CERT: f"expires in {ca_left.total_seconds() / 86400:.1f} days (a new CA and every certificate)"}
    wanted = [(*node_files(node), server_names(profile, node)) for node in profile.nodes]
    wanted += [(*client_files(user), None) for user in client_users(profile)]
    due = {}
    for cert, key, names in wanted:
        # A certificate without its key is as good as missing (tls_files issues both again).
        reason = _renewal_reason(profile, existing.get(cert) if key in existing else None, ca_pem, names, now)
        if reason:
            due[cert] = reason
    return due


def renewals_due(profile: Profile, existing: Mapping[str, str], now: dt.datetime | None = None) -> list[str]:
    """`file: reason` for every certificate `up` would issue again (what `plan` lists)."""
    return [f"{file}: {reason}" for file, reason in renewal_reasons(profile, existing, now).items()]


def node_of_file(profile: Profile) -> dict[str, str]:
    """A node's certificate file -> the node's service (tls-redis-0.crt -> redis-0)."""
    return {node_files(node)[0]: node.service for node in profile.nodes}


def certificates(files: Mapping[str, str]) -> list[CertInfo]:
    """Each certificate file of a deployment's set, read."""
    return [read_cert(name, text) for name, text in sorted(files.items()) if name.endswith(".crt")]


@dataclass(frozen=True)
class CertStatus:
    """One certificate of the deployment as `cert` shows it: what it is for and whether it is due."""

    info: CertInfo
    role: str  # ca | server | client
    owner: str  # the node's service, the client's user, or the CA's deployment
    reason: str | None  # why it is due for renewal; None when it stays

    def days_left(self, now: dt.datetime) -> float:
        return self.info.expires_in(now).total_seconds() / 86400

    def as_json(self, now: dt.datetime) -> dict[str, object]:
        info = self.info
        return {
            "file": info.file,
            "role": self.role,
            "owner": self.owner,
            "common_name": info.common_name,
            "subject": info.subject,
            "issuer": info.issuer,
            "dns": list(info.dns),
            "ips": list(info.ips),
            "serial": f"{info.serial:x}",
            "not_after": info.not_after.isoformat(),
            "days_left": round(self.days_left(now), 2),
            "due": self.reason is not None,
            "reason": self.reason,
        }


def certificate_statuses(profile: Profile, files: Mapping[str, str], now: dt.datetime) -> list[CertStatus]:
    """Every certificate file present in `files` (the CA, each node's, each client's), in that order,
    with why it is due. With your own PKI nothing is issued here: expiring within renew_before is due
    (in your PKI). Keys are never read."""
    wanted = [(CA_CERT, "ca", profile.project)]
    wanted += [(node_files(node)[0], "server", node.service) for node in profile.nodes]
    wanted += [(client_files(user)[0], "client", user) for user in client_users(profile)]
    reasons = renewal_reasons(profile, files, now)
    statuses = []
    for file, role, owner in wanted:
        if file not in files:
            continue
        info = read_cert(file, files[file])
        reason = reasons.get(file) or (reasons.get(CA_CERT) if role != "ca" else None)
        if profile.tls.own_pki and info.expires_in(now).total_seconds() <= profile.tls.renew_before_s:
            reason = f"expires in {info.expires_in(now).total_seconds() / 86400:.1f} days: renew it in your own PKI"
        statuses.append(CertStatus(info, role, owner, reason))
    return statuses


def certificate_file_names(profile: Profile) -> tuple[str, ...]:
    """The certificate files (no key) of the deployment's set."""
    return tuple(name for name in tls_file_names(profile) if name.endswith(".crt"))


def client_paths(folder: Path, user: str) -> tuple[Path, Path, Path]:
    """(CA bundle, certificate, key) a client logging in as `user` uses, in the deployment's state folder."""
    cert, key = client_files(user)
    return folder / CA_CERT, folder / cert, folder / key
