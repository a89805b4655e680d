"""Passwords from the environment or `.env`, validated, hashed for the ACL file.

Secrets never enter a rendered file: users.acl carries SHA-256 hashes only.
The healthcheck user's password is derived from the admin password (HMAC), so
no sixth variable is needed and a leak of it reveals nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values
from dotenv.parser import parse_stream

from redis_harness import paths
from redis_harness.errors import BadInput
from redis_harness.profile.model import Profile
from redis_harness.profile.yaml_file import read_utf8

DEFAULT_PASSWORD_ENV = "REDIS_PASSWORD"
ADMIN_PASSWORD_ENV = "REDIS_ADMIN_PASSWORD"
# prod refuses anything weaker; ACL GENPASS gives 256 bits = 64 hex characters.
PROD_MIN_LENGTH = 32
_GENERATE_HINT = "generate one with `openssl rand -hex 32` (or ACL GENPASS)"


PREVIOUS_SUFFIX = "_PREVIOUS"


@dataclass(frozen=True)
class UserSecret:
    user: str
    env: str
    password: str
    # <env>_PREVIOUS: the value being rotated away from. A service's or the default user's old
    # password stays accepted while it is set (its clients move over in their own time); the
    # admin's only logs in to the nodes a live rotation has not reached yet (deploy/rotation.py).
    previous: str | None = None

    @property
    def acl_hash(self) -> str:
        return sha256_hex(self.password)

    @property
    def acl_hashes(self) -> tuple[str, ...]:
        """The hashes the ACL accepts: the password's, and the previous one's while it is set."""
        return (self.acl_hash,) + ((sha256_hex(self.previous),) if self.previous else ())


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
    def sentinel_password(self) -> str:
        """What a client asks the Sentinels with: the default user's password (REDIS_PASSWORD)."""
        return self.default.password

    def login(self, user: str | None) -> tuple[str | None, str]:
        """(ACL user, password) by name: a deployment's users log in under their own names."""
        return user, self.password_for(user)

    def password_for(self, user: str | None) -> str:
        """The password of an ACL user by name (None or "default": the default user)."""
        if user in (None, "default"):
            return self.default.password
        if user == "admin":
            return self.admin.password
        return self.service(user).password

    def service(self, name: str) -> UserSecret:
        return next(s for s in self.services if s.user == name)

    def previous_admin(self) -> Secrets | None:
        """These secrets as they were before the admin password's rotation (None: no previous value given):
        the admin and internal passwords the nodes a rotation has not reached still accept."""
        if not self.admin.previous:
            return None
        old = UserSecret(self.admin.user, self.admin.env, self.admin.previous)
        return Secrets(default=self.default, admin=old, services=self.services)

    def all_passwords(self) -> list[str]:
        users = [self.default, self.admin, *self.services]
        internal = ("healthcheck", "replication", "sentinel", "sentinel-peer", "node-lookup", "exporter")
        found = [u.password for u in users] + [self.derived(p) for p in internal]
        previous = self.previous_admin()
        found += [u.previous for u in users if u.previous]
        return found + ([previous.derived(p) for p in internal] if previous else [])


def sha256_hex(password: str) -> str:
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def read_dotenv(path: Path) -> dict[str, str]:
    """`.env` as variables (values taken literally, no $ expansion). python-dotenv skips a line it
    cannot parse (an unclosed quote) with a warning, so a password there would read as "not set":
    such a line is refused here, naming it."""
    text = read_utf8(path, ".env")
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            raise BadInput(
                f"{path}: line {binding.original.line} cannot be read (an unclosed quote?); close the quote, "
                "or write the value without quotes if it has no spaces, quotes, # or $"
            )
    values = dotenv_values(stream=io.StringIO(text), interpolate=False)
    return {k: v for k, v in values.items() if v is not None}


def read_environment(dotenv_path: Path) -> dict[str, str]:
    """The process environment over a secrets file (paths.dotenv_path: the profile's own)."""
    values: dict[str, str] = read_dotenv(dotenv_path) if dotenv_path.is_file() else {}
    values.update(os.environ)
    return values


def _password(env: Mapping[str, str], var: str, profile: Profile) -> str:
    value = env.get(var)
    if value is None or value == "":
        where = paths.dotenv_path(profile.name)
        shown = where.name if where.parent == paths.ROOT else str(where)
        init = f"redis-harness env init {paths.profile_argument(profile.name, profile.source)}"
        raise BadInput(f"{var}: not set; add it to {shown} (`{init}` generates one) or export it")
    if "\n" in value or "\r" in value or "\0" in value:
        raise BadInput(f"{var}: contains a newline or NUL, which Redis cannot take; {_GENERATE_HINT}")
    minimum = max(profile.security.min_password_length, PROD_MIN_LENGTH if profile.environment == "prod" else 0)
    if len(value) < minimum or len(set(value)) < 8:
        raise BadInput(
            f"{var}: too weak for the {profile.environment} profile '{profile.name}' "
            f"({len(value)} characters, need {minimum} with some variety); {_GENERATE_HINT}"
        )
    return value


@dataclass(frozen=True)
class TargetSecrets:
    """A target's passwords: its service users', and the admin's and the Sentinels' when given.

    The target's own rules decide what a password may be, so only an empty or unusable one is refused."""

    services: tuple[UserSecret, ...]  # user: the service's name (its key prefix)
    logins: Mapping[str, str]  # service -> the ACL user it logs in as
    admin: UserSecret | None = None
    sentinel_password: str | None = None

    def login(self, user: str | None) -> tuple[str | None, str]:
        """(ACL user, password) for a service (or the admin) by name."""
        if self.admin is not None and user == self.admin.user:
            return user, self.admin.password
        secret = self.service(user or "default")
        return self.logins.get(secret.user, secret.user), secret.password

    def password_for(self, user: str | None) -> str:
        if self.admin is not None and user == self.admin.user:
            return self.admin.password
        return self.service(user or "default").password

    def service(self, name: str) -> UserSecret:
        found = next((s for s in self.services if s.user == name), None)
        if found is None:
            listed = ", ".join(s.user for s in self.services)
            raise BadInput(f"target.services: no service user {name!r} (the profile lists {listed}); add it")
        return found

    def all_passwords(self) -> list[str]:
        users = [*self.services, *([self.admin] if self.admin else [])]
        return [u.password for u in users] + ([self.sentinel_password] if self.sentinel_password else [])


def _target_password(env: Mapping[str, str], var: str) -> str | None:
    value = env.get(var) or None
    if value is not None and ("\n" in value or "\r" in value or "\0" in value):
        raise BadInput(f"{var}: contains a newline or NUL, which Redis cannot take; give the password on one line")
    return value


def target_secrets(profile: Profile, env: Mapping[str, str] | None = None) -> TargetSecrets:
    """The target's passwords from the environment (or the profile's .env): every service user's is required;
    the admin's is optional (unset: the server-side figures are not available)."""
    target = profile.target
    assert target is not None
    env = read_environment(paths.dotenv_path(profile.name)) if env is None else env
    services, logins = [], {}
    for service, user, var in target.services():
        password = _target_password(env, var)
        if password is None:
            raise BadInput(f"{var}: not set; export the password of the target's {user} user (or add it to .env)")
        services.append(UserSecret(service, var, password))
        logins[service] = user
    admin = None
    if target.admin is not None:
        password = _target_password(env, target.admin.password_env)
        admin = UserSecret(target.admin.user, target.admin.password_env, password) if password else None
    sentinel = _target_password(env, target.sentinel_password_env) if target.sentinel_password_env else None
    return TargetSecrets(services=tuple(services), logins=logins, admin=admin, sentinel_password=sentinel)


AnySecrets = Secrets | TargetSecrets


def secrets_for(profile: Profile, env: Mapping[str, str] | None = None) -> AnySecrets:
    """The passwords the commands that read or load a Redis need: a deployment's, or a target's."""
    return target_secrets(profile, env) if profile.target is not None else load_secrets(profile, env)


def _previous(env: Mapping[str, str], var: str, current: str) -> str | None:
    """<var>_PREVIOUS: only a usable value that differs from the current one counts."""
    value = env.get(var + PREVIOUS_SUFFIX) or None
    if value is not None and ("\n" in value or "\r" in value or "\0" in value):
        raise BadInput(f"{var}{PREVIOUS_SUFFIX}: contains a newline or NUL; give the old password on one line")
    return None if value == current else value


def _user_secret(env: Mapping[str, str], user: str, var: str, profile: Profile) -> UserSecret:
    password = _password(env, var, profile)
    return UserSecret(user, var, password, _previous(env, var, password))


def load_secrets(profile: Profile, env: Mapping[str, str] | None = None) -> Secrets:
    if profile.target is not None:
        raise BadInput(f"profile: '{profile.name}' is a target; its passwords are the users it names (target:)")
    env = read_environment(paths.dotenv_path(profile.name)) if env is None else env
    default = _user_secret(env, "default", DEFAULT_PASSWORD_ENV, profile)
    admin = _user_secret(env, "admin", ADMIN_PASSWORD_ENV, profile)
    services = tuple(_user_secret(env, s.name, s.password_env, profile) for s in profile.security.services)
    # The admin password unlocks every command: a user that shares it is the admin in all but name.
    for user in (default, *services):
        if admin.password in (user.password, user.previous):
            raise BadInput(
                f"{user.env if user.password == admin.password else user.env + PREVIOUS_SUFFIX}: the same as "
                f"{ADMIN_PASSWORD_ENV}, so the {user.user} user could log in as admin; "
                f"give it its own password ({_GENERATE_HINT})"
            )
    return Secrets(default=default, admin=admin, services=services)
