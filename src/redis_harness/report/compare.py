"""Two load runs side by side: the settings they differ in, then what changed in throughput,
latency percentiles, hit ratio and gates.

Reads each run's report.json (made by `redis-harness load` or `report DIR`), and its run.json
when present (the settings frozen at the start), so two runs of different days, profiles or
branches compare as they were judged, and a comparison of unlike runs says so first.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from redis_harness.errors import BadInput
from redis_harness.load.run import RUN_FILE
from redis_harness.profile.units import format_size
from redis_harness.report.analysis import json_file
from redis_harness.terminal import MAX_WIDTH, MIN_WIDTH

PERCENTILES = (("p50", "p50_us"), ("p99", "p99_us"), ("p99.9", "p999_us"))
MIN_NAME = 12  # a request name column narrower than this would wrap names beyond reading
WIDE_NAME = 20  # the wide latency table wants this much room for names, else it goes narrow


def read_report(run_dir: Path) -> dict[str, Any]:
    """report.json, with run.json beside it as "snapshot" when the folder has one."""
    path = run_dir / "report.json"
    if not path.is_file():
        hint = (
            f"run `redis-harness report {run_dir}` first"
            if (run_dir / "raw.json").is_file()
            else ("give a folder made by `redis-harness load`")
        )
        raise BadInput(f"compare: {run_dir} has no report.json; {hint}")
    report = json_file(path, "compare")
    missing = [
        k
        for k in ("scenario", "throughput_ops_s", "commands", "gates")
        if not isinstance(report, dict) or k not in report
    ]
    if missing:
        raise BadInput(f"compare: {path} lacks {', '.join(missing)}; the run's data are damaged or from another tool")
    snapshot = json_file(run_dir / RUN_FILE, "compare") if (run_dir / RUN_FILE).is_file() else {}
    return {**report, "snapshot": snapshot if isinstance(snapshot, dict) else {}}


def change(a: float | None, b: float | None) -> float | None:
    """B relative to A (+0.10 = 10 % more); None where either is missing or A is 0."""
    if a is None or b is None or a == 0:
        return None
    return b / a - 1


def settings(report: dict[str, Any]) -> dict[str, str]:
    """What a run was asked to do, as people say it; a setting the run did not record is left out."""
    snapshot = report.get("snapshot") or {}
    options = snapshot.get("options") or {}
    ran = report.get("settings") or {}
    found: dict[str, Any] = {"scenario": report["scenario"], "profile": report.get("profile")}
    found["topology"] = snapshot.get("topology")
    rate = ran.get("rate", options.get("rate"))
    found["load"] = None if rate is None else f"open loop at {rate:,.0f} ops/s" if rate else "closed loop"
    users = ran.get("users") or options.get("users")
    found["users"] = f"{users:,}" if users else None
    found["spawn rate"] = f"{ran['spawn_rate']:g} users/s" if ran.get("spawn_rate") else None
    workers = ran.get("workers", options.get("workers"))
    found["processes"] = None if workers is None else f"{workers} workers" if workers else "one"
    duration = options.get("duration_s") or (round(report["duration_s"]) if report.get("duration_s") else None)
    found["duration"] = f"{duration:g} s" if duration else None
    if snapshot:
        found["fault"] = options.get("fault") or "none"
    maxmemory = snapshot.get("maxmemory") or (report.get("server") or {}).get("maxmemory")
    found["maxmemory"] = format_size(maxmemory) if maxmemory else None
    limit = snapshot.get("memory_limit") or (report.get("server") or {}).get("container_memory_limit")
    found["memory limit"] = format_size(limit) if limit else None
    found["gates"] = ", ".join(g["name"] for g in report["gates"])
    for g in report["gates"]:
        found[f"{g['name']} threshold"] = None if g.get("threshold") is None else f"{g['threshold']:g}"
    generator = snapshot.get("generator") or {}
    found["generator host"] = generator.get("host")
    found["generator CPUs"] = str(generator["cpus"]) if generator.get("cpus") else None
    return {k: str(v) for k, v in found.items() if v is not None}


def differing(a: dict[str, str], b: dict[str, str]) -> list[dict[str, str]]:
    """Every setting both runs recorded and set differently, in the order people read them."""
    names = list(dict.fromkeys([*a, *b]))
    return [{"name": n, "a": a[n], "b": b[n]} for n in names if n in a and n in b and a[n] != b[n]]


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    commands = []
    for name in sorted(set(a["commands"]) | set(b["commands"])):
        ca, cb = a["commands"].get(name), b["commands"].get(name)
        row: dict[str, Any] = {"name": name, "only_in": None if ca and cb else ("A" if ca else "B")}
        for label, key in PERCENTILES:
            va, vb = (ca or {}).get(key), (cb or {}).get(key)
            row[label] = {"a": va, "b": vb, "change": change(va, vb)}
        row["errors"] = {"a": (ca or {}).get("errors"), "b": (cb or {}).get("errors")}
        commands.append(row)
    gates_a = {g["name"]: g for g in a["gates"]}
    gates_b = {g["name"]: g for g in b["gates"]}
    gates = []
    for name in list(dict.fromkeys([*gates_a, *gates_b])):
        ga, gb = gates_a.get(name), gates_b.get(name)
        # A gate a run could not judge (a target without admin) counts as absent from it.
        ga = ga if ga is None or ga.get("judged", True) else None
        gb = gb if gb is None or gb.get("judged", True) else None
        gates.append(
            {
                "name": name,
                "a": None if ga is None else ga["passed"],
                "b": None if gb is None else gb["passed"],
                "value_a": (ga or {}).get("value"),
                "value_b": (gb or {}).get("value"),
                "threshold": (gb or ga or {}).get("threshold"),
                "regressed": bool(ga and gb and ga["passed"] and not gb["passed"]),
                "fixed": bool(ga and gb and not ga["passed"] and gb["passed"]),
            }
        )
    hit_a, hit_b = a.get("hit_ratio", {}), b.get("hit_ratio", {})
    return {
        "a": {
            "scenario": a["scenario"],
            "profile": a.get("profile"),
            "started": a.get("started"),
            "passed": a.get("passed"),
        },
        "b": {
            "scenario": b["scenario"],
            "profile": b.get("profile"),
            "started": b.get("started"),
            "passed": b.get("passed"),
        },
        "settings": differing(settings(a), settings(b)),
        "throughput_ops_s": {
            "a": a["throughput_ops_s"],
            "b": b["throughput_ops_s"],
            "change": change(a["throughput_ops_s"], b["throughput_ops_s"]),
        },
        "hit_ratio": {
            "client": {"a": (hit_a.get("client") or {}).get("all"), "b": (hit_b.get("client") or {}).get("all")},
            "server": {"a": hit_a.get("server"), "b": hit_b.get("server")},
        },
        "commands": commands,
        "gates": gates,
        "regressed": [g["name"] for g in gates if g["regressed"]],
    }


def refuse_unlike_scenarios(c: dict[str, Any]) -> None:
    """Different scenarios measure different workloads: refuse (exit 2) unless --force."""
    a, b = c["a"]["scenario"], c["b"]["scenario"]
    if a != b:
        raise BadInput(f"compare: A ran {a} and B {b}; add --force to compare different scenarios")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _verdict(passed: bool | None) -> str:
    return "-" if passed is None else ("pass" if passed else "FAIL")


def _title(c: dict[str, Any]) -> str:
    a, b = c["a"], c["b"]
    side_a = f"A {a['scenario']} on {a['profile']} ({_verdict(a['passed'])})"
    return f"{side_a} -> B {b['scenario']} on {b['profile']} ({_verdict(b['passed'])})"


def verdict(c: dict[str, Any]) -> str:
    """One line: did a gate regress, and does the comparison span different settings."""
    if c["regressed"]:
        line = f"REGRESSED: {', '.join(c['regressed'])} passed in A and fail in B"
    else:
        fixed = [g["name"] for g in c["gates"] if g["fixed"]]
        line = "no gate regressed" + (f" ({', '.join(fixed)} fixed)" if fixed else "")
    if c["settings"]:
        names = ", ".join(s["name"] for s in c["settings"])
        line += f"; compared across different settings ({names}): any change may come from them"
    return f"verdict: {line}"


def _wrap(cell: str, width: int) -> list[str]:
    return textwrap.wrap(cell, width, break_long_words=True, break_on_hyphens=False) or [""]


def widths(rows: list[list[str]], width: int) -> list[int]:
    """Column widths within `width` (two spaces between columns): each as wide as its widest cell,
    but the first (names) takes only what the others leave, and wraps onto more lines."""
    natural = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    natural[0] = max(MIN_NAME, min(natural[0], width - sum(natural[1:]) - 2 * (len(natural) - 1)))
    return natural


def grid(rows: list[list[str]], sizes: list[int], right: set[int]) -> list[str]:
    """Rows as aligned columns, the first wrapped to its width; columns in `right` are figures, right-aligned."""
    lines = []
    for row in rows:
        cells = [_wrap(row[0], sizes[0]), *([cell] for cell in row[1:])]
        for n in range(max(len(c) for c in cells)):
            parts = [c[n] if n < len(c) else "" for c in cells]
            aligned = [
                p.rjust(w) if i in right else p.ljust(w) for i, (p, w) in enumerate(zip(parts, sizes, strict=True))
            ]
            lines.append("  ".join(aligned).rstrip())
    return lines


def _settings_lines(c: dict[str, Any], width: int) -> list[str]:
    if not c["settings"]:
        return ["settings: the same in both runs"]
    rows = [["setting", "A", "B"], *([s["name"], s["a"], s["b"]] for s in c["settings"])]
    # Long values (a list of gates) are cut to fit: --json and --summary carry them whole.
    room = max(MIN_NAME, (width - max(len(r[0]) for r in rows) - 4) // 2)
    rows = [[r[0], *(v if len(v) <= room else v[: room - 1] + "…" for v in r[1:])] for r in rows]
    return ["settings that differ (figures below compare unlike runs):", *grid(rows, widths(rows, width), set())]


def _latency_lines(c: dict[str, Any], width: int) -> list[str]:
    """p50, p99 and p99.9 per request (A, B, change): a row per request under one heading per
    percentile where that fits, else (a narrow terminal) a row per request and percentile."""
    rows = [["request"] + ["A", "B", "change"] * len(PERCENTILES)]
    names = [row["name"] + (f" (only in {row['only_in']})" if row["only_in"] else "") for row in c["commands"]]
    figures = [
        [(_num(row[label]["a"]), _num(row[label]["b"]), _pct(row[label]["change"])) for label, _ in PERCENTILES]
        for row in c["commands"]
    ]
    rows += [[name, *(v for cells in per_row for v in cells)] for name, per_row in zip(names, figures, strict=True)]
    sizes = widths(rows, width)
    if sizes[0] >= min(max(map(len, names), default=0), WIDE_NAME) and sum(sizes) + 2 * (len(sizes) - 1) <= width:
        starts = [sum(sizes[:i]) + 2 * i for i in range(len(sizes))]
        heading = ""
        for n, (label, _) in enumerate(PERCENTILES):
            first, last = 1 + 3 * n, 3 + 3 * n
            span = starts[last] + sizes[last] - starts[first]
            heading = heading.ljust(starts[first]) + f" {label} µs ".center(span, "─")
        return [heading, *grid(rows, sizes, set(range(1, len(sizes))))]
    header = ["request", "", "A µs", "B µs", "change"]
    sizes = widths(
        [header, *([name, "p99.9", *cells] for name, per_row in zip(names, figures, strict=True) for cells in per_row)],
        width,
    )
    narrow = [header]
    for name, per_row in zip(names, figures, strict=True):
        # The name's lines beside its percentiles, not on lines of their own.
        parts = _wrap(name, sizes[0])
        lines = [[label, *cells] for (label, _), cells in zip(PERCENTILES, per_row, strict=True)]
        lines += [["", "", "", ""]] * (len(parts) - len(lines))
        narrow += [[parts[n] if n < len(parts) else "", *line] for n, line in enumerate(lines)]
    return grid(narrow, sizes, {2, 3, 4})


def text(c: dict[str, Any], width: int = MAX_WIDTH) -> str:
    """For a terminal: fits `width` columns (at most 100); long request names wrap in their column."""
    width = max(MIN_WIDTH, min(width, MAX_WIDTH))
    t, hit = c["throughput_ops_s"], c["hit_ratio"]
    lines = [*_wrap(_title(c), width), *_settings_lines(c, width), ""]
    lines += [
        f"throughput: {t['a']:,.0f} -> {t['b']:,.0f} calls/s ({_pct(t['change'])})",
        *_wrap(
            f"hit ratio: client {_ratio(hit['client']['a'])} -> {_ratio(hit['client']['b'])}, "
            f"server {_ratio(hit['server']['a'])} -> {_ratio(hit['server']['b'])}",
            width,
        ),
        "",
        *_latency_lines(c, width),
        "",
    ]
    gates = [["gate", "A", "B", ""]]
    gates += [
        [
            g["name"],
            _verdict(g["a"]),
            _verdict(g["b"]),
            "REGRESSED" if g["regressed"] else "fixed" if g["fixed"] else "",
        ]
        for g in c["gates"]
    ]
    lines += grid(gates, widths(gates, width), set())
    lines += ["", *_wrap(verdict(c), width)]
    return "\n".join(lines)


def markdown(c: dict[str, Any]) -> str:
    """For a CI job summary ($GITHUB_STEP_SUMMARY and the like)."""
    t = c["throughput_ops_s"]
    out = [f"### Load run comparison: {_title(c)}", ""]
    if c["settings"]:
        out += [
            "**Settings that differ** (the figures below compare unlike runs):",
            "",
            "| setting | A | B |",
            "|---|---|---|",
        ]
        out += [f"| {s['name']} | {s['a']} | {s['b']} |" for s in c["settings"]] + [""]
    out += [
        "| figure | A | B | change |",
        "|---|---:|---:|---:|",
        f"| throughput (calls/s) | {t['a']:,.0f} | {t['b']:,.0f} | {_pct(t['change'])} |",
        f"| hit ratio, client | {_ratio(c['hit_ratio']['client']['a'])} | {_ratio(c['hit_ratio']['client']['b'])} | |",
        f"| hit ratio, server | {_ratio(c['hit_ratio']['server']['a'])} | {_ratio(c['hit_ratio']['server']['b'])} | |",
        "",
        "| request | " + " | ".join(f"{label} µs A | {label} µs B | change" for label, _ in PERCENTILES) + " |",
        "|---|" + "---:|" * 3 * len(PERCENTILES),
    ]
    for row in c["commands"]:
        name = f"`{row['name']}`" + (f" (only in {row['only_in']})" if row["only_in"] else "")
        cells = [
            f"{_num(row[label]['a'])} | {_num(row[label]['b'])} | {_pct(row[label]['change'])}"
            for label, _ in PERCENTILES
        ]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    out += ["", "| gate | A | B | |", "|---|---|---|---|"]
    for g in c["gates"]:
        mark = "**regressed**" if g["regressed"] else ("fixed" if g["fixed"] else "")
        out.append(f"| {g['name']} | {_verdict(g['a'])} | {_verdict(g['b'])} | {mark} |")
    out += ["", f"**{verdict(c)}**"]
    return "\n".join(out) + "\n"
