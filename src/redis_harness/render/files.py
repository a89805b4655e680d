"""Profile + secrets -> a deployment folder, written atomically.

Templates only print what the Profile and the ACL list carry (StrictUndefined
turns a typo into an error). Every file is rendered in memory first, then
written in place one by one (temp file + rename), so a template error leaves
the previous deployment intact and running containers see the new files.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from redis_harness import paths
from redis_harness.errors import BadInput
from redis_harness.profile.credentials import Secrets
from redis_harness.profile.model import Profile
from redis_harness.render.acl import NODE_LOOKUP_USER, SENTINEL_PEER_USER, acl_users, sentinel_acl_users
from redis_harness.render.certificates import EXPORTER_CLIENT, MOUNTED_CA, MOUNTED_CERT, MOUNTED_KEY, client_files
from redis_harness.render.monitoring import (
    ALERTMANAGER_PORT,
    BLACKBOX_PORT,
    BLACKBOX_SERVICE,
    EXPORTER_PORT,
    PROMETHEUS_PORT,
    TLS_JOB,
    TLS_MODULE,
    alert_rules,
    exporter_service,
    tls_probe_targets,
)
from redis_harness.render.networks import bridge_names
from redis_harness.render.secret_files import DATA_NODE_SECRETS, secret_names, secret_path

# The profile file a deployment folder was rendered from (see check_claim).
SOURCE_MARKER = ".profile-source"
CONFIG_DIR = "/etc/redis-harness"  # where the container sees redis.conf and users.acl
MONITORING_COMPOSE = "monitoring.yml"  # merged into docker-compose.yml, never written on its own
RENDERED_FILES = {
    "docker-compose.yml": "docker-compose.yml.j2",
    "redis.conf": "redis.conf.j2",
    "users.acl": "users.acl.j2",
}


def rendered_files(profile: Profile) -> dict[str, str]:
    """File name -> template for this profile's topology."""
    files = dict(RENDERED_FILES)
    if profile.topology.sentinel is not None:
        files["sentinel.conf"] = "sentinel.conf.j2"
    if profile.monitoring.enabled:
        files[MONITORING_COMPOSE] = "monitoring/compose.yml.j2"
        files["prometheus.yml"] = "monitoring/prometheus.yml.j2"
        files["rules.yml"] = "monitoring/rules.yml.j2"
        files["alertmanager.yml"] = "monitoring/alertmanager.yml.j2"
        if profile.tls.enabled:
            files["blackbox.yml"] = "monitoring/blackbox.yml.j2"
    return files


def environment() -> Environment:
    """The Jinja environment of every renderer (compose and Kubernetes): StrictUndefined, no escaping."""
    return Environment(
        loader=FileSystemLoader(paths.TEMPLATES_DIR),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def node_context(profile: Profile, secrets: Secrets) -> dict[str, object]:
    """What redis.conf, users.acl and sentinel.conf print: the same for every target. `primary_host` is
    where Sentinels find the first primary; a target whose host names differ replaces it."""
    return {
        "profile": profile,
        "sentinel": profile.topology.sentinel,
        "acl_users": acl_users(profile, secrets),
        "sentinel_acl_users": sentinel_acl_users(secrets),
        "sentinel_peer_user": SENTINEL_PEER_USER,
        "node_lookup_user": NODE_LOOKUP_USER,
        "config_dir": CONFIG_DIR,
        "primary_host": profile.data_nodes[0].service,
        "tls_mounts": {"ca": MOUNTED_CA, "cert": MOUNTED_CERT, "key": MOUNTED_KEY},
        "tls_cli": tls_cli_options(profile),
    }


def tls_cli_options(profile: Profile) -> str:
    """redis-cli's TLS options inside a node's container ('' with TLS off); the node's own certificate
    doubles as the client certificate a deployment with client_auth asks for."""
    if not profile.tls.enabled:
        return ""
    return (
        f" --tls --cacert /run/secrets/{MOUNTED_CA} --cert /run/secrets/{MOUNTED_CERT} --key /run/secrets/{MOUNTED_KEY}"
    )


def render_files(profile: Profile, secrets: Secrets) -> dict[str, str]:
    """File name -> rendered text, in memory."""
    env = environment()
    names = secret_names(profile)
    context = {
        **node_context(profile, secrets),
        "bridge_names": bridge_names(profile),
        "secret_paths": {name: str(secret_path(profile, name).resolve()) for name in names},
        "data_node_secrets": [n for n in names if n in DATA_NODE_SECRETS],
        "alert_rules": alert_rules(profile),
        "exporter_service": exporter_service,
        "exporter_port": EXPORTER_PORT,
        "prometheus_port": PROMETHEUS_PORT,
        "alertmanager_port": ALERTMANAGER_PORT,
        "blackbox_service": BLACKBOX_SERVICE,
        "blackbox_port": BLACKBOX_PORT,
        "tls_job": TLS_JOB,
        "tls_module": TLS_MODULE,
        "tls_probe_targets": tls_probe_targets(profile),
        "exporter_tls": dict(zip(("cert", "key"), client_files(EXPORTER_CLIENT), strict=True)),
    }
    files = {name: env.get_template(template).render(context) for name, template in rendered_files(profile).items()}
    if MONITORING_COMPOSE in files:
        files["docker-compose.yml"] = _with_monitoring(
            files["docker-compose.yml"], files.pop(MONITORING_COMPOSE), files
        )
    return files


CONFIG_DIGEST_LABEL = "io.redis-harness.config-digest"


def _with_monitoring(compose_text: str, monitoring_text: str, files: dict[str, str]) -> str:
    """The monitoring services merged into the one compose file. One self-contained file, not a compose
    `include`: `up` hashes the desired services from the rendered text before anything is written, and an
    include would point at a file that is not there yet.

    Prometheus, Alertmanager and the blackbox read their files only when they start, and a changed file
    leaves the service definition as it was: each gets a label with a digest of the files it mounts, so
    new rules or thresholds change its definition and `up` makes it again (its data volume kept)."""
    compose, monitoring = yaml.safe_load(compose_text), yaml.safe_load(monitoring_text)
    for spec in monitoring.get("services", {}).values():
        mounted = sorted(v.split(":")[0][2:] for v in spec.get("volumes", []) if v.startswith("./"))
        if mounted:
            digest = hashlib.sha256("".join(f"{n}\0{files.get(n, '')}\0" for n in mounted).encode()).hexdigest()
            spec.setdefault("labels", {})[CONFIG_DIGEST_LABEL] = digest[:16]
    for section, entries in monitoring.items():
        if isinstance(entries, dict):
            compose.setdefault(section, {}).update({k: v for k, v in entries.items() if k not in compose[section]})
    header = "".join(line for line in compose_text.splitlines(keepends=True) if line.startswith("#"))
    return header + yaml.safe_dump(compose, sort_keys=False, default_flow_style=False, width=1000)


def write_deployment(files: dict[str, str], target: Path) -> Path:
    """Write the folder's files in place, each atomically (a temp file renamed over it).

    The folder itself stays the same directory: running containers mount it whole,
    so they see each new file at once. (A folder swapped for a new one would leave
    them reading the old, deleted files until they were recreated.) Rendering
    happens in memory before this, so a template error writes nothing.
    """
    write_files(files, target)
    for stale in set(RENDERED_FILES) | {"sentinel.conf"}:
        if stale not in files:
            (target / stale).unlink(missing_ok=True)
    return target


def write_files(files: dict[str, str], target: Path) -> None:
    """Each file written in place atomically (a temp file renamed over it), mode 0644: none holds a secret."""
    target.mkdir(parents=True, exist_ok=True)
    os.chmod(target, 0o755)
    for name, text in files.items():
        path = target / name
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        fd, staging = tempfile.mkstemp(prefix=f".{name}.", dir=target)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            # Readable by the container's redis user; holds no plaintext secret.
            os.chmod(staging, 0o644)
            os.replace(staging, path)
        except BaseException:
            Path(staging).unlink(missing_ok=True)
            raise


def check_claim(profile: Profile, target: Path) -> None:
    """Refuse to render over a deployment another profile file with the same `name:` rendered:
    the second file would silently take over the first one's containers and data."""
    marker = target / SOURCE_MARKER
    if not marker.is_file():
        return
    claimed = Path(marker.read_text(encoding="utf-8", errors="replace").strip())
    mine = profile.source.resolve()
    if claimed == mine or not claimed.is_file():  # the same file, or one that has since been moved away
        return
    raise BadInput(
        f"name: '{profile.name}' in {mine} is already the name of the deployment rendered from {claimed} "
        f"({target}); give this profile another name, or remove that deployment first "
        f"(`redis-harness down {claimed} --volumes`)"
    )


def release_claim(profile: Profile, target: Path | None = None) -> None:
    """Once a deployment and its data are gone, any profile file may use its name."""
    (target or paths.deployment_dir(profile.name)).joinpath(SOURCE_MARKER).unlink(missing_ok=True)


def deployment_files(profile: Profile, secrets: Secrets) -> dict[str, str]:
    """What a deployment folder holds: the rendered files and the marker naming the profile file they came from."""
    return {**render_files(profile, secrets), SOURCE_MARKER: f"{profile.source.resolve()}\n"}


def render(profile: Profile, secrets: Secrets, target: Path | None = None) -> Path:
    target = target or paths.deployment_dir(profile.name)
    check_claim(profile, target)
    return write_deployment(deployment_files(profile, secrets), target)


def differences(profile: Profile, secrets: Secrets, target: Path | None = None) -> list[str]:
    """Names of files in the deployment folder that differ from a fresh render."""
    target = target or paths.deployment_dir(profile.name)
    changed = []
    for name, text in render_files(profile, secrets).items():
        path = target / name
        # Bytes, not text: a file damaged into something that is not UTF-8 simply differs.
        if not path.is_file() or path.read_bytes() != text.encode("utf-8"):
            changed.append(name)
    return changed
