"""Where the harness finds profiles and templates and writes deployments."""

import os
from pathlib import Path

# src/redis_harness/paths.py -> the repository root (editable install).
ROOT = Path(os.environ.get("REDIS_HARNESS_HOME", Path(__file__).resolve().parents[2]))
PROFILES_DIR = ROOT / "profiles"
TEMPLATES_DIR = ROOT / "templates"
COMPOSE_DIR = ROOT / "compose"
# Runtime secrets handed to containers as files (never rendered, never committed). REDIS_HARNESS_STATE_DIR
# moves it off a read-only root (the harness's own image, whose load pods write only to /tmp and /run/harness).
STATE_DIR = Path(os.environ.get("REDIS_HARNESS_STATE_DIR") or ROOT / ".state")
# Backups (`redis-harness backup`): outside .state/, so `down --volumes` never takes them with it.
BACKUPS_DIR = ROOT / "backups"
# The profile `scripts/run` and `env init` use when none is named; its secrets live in `.env`.
DEFAULT_PROFILE = "dev"
# One secrets file for every profile (tests use it to ignore the repo's own files).
ENV_FILE_VARIABLE = "REDIS_HARNESS_ENV_FILE"


def dotenv_target(profile_name: str) -> Path:
    """Where `env init` writes a profile's secrets: `.env` for the default profile, `.env.<name>`
    for any other, so one checkout holds several deployments' secrets at once."""
    override = os.environ.get(ENV_FILE_VARIABLE)
    if override:
        return Path(override)
    if profile_name == DEFAULT_PROFILE:
        return ROOT / ".env"
    # `.env.example` is the committed template: a profile named `example` keeps its secrets beside it.
    return ROOT / (f".env.{profile_name}" if profile_name != "example" else ".env.example-profile")


def dotenv_path(profile_name: str) -> Path:
    """The secrets file a profile reads: its own `.env.<name>` when there is one, else `.env`
    (where every profile's secrets lived before per-profile files)."""
    own = dotenv_target(profile_name)
    if own.exists() or os.environ.get(ENV_FILE_VARIABLE):
        return own
    return ROOT / ".env"


def deployment_dir(profile_name: str) -> Path:
    return COMPOSE_DIR / profile_name


def state_dir(profile_name: str) -> Path:
    return STATE_DIR / profile_name


def profile_argument(name: str, source: Path) -> str:
    """How to name a profile on the command line in a hint: what finds the same file again.

    `profiles/ci.yaml` is `ci`; any other file is its path (relative to the current folder
    when it lies below it), so `status /tmp/x.yaml` never suggests `up x`.
    """
    source = Path(source)
    if (PROFILES_DIR / f"{name}.yaml").resolve() == source.resolve() and source.stem == name:
        return name
    try:
        return str(source.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(source)


def backups_dir(profile_name: str) -> Path:
    return BACKUPS_DIR / profile_name
