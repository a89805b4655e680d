"""Profile + secrets -> a deployment folder, written atomically.

Templates only print what the Profile and the ACL list carry (StrictUndefined
turns a typo into an error). The folder is rendered into a temporary sibling
and swapped into place, so a failure leaves the previous deployment intact.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from redis_harness import paths
from redis_harness.profile.credentials import Secrets
from redis_harness.profile.model import Profile
from redis_harness.render.acl import acl_users
from redis_harness.render.monitoring import (
    ALERTMANAGER_PORT,
    EXPORTER_PORT,
    PROMETHEUS_PORT,
    alert_rules,
    exporter_service,
)
from redis_harness.render.secret_files import secret_names, secret_path

CONFIG_DIR = "/etc/redis-harness"  # where the container sees redis.conf and users.acl
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
        files["monitoring.yml"] = "monitoring/compose.yml.j2"
        files["prometheus.yml"] = "monitoring/prometheus.yml.j2"
        files["rules.yml"] = "monitoring/rules.yml.j2"
        files["alertmanager.yml"] = "monitoring/alertmanager.yml.j2"
    return files


def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(paths.TEMPLATES_DIR),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render_files(profile: Profile, secrets: Secrets) -> dict[str, str]:
    """File name -> rendered text, in memory."""
    env = _environment()
    names = secret_names(profile)
    context = {
        "profile": profile,
        "sentinel": profile.topology.sentinel,
        "acl_users": acl_users(profile, secrets),
        "config_dir": CONFIG_DIR,
        "secret_paths": {name: str(secret_path(profile, name).resolve()) for name in names},
        "data_node_secrets": [n for n in names if n in ("healthcheck", "replication.conf")],
        "alert_rules": alert_rules(profile),
        "exporter_service": exporter_service,
        "exporter_port": EXPORTER_PORT,
        "prometheus_port": PROMETHEUS_PORT,
        "alertmanager_port": ALERTMANAGER_PORT,
    }
    return {name: env.get_template(template).render(context) for name, template in rendered_files(profile).items()}


def write_deployment(files: dict[str, str], target: Path) -> Path:
    """Write the folder atomically: temp sibling, then swap."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for name, text in files.items():
            (staging / name).write_text(text, encoding="utf-8")
            # Readable by the container's redis user; holds no plaintext secret.
            os.chmod(staging / name, 0o644)
        os.chmod(staging, 0o755)
        if target.exists():
            retired = target.with_name(f".{target.name}.old")
            shutil.rmtree(retired, ignore_errors=True)
            target.rename(retired)
            staging.rename(target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def render(profile: Profile, secrets: Secrets, target: Path | None = None) -> Path:
    return write_deployment(render_files(profile, secrets), target or paths.deployment_dir(profile.name))


def differences(profile: Profile, secrets: Secrets, target: Path | None = None) -> list[str]:
    """Names of files in the deployment folder that differ from a fresh render."""
    target = target or paths.deployment_dir(profile.name)
    changed = []
    for name, text in render_files(profile, secrets).items():
        path = target / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            changed.append(name)
    return changed
