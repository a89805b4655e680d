"""Passwords from the environment or `.env`, validated, hashed for the ACL file.

Secrets never enter a rendered file: users.acl carries SHA-256 hashes only.
The healthcheck user's password is derived from the admin password (HMAC), so
no sixth variable is needed and a leak of it reveals nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

from redis_harness import paths
from redis_harness.errors import BadInput
from redis_harness.profile.model import Profile

DEFAULT_PASSWORD_ENV = "REDIS_PASSWORD"
ADMIN_PASSWORD_ENV = "REDIS_ADMIN_PASSWORD"
# prod refuses anything weaker; ACL GENPASS gives 256 bits = 64 hex characters.
PROD_MIN_LENGTH = 32
_GENERATE_HINT = "generate one with `openssl rand -hex 32` (or ACL GENPASS)"


@dataclass(frozen=True)
class UserSecret:
    user: str
    env: str
    password: str

    @property
    def acl_hash(self) -> str:
        return sha256_hex(self.password)


@dataclass(frozen=True)
class Secrets:
    default: UserSecret
    admin: UserSecret
    services: tuple[UserSecret, ...]

    def derived(self, purpose: str) -> str:
        """A password for an internal user (healthcheck, replication, sentinel): HMAC of the
        admin password, so nothing more to manage, and a leak of it reveals nothing else."""
        return hmac.new(self.admin.password.encode(), f"redis-harness {purpose}".encode(), "sha256").hexdigest()

    @property
    def healthcheck_password(self) -> str:
        return self.derived("healthcheck")

    @property
    def healthcheck_hash(self) -> str:
        return sha256_hex(self.healthcheck_password)

    def password_for(self, user: str | None) -> str:
        """The password of an ACL user by name (None or "default": the default user)."""
        if user in (None, "default"):
            return self.default.password
        if user == "admin":
            return self.admin.password
        return self.service(user).password

    def service(self, name: str) -> UserSecret:
        return next(s for s in self.services if s.user == name)

    def all_passwords(self) -> list[str]:
        users = [self.default, self.admin, *self.services]
        return [u.password for u in users] + [
            self.derived(p) for p in ("healthcheck", "replication", "sentinel", "exporter")
        ]


def sha256_hex(password: str) -> str:
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def read_environment(dotenv_path: Path | None = None) -> dict[str, str]:
    """The process environment over `.env` (values taken literally, no $ expansion)."""
    path = dotenv_path or paths.DOTENV_PATH
    values: dict[str, str] = {}
    if path.is_file():
        values.update({k: v for k, v in dotenv_values(path, interpolate=False).items() if v is not None})
    values.update(os.environ)
    return values


def _password(env: Mapping[str, str], var: str, profile: Profile) -> str:
    value = env.get(var)
    if value is None or value == "":
        raise BadInput(
            f"{var}: not set; add it to .env (copy .env.example, or let scripts/run generate one) or export it"
        )
    if "\n" in value or "\r" in value or "\0" in value:
        raise BadInput(f"{var}: contains a newline or NUL, which Redis cannot take; {_GENERATE_HINT}")
    minimum = max(profile.security.min_password_length, PROD_MIN_LENGTH if profile.environment == "prod" else 0)
    if len(value) < minimum or len(set(value)) < 8:
        raise BadInput(
            f"{var}: too weak for the {profile.environment} profile '{profile.name}' "
            f"({len(value)} characters, need {minimum} with some variety); {_GENERATE_HINT}"
        )
    return value


def load_secrets(profile: Profile, env: Mapping[str, str] | None = None) -> Secrets:
    env = read_environment() if env is None else env
    default = UserSecret("default", DEFAULT_PASSWORD_ENV, _password(env, DEFAULT_PASSWORD_ENV, profile))
    admin = UserSecret("admin", ADMIN_PASSWORD_ENV, _password(env, ADMIN_PASSWORD_ENV, profile))
    services = tuple(
        UserSecret(s.name, s.password_env, _password(env, s.password_env, profile)) for s in profile.security.services
    )
    return Secrets(default=default, admin=admin, services=services)
