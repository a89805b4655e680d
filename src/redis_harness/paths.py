"""Where the harness finds profiles and templates and writes deployments."""

import os
from pathlib import Path

# src/redis_harness/paths.py -> the repository root (editable install).
ROOT = Path(os.environ.get("REDIS_HARNESS_HOME", Path(__file__).resolve().parents[2]))
PROFILES_DIR = ROOT / "profiles"
TEMPLATES_DIR = ROOT / "templates"
COMPOSE_DIR = ROOT / "compose"
# Runtime secrets handed to containers as files (never rendered, never committed).
STATE_DIR = ROOT / ".state"
# Secrets file; REDIS_HARNESS_ENV_FILE points elsewhere (tests use it to ignore the repo's .env).
DOTENV_PATH = Path(os.environ.get("REDIS_HARNESS_ENV_FILE", ROOT / ".env"))


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
