"""`redis-harness cert PROFILE [--json]` and `redis-harness cert rotate PROFILE`."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import textwrap
import time
from typing import Any

from redis_harness import paths
from redis_harness.cli.common import add_command, known_profiles, note_owner
from redis_harness.cli.progress import shown
from redis_harness.deploy import compose
from redis_harness.deploy.plan import CERTIFICATE_SETTING
from redis_harness.errors import BadInput
from redis_harness.profile.credentials import load_secrets
from redis_harness.profile.model import Profile, load_profile
from redis_harness.render.certificates import (
    CertStatus,
    certificate_file_names,
    certificate_statuses,
    is_private_key,
    tls_file_names,
)
from redis_harness.render.secret_files import read_secret_files, secret_path
from redis_harness.terminal import text_table, view_width

HEADERS = ("FILE", "SUBJECT CN", "NAMES (SAN)", "EXPIRES", "LEFT", "RENEW")
ROTATE = "rotate"


def register(sub: Any) -> None:
    p = add_command(
        sub,
        "cert",
        "the deployment's TLS certificates: names, expiry, renewals due; `cert rotate` issues new ones live",
        [
            "redis-harness cert prod",
            "redis-harness cert prod --json | jq '.certificates[] | select(.due)'",
            "redis-harness cert rotate prod",
        ],
        "`cert PROFILE` reads the certificates `up` wrote in .state/PROFILE/ (the deployment need not run) and "
        "shows each one's file, subject, names, expiry and whether it is due for renewal (within "
        "security.tls.renew_before, or no longer matching the profile's names); keys are never read. Exit 0, "
        "1 when one is due (`up` renews it live), 2 when the profile has TLS off or `up` issued none yet.\n\n"
        "`cert rotate PROFILE` issues new certificates for every node and client now and loads them without "
        "dropping a connection: data nodes re-read their files on CONFIG SET tls-*, Sentinels (which cannot) "
        "restart one at a time. Each node must then serve its new certificate to a new connection; when one "
        "does not, the previous files are put back and loaded. Same CA: clients keep trusting the bundle.",
        usage="redis-harness cert [rotate] PROFILE [--json]",
    )
    names = ", ".join(known_profiles()) or "none yet"
    p.add_argument(
        "words",
        nargs="+",
        metavar="[rotate] PROFILE",
        help=f"a profile name in profiles/ ({names}) or a path to a YAML file, after `rotate` to rotate",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object (for scripts)")
    p.set_defaults(func=run, parser=p)


def _days(days: float) -> str:
    return f"{days:.1f} d" if abs(days) < 10 else f"{days:.0f} d"


def _folder(profile: Profile) -> str:
    folder = paths.state_dir(profile.name)
    try:
        return str(folder.relative_to(paths.ROOT)) + "/"
    except ValueError:
        return str(folder) + "/"


def _stacked(rows: list[list[str]], width: int) -> str:
    """The table for a narrow terminal: file, expiry and renewal on one line, subject and names under it."""
    file_width = max(len(row[0]) for row in rows)
    lines = [f"{'FILE':<{file_width}}  {'EXPIRES':<10}  {'LEFT':>6}  RENEW", "  SUBJECT CN; NAMES (SAN)"]
    for file, common_name, names, expires, left, renew in rows:
        lines.append(f"{file:<{file_width}}  {expires:<10}  {left:>6}  {renew}")
        lines += textwrap.wrap(f"CN {common_name}; {names}", width, initial_indent="  ", subsequent_indent="    ")
    return "\n".join(lines)


def format_certificates(
    profile: Profile, statuses: list[CertStatus], now: dt.datetime, width: int | None = None
) -> str:
    """A line on the set, a row per certificate wrapped to the terminal (at most 100 columns), a verdict."""
    width = width or view_width()
    tls = profile.tls
    head = (
        f"{profile.name}: {len(statuses)} certificates in {_folder(profile)} "
        f"(validity {_days(tls.validity_s / 86400)}, renew_before {_days(tls.renew_before_s / 86400)})"
    )
    rows = [
        [
            s.info.file,
            s.info.common_name,
            " ".join((*s.info.dns, *s.info.ips)) or "–",
            f"{s.info.not_after:%Y-%m-%d}",
            _days(s.days_left(now)),
            "due" if s.reason else "no",
        ]
        for s in statuses
    ]
    table = text_table(HEADERS, rows, width, no_wrap=frozenset({0, 3, 4, 5}))
    if max(len(line) for line in table.splitlines()) > width:
        table = _stacked(rows, width)
    due = [s for s in statuses if s.reason]
    reasons = [
        textwrap.fill(f"{s.info.file}: {s.reason}", width, subsequent_indent="  ", break_on_hyphens=False) for s in due
    ]
    servers = [s for s in statuses if s.role == "server"]
    if due:
        fix = "in your own PKI, then `up`" if tls.own_pki else f"`redis-harness up {profile.name}` renews them live"
        verdict = f"{len(due)} due for renewal: {fix}"
    else:
        soonest = min(servers, key=lambda s: s.info.not_after, default=None)
        verdict = "none due for renewal"
        if soonest is not None:
            verdict += f"; the soonest server certificate ({soonest.owner}) expires in {_days(soonest.days_left(now))}"
    verdict = textwrap.fill(verdict, width, break_on_hyphens=False)
    return "\n".join([textwrap.fill(head, width), table, *reasons, verdict])


def run(args: argparse.Namespace) -> int:
    words = args.words
    if len(words) == 2 and words[0] == ROTATE:
        if args.json:
            args.parser.error("--json: only `cert PROFILE` prints JSON")
        return rotate(words[1])
    if len(words) != 1:
        args.parser.error(f"expected PROFILE or `rotate PROFILE`, got {' '.join(words)!r}")
    return show(words[0], as_json=args.json)


def show(name: str, *, as_json: bool) -> int:
    profile = load_profile(name)
    if not profile.tls.enabled:
        raise BadInput(
            f"security.tls.enabled: {profile.name} has TLS off, so it has no certificates; set enabled: true"
        )
    files = read_secret_files(profile, certificate_file_names(profile))
    # Whether each key is there counts (a certificate without its key is issued again); its content is never read.
    keys = [name for name in tls_file_names(profile) if is_private_key(name)]
    files |= {name: "" for name in keys if secret_path(profile, name).is_file()}
    if not any(name.endswith(".crt") for name in files):
        raise BadInput(
            f"cert: no certificates issued for {profile.name} yet in {_folder(profile)}; "
            f"run `redis-harness up {profile.name}` first"
        )
    note_owner(profile)
    now = dt.datetime.now(dt.UTC)
    statuses = certificate_statuses(profile, files, now)
    if as_json:
        document = {
            "profile": profile.name,
            "folder": _folder(profile),
            "validity_s": profile.tls.validity_s,
            "renew_before_s": profile.tls.renew_before_s,
            "own_pki": profile.tls.own_pki,
            "certificates": [s.as_json(now) for s in statuses],
            "due": [s.info.file for s in statuses if s.reason],
        }
        print(json.dumps(document, indent=2))
    else:
        print(format_certificates(profile, statuses, now))
    return 1 if any(s.reason for s in statuses) else 0


def rotate(name: str) -> int:
    profile = load_profile(name)
    secrets = load_secrets(profile)
    started = time.monotonic()
    with shown(f"cert rotate {profile.name}"):
        outcome = compose.rotate(profile, secrets)
    loaded = [c for c in outcome.plan.sorted_changes() if c.setting == CERTIFICATE_SETTING]
    generation = f"generation {outcome.generation.number}" if outcome.generation else "nothing recorded"
    print(
        f"cert rotate {profile.project}: {len(loaded)} nodes serve new certificates, {generation}, "
        f"in {time.monotonic() - started:.1f} s"
    )
    width = view_width()
    for change in loaded:
        how = "CONFIG SET" if change.how == "live" else "restarted"
        new = change.desired.partition(":")[0]
        line = f"{change.node:<11} {how:<10} {change.running} -> {new}"
        print(textwrap.fill(line, width, subsequent_indent=" " * 23))
    print(f"client certificates renewed too; see `redis-harness cert {profile.name}`")
    return 0
