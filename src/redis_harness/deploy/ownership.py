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


def _write_marker(profile: Profile, command: str) -> None:
    """Create the marker. Creating a volume that exists returns the existing one, labels and all:
    reading them back makes two first `up`s at once leave one owner, the other refused."""
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
    created = docker_client().volumes.create(name=marker_name(profile), labels=labels)
    winner = _from_labels(created.attrs.get("Labels") or {})
    if winner is not None and not winner.is_this_checkout():
        raise BadInput(refusal(profile, command, winner))


# Only these take a deployment over: `up` recreates it from this checkout's files and secrets, `down`
# removes it. A take-over by `load`, `fault` or `bench` would move the record and leave the containers
# set up with the other checkout's passwords; rollback's generations are the owner's.
TAKES_OVER = ("up", "down")


def refusal(profile: Profile, command: str, owner: Owner) -> str:
    """One line: whose it is, and the ways on: run it there, another profile, or take it over."""
    argument = paths.profile_argument(profile.name, profile.source)
    other = "e.g. `scripts/run ci`" if profile.name != "ci" else "another name: and network.port:"
    text = f"{command}: {profile.project} belongs to another checkout ({owner.describe()}); run it there"
    if command in TAKES_OVER:
        how = f"take it over on purpose: `redis-harness {command} {argument} {TAKE_OVER_FLAG}`"
    else:
        how = f"make this checkout its owner first: `redis-harness up {argument} {TAKE_OVER_FLAG}`"
    return f"{text}, use another profile here ({other}), or {how}"


def require_owned(profile: Profile, command: str, take_over: bool = False) -> Owner | None:
    """Refuse (BadInput: exit 2, nothing changed) when the deployment belongs to another checkout,
    unless `take_over` (up and down only). Returns that other owner when taking over (the caller
    records this checkout with `record` once its own checks have passed), else None."""
    owner = recorded_owner(profile)
    if owner is None or owner.is_this_checkout():
        return None
    if not (take_over and command in TAKES_OVER):
        raise BadInput(refusal(profile, command, owner))
    return owner


def record(profile: Profile, command: str = "up", taking_over: bool = False) -> None:
    """Make this checkout the recorded owner: at the first `up`, on a take-over, or for a deployment
    made before owners were recorded. Another checkout's record is replaced only when taking over;
    one that appeared since the check (two first `up`s at once) refuses this command."""
    marker = _marker(profile)
    if marker is not None:
        owner = _from_labels(marker.attrs.get("Labels") or {})
        if owner is not None and owner.is_this_checkout():
            return
        if owner is not None and not taking_over:
            raise BadInput(refusal(profile, command, owner))
        marker.remove(force=True)  # Docker cannot relabel a volume: a new owner gets a new marker
    progress.note(f"recording this checkout as the owner of {profile.project}")
    _write_marker(profile, command)


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
