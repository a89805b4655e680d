"""Client-side figures of a load run, in microseconds, mergeable across Locust workers.

Locust rounds response times to whole milliseconds, which flattens loopback
Redis (tens to hundreds of µs) to 0. Each process counts its calls per request
name; the master (or the local process) adds up what its workers ship. Two
figures per name: service time (from the actual send) and, in open-loop runs,
latency from the intended start (corrected for coordinated omission).

What runs inside the generator's event loop stays cheap, because every user's
calls wait while it runs: a call is counted in a plain tally (µs -> calls),
processes ship tallies, and the per-second latency point is read off a tally.
HdrHistograms are built only where the whole run's figures are read (the
report, raw.json, the web UI): building and reading them once a second took
35-120 ms of the event loop at `smoke --rate 1500`, and every call due
meanwhile started that much late.
"""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 120_000_000  # two minutes: a stalled call still lands in the histogram
SIGNIFICANT_DIGITS = 3
PERCENTILES = {"p50_us": 50.0, "p90_us": 90.0, "p99_us": 99.0, "p999_us": 99.9}


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def summarize(histogram: HdrHistogram) -> dict[str, float]:
    """count, percentiles and max in µs of one histogram."""
    summary: dict[str, float] = {"count": histogram.get_total_count()}
    for key, percentile in PERCENTILES.items():
        summary[key] = histogram.get_value_at_percentile(percentile) if summary["count"] else 0
    summary["max_us"] = histogram.get_max_value() if summary["count"] else 0
    return summary


Tally = dict[int, int]  # µs -> calls


def tally_summary(tally: Tally, percentiles: tuple[str, ...] = ("p50_us", "p99_us")) -> dict[str, float]:
    """count, the given percentiles (keys of PERCENTILES) and max in µs of a tally, by HdrHistogram's rule
    (the value at which the cumulative count reaches the percentile's share). A sort of the distinct values:
    cheap enough to run every second in the event loop."""
    values = sorted(tally.items())
    count = sum(calls for _, calls in values)
    summary: dict[str, float] = {"count": count, **dict.fromkeys(percentiles, 0)}
    summary["max_us"] = values[-1][0] if values else 0
    targets = sorted((max(1, int(PERCENTILES[key] / 100 * count + 0.5)), key) for key in percentiles)
    seen, index = 0, 0
    for value, calls in values:
        seen += calls
        while index < len(targets) and seen >= targets[index][0]:
            summary[targets[index][1]] = value
            index += 1
    return summary


# A client library call is recorded whole and in parts, as "<call> [redis]" (its Redis round
# trips), "<call> [origin]" and "<call> [library]" (what the library itself costs). Parts are
# not requests of their own: counts, rates, error ratios and gates leave them out.
PARTS = ("redis", "origin", "library")


def part_name(call: str, part: str) -> str:
    return f"{call} [{part}]"


@functools.lru_cache(maxsize=4096)  # asked once per recorded call; the names are few
def split_part(name: str) -> tuple[str, str | None]:
    """(call, part) for a part's name; (name, None) for a request."""
    call, _, part = name.rpartition(" [")
    if call and part.endswith("]") and part[:-1] in PARTS:
        return call, part[:-1]
    return name, None


@dataclass
class Counters:
    """Plain counts that merge by addition."""

    values: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, key: str, amount: int = 1) -> None:
        self.values[key] += amount

    def merge(self, other: dict[str, int]) -> None:
        for key, amount in other.items():
            self.values[key] += amount


@dataclass
class Recorder:
    """One process's figures since its last report (workers) or since the start (master/local).

    `record` runs once per Redis call on the generator's hot path, so it only
    counts whole microseconds in a dict; the HdrHistograms are filled from
    those counts when someone reads `service`/`intended` or builds them for raw.json.
    """

    _service: dict[str, HdrHistogram] = field(default_factory=dict)
    _intended: dict[str, HdrHistogram] = field(default_factory=dict)
    # name -> {µs: count}, not yet in the histograms
    _pending_service: dict[str, Tally] = field(default_factory=dict)
    _pending_intended: dict[str, Tally] = field(default_factory=dict)
    errors: Counters = field(default_factory=Counters)
    # "<datatype>:hit" / "<datatype>:miss" for cache reads, client side
    cache: Counters = field(default_factory=Counters)
    # scenario-specific counts: oom_errors, acked_writes, acked_writes_lost, reconnects, breaker_* …
    events: Counters = field(default_factory=Counters)
    # (unix time rounded to 0.1 s, ok): whether calls succeeded or failed in each tenth of
    # a second; enough to find error windows without storing every call.
    outcomes: set[tuple[float, bool]] = field(default_factory=set)
    # Open loop: µs from a call's intended start to the moment its user woke to send it, for calls that
    # waited for their slot. What the generator itself adds to the latency from the intended start:
    # its timer's granularity, and any stall of its event loop or of its process.
    late: Tally = field(default_factory=dict)
    # unix second -> [requests, failed requests] ended in it, by the clock of the process that made
    # them: a worker's calls land in the second they happened, not when its report reached the master.
    per_second: dict[int, list[int]] = field(default_factory=dict)
    # Writers that measure a fault (SequenceWriter): one entry per run of failed writes that ended in an
    # acknowledged one, at full clock precision: when the first attempt failed, when the write was
    # acknowledged, how many attempts failed and the longest of them (a connect left hanging shows there).
    recoveries: list[dict[str, float]] = field(default_factory=list)
    # Writers that measure a fault: one entry per writer that lost acknowledged writes (record_loss).
    losses: list[dict[str, Any]] = field(default_factory=list)

    def record_recovery(self, failed_since: float, acked_at: float, attempts: int, longest_attempt_s: float) -> None:
        self.recoveries.append(
            {
                "failed_since": failed_since,
                "acked_at": acked_at,
                "failed_attempts": attempts,
                "longest_failed_attempt_s": round(longest_attempt_s, 4),
            }
        )

    def record_loss(self, durable: bool, count: int, first_acked_at: float, last_acked_at: float) -> None:
        """One writer's acknowledged writes that were not there at the end, and when Redis acknowledged
        the first and last of them (the report sets that against the fault and the profile's bound)."""
        self.losses.append(
            {"durable": durable, "count": count, "first_acked_at": first_acked_at, "last_acked_at": last_acked_at}
        )

    def record_late(self, late_us: float) -> None:
        value = int(late_us)
        self.late[value] = self.late.get(value, 0) + 1

    def record(
        self, name: str, service_us: float, ok: bool, intended_us: float | None = None, redis_call: bool = True
    ) -> None:
        """One call's figures; `redis_call=False` (origin reads, fallbacks) stays out of the error windows."""
        tally = self._pending_service.get(name)
        if tally is None:
            tally = self._pending_service[name] = {}
        value = int(service_us)
        tally[value] = tally.get(value, 0) + 1
        if intended_us is not None:
            tally = self._pending_intended.get(name)
            if tally is None:
                tally = self._pending_intended[name] = {}
            value = int(intended_us)
            tally[value] = tally.get(value, 0) + 1
        if not ok:
            self.errors.add(name)
        now = time.time()
        if split_part(name)[1] is None:  # a request, as the report counts them (not a library call's part)
            second = self.per_second.get(int(now))
            if second is None:
                second = self.per_second[int(now)] = [0, 0]
            second[0] += 1
            second[1] += not ok
        if redis_call:
            self.outcomes.add((round(now, 1), ok))

    @staticmethod
    def _flush(pending: dict[str, dict[int, int]], target: dict[str, HdrHistogram]) -> dict[str, HdrHistogram]:
        for name, tally in pending.items():
            histogram = target.get(name) or target.setdefault(name, new_histogram())
            for value, count in tally.items():
                histogram.record_value(max(LOWEST_US, min(HIGHEST_US, value)), count)
        pending.clear()
        return target

    @property
    def service(self) -> dict[str, HdrHistogram]:
        """Service time (from the actual send) per request name."""
        return self._flush(self._pending_service, self._service)

    @property
    def intended(self) -> dict[str, HdrHistogram]:
        """Open loop: latency from each call's intended start, per request name."""
        return self._flush(self._pending_intended, self._intended)

    def build_histograms(self) -> None:
        """The tallies into the histograms, so that export() ships them whole and encoded (raw.json)."""
        self._flush(self._pending_service, self._service)
        self._flush(self._pending_intended, self._intended)

    def cache_read(self, datatype: str, hit: bool) -> None:
        self.cache.add(f"{datatype}:{'hit' if hit else 'miss'}")

    # ------------------------------------------------------------ shipping between processes

    def export(self) -> dict[str, Any]:
        """A picklable snapshot of the figures since the last export (report_to_master, the local ticker);
        the recorder starts afresh. Latency goes as tallies ([µs, calls] pairs), which cost little to make
        in the event loop; only histograms someone already built go encoded."""
        data = {
            "service": {name: h.encode().decode() for name, h in self._service.items()},
            "intended": {name: h.encode().decode() for name, h in self._intended.items()},
            "tallies": {
                "service": {name: list(t.items()) for name, t in self._pending_service.items()},
                "intended": {name: list(t.items()) for name, t in self._pending_intended.items()},
                "late": list(self.late.items()),
            },
            "errors": dict(self.errors.values),
            "cache": dict(self.cache.values),
            "events": dict(self.events.values),
            "outcomes": sorted(self.outcomes),
            "per_second": {str(t): counts for t, counts in self.per_second.items()},
            "recoveries": self.recoveries,
            "losses": self.losses,
        }
        self._service, self._intended = {}, {}
        self.per_second = {}
        self._pending_service, self._pending_intended, self.late = {}, {}, {}
        self.errors = Counters()
        self.cache = Counters()
        self.events = Counters()
        self.outcomes = set()
        self.recoveries = []
        self.losses = []
        return data

    def merge(self, data: dict[str, Any]) -> None:
        """An export, or raw.json's `recorder` (encoded histograms, no tallies), added to these figures."""
        tallies = data.get("tallies") or {}
        for target, source in ((self._pending_service, "service"), (self._pending_intended, "intended")):
            for name, pairs in tallies.get(source, {}).items():
                _add_pairs(target.setdefault(name, {}), pairs)
        _add_pairs(self.late, tallies.get("late", ()))
        for histograms, source in ((self._service, "service"), (self._intended, "intended")):
            for name, encoded in data[source].items():
                histograms.setdefault(name, new_histogram()).decode_and_add(encoded)
        self.errors.merge(data["errors"])
        self.cache.merge(data["cache"])
        self.events.merge(data["events"])
        self.outcomes.update((stamp, ok) for stamp, ok in data["outcomes"])
        for stamp, (calls, failed) in data.get("per_second", {}).items():  # absent in older raw.json
            second = self.per_second.setdefault(int(stamp), [0, 0])
            second[0] += calls
            second[1] += failed
        self.recoveries.extend(data.get("recoveries", ()))  # absent in older raw.json
        self.losses.extend(data.get("losses", ()))  # absent in older raw.json

    def calls_series(self) -> list[dict[str, float]]:
        """Requests/s and failed requests/s, second by second, from the first call to the last
        (a second without a call is a zero, not a gap)."""
        if not self.per_second:
            return []
        first, last = min(self.per_second), max(self.per_second)
        return [
            {"t": float(t + 1), "ops_per_s": float(c[0]), "errors_per_s": float(c[1])}
            for t in range(first, last + 1)
            for c in [self.per_second.get(t, [0, 0])]
        ]

    def latency_point(self) -> dict[str, dict[str, float]]:
        """count, p50, p99 and max (µs) of each name's service time, read off the tallies (see tally_summary):
        the latency series' point for an interval recorder, which only ever merges exports."""
        return {name: tally_summary(tally) for name, tally in sorted(self._pending_service.items()) if tally}

    def late_starts(self) -> dict[str, float] | None:
        """count, p50, p99 and max (µs) of how late paced calls woke after their intended start; None in
        closed loop."""
        return tally_summary(self.late, ("p50_us", "p99_us")) if self.late else None

    # ------------------------------------------------------------ figures

    def commands(self) -> dict[str, dict[str, float]]:
        result = {}
        for name, histogram in sorted(self.service.items()):
            summary = summarize(histogram)
            summary["errors"] = self.errors.values.get(name, 0)
            if name in self.intended:
                summary["intended"] = summarize(self.intended[name])
            result[name] = summary
        return result

    def hit_ratios(self) -> dict[str, float | None]:
        """Client-side hit ratio per data type, and overall under "all"."""
        types = sorted({key.split(":")[0] for key in self.cache.values})
        ratios: dict[str, float | None] = {}
        total_hits = total = 0
        for datatype in types:
            hits = self.cache.values.get(f"{datatype}:hit", 0)
            misses = self.cache.values.get(f"{datatype}:miss", 0)
            ratios[datatype] = hits / (hits + misses) if hits + misses else None
            total_hits += hits
            total += hits + misses
        ratios["all"] = total_hits / total if total else None
        return ratios


def _add_pairs(tally: Tally, pairs: Iterable[tuple[int, int] | list[int]]) -> None:
    for value, calls in pairs:
        tally[value] = tally.get(value, 0) + calls


def error_windows(outcomes: list[tuple[float, bool]]) -> list[dict[str, float]]:
    """Spans from the last success before a run of failures to the first success after it.

    Within one tenth of a second a success sorts after a failure, so a bucket with
    both counts as recovered.
    """
    windows = []
    last_ok: float | None = None
    failing_since: float | None = None
    for stamp, ok in sorted(outcomes):
        if ok:
            # Failures sharing a tenth of a second with a success are sporadic errors
            # (counted per command), not an outage.
            if failing_since is not None and last_ok is not None and stamp > failing_since:
                windows.append({"from": last_ok, "to": stamp, "seconds": round(stamp - last_ok, 3)})
            failing_since = None
            last_ok = stamp
        elif failing_since is None:
            failing_since = stamp
    return windows
