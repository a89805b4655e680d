"""Which checkout a deployment belongs to: recorded on the engine at its first `up`, checked
before anything changes it.

Two clones of the repository on one host share the Docker engine and the profile names, so
the second clone's `up dev` would recreate the first one's containers (and adopt its data
volume with the second clone's passwords). The owner is recorded as labels of a marker volume,
`<project>_owner`: a volume because it outlives `down` as the data volume does (both belong to
the owner until `down --volumes`), and because Docker cannot relabel an object, taking over
replaces it. Deployments made before the marker existed are attributed by compose's own
working-dir label, which points into the checkout that last ran `up`.

Changing commands (up, down, rollback, fault, load, bench) call `require_owned`; read-only ones
(status, plan, verify, monitor) call `owner_note` and work from anywhere.
"""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from docker.errors import NotFound

from redis_harness import paths, progress
from redis_harness.deploy.containers import PROJECT_LABEL, project_containers
from redis_harness.deploy.engine import docker_client
from redis_harness.errors import BadInput
from redis_harness.profile.model import Profile

LABEL = "io.redis-harness.owner"
WORKING_DIR_LABEL = "com.docker.compose.project.working_dir"
TAKE_OVER_FLAG = "--take-over"


@dataclass(frozen=True)
class Owner:
    checkout: str  # the checkout's root folder, resolved
    host: str  # the machine it is on (one engine may serve several)
    user: str  # who ran the first `up` there (name and uid)
    since: str | None = None  # when it became the owner (UTC, ISO 8601); None when inferred

    def is_this_checkout(self) -> bool:
        here = this_checkout()
        return (self.checkout, self.host) == (here.checkout, here.host)

    def describe(self) -> str:
        """`root (uid 0) on host-a: /work/main`, and whether that folder is still there."""
        gone = "" if self.host != socket.gethostname() or Path(self.checkout).is_dir() else " (folder gone)"
        return f"{self.user} on {self.host}: {self.checkout}{gone}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"this_checkout": self.is_this_checkout()}


def this_checkout() -> Owner:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (a bare container)
        user = "?"
    return Owner(str(paths.ROOT.resolve()), socket.gethostname(), f"{user} (uid {os.getuid()})")


def marker_name(profile: Profile) -> str:
    return f"{profile.project}_owner"


def _marker(profile: Profile) -> Any | None:
    try:
        return docker_client().volumes.get(marker_name(profile))
    except NotFound:
        return None


def _from_labels(labels: dict[str, str]) -> Owner | None:
    checkout = labels.get(f"{LABEL}.checkout")
    if not checkout:
        return None
    return Owner(
        checkout, labels.get(f"{LABEL}.host", "?"), labels.get(f"{LABEL}.user", "?"), labels.get(f"{LABEL}.since")
    )


def _from_compose(profile: Profile) -> Owner | None:
    """A deployment made before owners were recorded: compose's working dir is <checkout>/compose/<name>."""
    for container in project_containers(profile):
        working_dir = container.labels.get(WORKING_DIR_LABEL)
        if working_dir:
            return Owner(str(Path(working_dir).parent.parent), socket.gethostname(), "unknown user")
    return None


def recorded_owner(profile: Profile) -> Owner | None:
    """The deployment's owner; None when nothing of it exists that names one."""
    marker = _marker(profile)
    if marker is not None:
        return _from_labels(marker.attrs.get("Labels") or {})
    return _from_compose(profile)


def _write_marker(profile: Profile) -> None:
    owner = this_checkout()
    since = datetime.now(UTC).isoformat(timespec="seconds")
    labels = {
        f"{LABEL}.checkout": owner.checkout,
        f"{LABEL}.host": owner.host,
        f"{LABEL}.user": owner.user,
        f"{LABEL}.since": since,
        # The project's label too, so `docker volume ls --filter label=...project=` lists it with the data.
        PROJECT_LABEL: profile.project,
    }
    docker_client().volumes.create(name=marker_name(profile), labels=labels)


def refusal(profile: Profile, command: str, owner: Owner, offer_take_over: bool = True, retry: str = "") -> str:
    """One line: whose it is, and the ways on (`retry`: the command as typed, default `COMMAND PROFILE`)."""
    retry = retry or f"{command} {paths.profile_argument(profile.name, profile.source)}"
    text = f"{command}: {profile.project} belongs to another checkout ({owner.describe()}); run it there"
    if not offer_take_over:
        return text
    return (
        f"{text}, use another profile name and port here (e.g. `scripts/run ci`), or take it over on "
        f"purpose: `redis-harness {retry} {TAKE_OVER_FLAG}`"
    )


def require_owned(
    profile: Profile, command: str, take_over: bool = False, offer_take_over: bool = True, retry: str = ""
) -> Owner | None:
    """Refuse (BadInput: exit 2, nothing changed) when the deployment belongs to another checkout,
    unless `take_over`. Returns that other owner when taking over (the caller records this checkout
    with `record` once its own checks have passed), else None."""
    owner = recorded_owner(profile)
    if owner is None or owner.is_this_checkout():
        return None
    if not take_over:
        raise BadInput(refusal(profile, command, owner, offer_take_over, retry))
    return owner


def record(profile: Profile) -> None:
    """Make this checkout the recorded owner (first `up`, a take-over, or a deployment made before
    owners were recorded whose compose files are this checkout's)."""
    marker = _marker(profile)
    if marker is not None:
        owner = _from_labels(marker.attrs.get("Labels") or {})
        if owner is not None and owner.is_this_checkout():
            return
        marker.remove(force=True)
    progress.note(f"recording this checkout as the owner of {profile.project}")
    _write_marker(profile)


def release(profile: Profile) -> None:
    """Forget the owner (`down --volumes`: the deployment and its data are gone)."""
    marker = _marker(profile)
    if marker is not None:
        marker.remove(force=True)


def owner_note(profile: Profile) -> str | None:
    """For read-only commands: who owns the deployment, when that is not this checkout."""
    owner = recorded_owner(profile)
    if owner is None or owner.is_this_checkout():
        return None
    return f"owner: another checkout ({owner.describe()})"
