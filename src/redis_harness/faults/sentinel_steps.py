"""Where a Sentinel failover's time goes, read from the Sentinels' own log lines.

Each Sentinel logs its view as it changes (`+sdown`, `+odown`, `+elected-leader`, `+promoted-slave`,
`+switch-master`); Docker timestamps every line, so the steps of one failover line up on one clock
with the fault and the writers' first acknowledged write (report.failover_window splits them):

- detection: the fault -> the first Sentinel's `+odown` (down_after, then a quorum agreeing);
- election: `+odown` -> `+elected-leader` (votes, ~0.1 s);
- promotion: `+elected-leader` -> the leader's `+promoted-slave`. The leader sends REPLICAOF NO ONE
  at once but learns the replica took it from INFO, which Sentinel sends every second during a
  failover whatever `SENTINEL DEBUG info-period` says: about one second of every failover;
- switch: `+promoted-slave` -> the first `+switch-master`, the address clients are given.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from redis_harness.deploy.containers import service_container
from redis_harness.faults.restart import stamped_lines
from redis_harness.profile.model import Profile

STEPS = {
    "+sdown master": "sdown_at",
    "+odown master": "odown_at",
    "+elected-leader": "elected_at",
    "+promoted-slave": "promoted_at",
    "+switch-master": "switched_at",
}


@dataclass
class SentinelSteps:
    """Unix times (s), each the first Sentinel to log the step after the fault; None when none did."""

    sdown_at: float | None = None
    odown_at: float | None = None
    elected_at: float | None = None
    promoted_at: float | None = None
    switched_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_steps(logs: list[str], after: float) -> SentinelSteps:
    """The first time any of the logs (`docker logs --timestamps` output) shows each step after `after`."""
    steps = SentinelSteps()
    for text in logs:
        for at, message in stamped_lines(text, after):
            for marker, field in STEPS.items():
                if marker in message:
                    seen = getattr(steps, field)
                    setattr(steps, field, at if seen is None else min(seen, at))
    return steps


def read_steps(profile: Profile, after: float) -> SentinelSteps:
    """The steps of the failover that began at `after`, from every Sentinel of the deployment."""
    logs = []
    for node in profile.sentinel_nodes:
        container = service_container(profile, node.service)
        raw = container.logs(stdout=True, stderr=True, timestamps=True, since=int(after))
        logs.append(raw.decode("utf-8", "replace"))
    return parse_steps(logs, after)
