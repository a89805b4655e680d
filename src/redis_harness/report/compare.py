"""Two load runs side by side: what changed in throughput, latency percentiles, hit ratio and gates.

Reads each run's report.json (made by `redis-harness load` or `report DIR`), so two
runs of different days, profiles or branches compare as they were judged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from redis_harness.errors import BadInput
from redis_harness.report.analysis import json_file

PERCENTILES = (("p50", "p50_us"), ("p99", "p99_us"), ("p99.9", "p999_us"))


def read_report(run_dir: Path) -> dict[str, Any]:
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
    return report


def change(a: float | None, b: float | None) -> float | None:
    """B relative to A (+0.10 = 10 % more); None where either is missing or A is 0."""
    if a is None or b is None or a == 0:
        return None
    return b / a - 1


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


def text(c: dict[str, Any]) -> str:
    t = c["throughput_ops_s"]
    lines = [
        _title(c),
        f"throughput: {t['a']:,.0f} -> {t['b']:,.0f} ops/s ({_pct(t['change'])})",
        f"hit ratio: client {_ratio(c['hit_ratio']['client']['a'])} -> {_ratio(c['hit_ratio']['client']['b'])}, "
        f"server {_ratio(c['hit_ratio']['server']['a'])} -> {_ratio(c['hit_ratio']['server']['b'])}",
        f"{'request':<28}{'p50 µs A -> B':>22}{'change':>9}{'p99 µs A -> B':>24}{'change':>9}",
    ]
    for row in c["commands"]:
        p50, p99 = row["p50"], row["p99"]
        note = f"  (only in {row['only_in']})" if row["only_in"] else ""
        lines.append(
            f"{row['name'][:27]:<28}{_num(p50['a']) + ' -> ' + _num(p50['b']):>22}{_pct(p50['change']):>9}"
            f"{_num(p99['a']) + ' -> ' + _num(p99['b']):>24}{_pct(p99['change']):>9}{note}"
        )
    for g in c["gates"]:
        mark = "  REGRESSED" if g["regressed"] else ("  fixed" if g["fixed"] else "")
        lines.append(f"gate {g['name']:<24} {_verdict(g['a'])} -> {_verdict(g['b'])}{mark}")
    return "\n".join(lines)


def markdown(c: dict[str, Any]) -> str:
    """For a CI job summary ($GITHUB_STEP_SUMMARY and the like)."""
    t = c["throughput_ops_s"]
    out = [
        f"### Load run comparison: {_title(c)}",
        "",
        "| figure | A | B | change |",
        "|---|---:|---:|---:|",
        f"| throughput (ops/s) | {t['a']:,.0f} | {t['b']:,.0f} | {_pct(t['change'])} |",
        f"| hit ratio, client | {_ratio(c['hit_ratio']['client']['a'])} | {_ratio(c['hit_ratio']['client']['b'])} | |",
        f"| hit ratio, server | {_ratio(c['hit_ratio']['server']['a'])} | {_ratio(c['hit_ratio']['server']['b'])} | |",
        "",
        "| request | p50 µs A | p50 µs B | change | p99 µs A | p99 µs B | change |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in c["commands"]:
        p50, p99 = row["p50"], row["p99"]
        out.append(
            f"| `{row['name']}` | {_num(p50['a'])} | {_num(p50['b'])} | {_pct(p50['change'])} "
            f"| {_num(p99['a'])} | {_num(p99['b'])} | {_pct(p99['change'])} |"
        )
    out += ["", "| gate | A | B | |", "|---|---|---|---|"]
    for g in c["gates"]:
        mark = "**regressed**" if g["regressed"] else ("fixed" if g["fixed"] else "")
        out.append(f"| {g['name']} | {_verdict(g['a'])} | {_verdict(g['b'])} | {mark} |")
    return "\n".join(out) + "\n"
