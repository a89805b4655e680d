"""report.html as a person sees it: a run folder made the way `redis-harness load` makes one
(a kill under load, a breaker opening and closing, a phase mark, errors), rendered by
`report.analysis.build`, then opened in headless Chromium, screenshotted and checked for what
a reader needs: every judged command plotted with its gate's threshold, the fault's error
window shaded and labelled, breaker and phase marks labelled, client calls/s and errors/s,
no empty panels, error types with counts, locust.html linked, settings as a sentence.
The charts' hover values, zero-based axes and phase marks: tests/test_report_charts.py."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import pytest

from redis_harness import paths
from redis_harness.load.recorder import Recorder
from redis_harness.report.analysis import build
from redis_harness.report.gate_lines import GATE_FORMATS
from redis_harness.report.saturation import LATENCY_NOTE
from redis_harness.report.timeline import timeline

CHROMIUM = next((path for name in ("chromium", "chromium-browser") if (path := shutil.which(name))), None)
SCREENSHOT = paths.ROOT / "reports" / "report-html" / "recovery-report.png"
T0 = 1_800_000_000.0
THRESHOLDS = {"miss_ratio": 0.2, "memory_ratio": 0.8, "slow_update_s": 0.1, "evictions_per_s": 100.0,
              "error_ratio": 0.01, "recovery_s": 30.0}  # fmt: skip
GATES = ["recovery_window", "acked_writes_kept", "slow_updates", "error_rate", "memory", "no_oom_kill"]


def visible(html: str) -> str:
    """The text a reader sees: tags dropped, entities decoded, no-break spaces as spaces."""
    return unescape(re.sub(r"<[^>]+>", "", html)).replace("\u00a0", " ")


def make_run(folder: Path, *, evictions: bool = False) -> Path:
    """A 20 s recovery-like run: steady calls, a kill at 8 s, 1.5 s of errors, breaker marks."""
    folder.mkdir(parents=True)
    total = Recorder()
    latency_series, server_series, history = [], [], []
    calls = fails = 0
    for second in range(20):
        t = T0 + second
        interval = Recorder()
        down = 8 <= second < 10
        for n in range(200):
            stamp_ok = not down
            for rec in (total, interval):
                rec.record("cache.get price", 300 + n, stamp_ok, redis_call=False)
                rec.record("cache.get price [redis]", 200 + n, stamp_ok)
                rec.record("cache.get price [library]", 40, True, redis_call=False)
                rec.record("RPUSH seq", 150 + n * (20 if down else 1), stamp_ok)
                rec.cache_read("price", n % 10 != 0)
            total.outcomes.add((round(t + n / 200, 1), stamp_ok))
        calls += 600
        fails += 400 if down else 0
        latency_series.append(
            {
                "t": t,
                **{
                    name: {"p50_us": s["p50_us"], "p99_us": s["p99_us"], "count": s["count"]}
                    for name, s in interval.commands().items()
                },
            }  # fmt: skip
        )
        server_series.append({"t": t, "up": not down, "total_commands_processed": 600 * second,
                              "keyspace_hits": 900 * second, "keyspace_misses": 100 * second,
                              "used_memory": 2**20 * (5 + second), "maxmemory": 2**26,
                              "evicted_keys": (50 * second if evictions else 0), "expired_keys": 0,
                              "container_memory": 2**20 * (20 + second), "container_memory_limit": 2**27})  # fmt: skip
        history.append(f"{int(t)},10,,Aggregated,0,0,N/A,0,0,0,0,0,0,0,0,0,0,{calls},{fails},0,0,0,0,0")
    total.events.add("acked_writes", 4000)
    total.events.add("acked_writes_lost", 0)
    recorder = {**total.export()}
    recorder["service"] = {k: v.decode() for k, v in recorder["service"].items()}
    recorder["intended"] = {}
    raw = {
        "scenario": "recovery", "profile": "x.yaml", "profile_name": "ci", "started": T0, "ended": T0 + 20,
        "settings": {"users": 10, "spawn_rate": 10, "rate": 0, "workers": 0},
        "recorder": recorder, "latency_series": latency_series, "server_series": server_series,
        "faults": [{"kind": "kill", "at": T0 + 8.05, "until": T0 + 9.2, "record": {}}],
        "marks": [{"t": T0 + 1, "label": "cache warmed (392 of 392 set, done)"},
                  {"t": T0 + 8.3, "label": "breaker open (5 failures)"}, {"t": T0 + 14.5, "label": "breaker closed"}],
        "findings": {},
    }  # fmt: skip
    (folder / "raw.json").write_text(json.dumps(raw))
    (folder / "run.json").write_text(json.dumps({"scenario": "recovery", "gates": GATES, "thresholds": THRESHOLDS}))
    (folder / "post.json").write_text(json.dumps({"oom_killed": False, "restart_count": 1, "restarts_during_run": 1}))
    header = ("Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,"
              "100%,Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,"
              "Total Min Response Time,Total Max Response Time,Total Average Content Size")  # fmt: skip
    (folder / "locust_stats_history.csv").write_text("\n".join([header, *history]) + "\n")
    (folder / "locust_failures.csv").write_text(
        "Method,Name,Error,Occurrences\ncache,cache.get price,ConnectionError('Connection refused'),300\n"
        "redis,RPUSH seq,TimeoutError('Timeout reading from socket'),100\n"
    )
    (folder / "locust.html").write_text("<html>locust</html>")
    return folder


def test_panels_with_nothing_to_show_are_left_out(tmp_path: Path) -> None:
    report = build(make_run(tmp_path / "quiet"))
    names = timeline(report).panel_names()
    assert "evictions/s" not in names  # flat at 0: no panel
    assert {"latency", "client calls/s", "client errors/s", "server ops/s", "hit ratio", "memory"} <= set(names)
    busy = build(make_run(tmp_path / "evicting", evictions=True))
    assert "evictions/s" in timeline(busy).panel_names()


def test_report_html_shows_what_happened(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    report = build(run)
    html = (run / "report.html").read_text()
    # Gate thresholds drawn beside the commands they judge, the fault's window shaded and labelled.
    assert "slow_updates gate (p99)" in html and "RPUSH seq p99" in html and "cache.get price p99" in html
    assert "kill: error window" in html and "breaker open" in html and "breaker closed" in html
    assert "cache warmed" in html
    assert "10 users (10 spawned/s), closed loop (next call when the last returns), one process" in html
    assert 'href="locust.html"' in html
    assert "ConnectionError(&#39;Connection refused&#39;)" in html and ">300<" in html
    assert report["library_calls"]["cache.get price"]["library"]["p50_us"] == 40
    # The gates in the terminal's words, with the terminal's hint under the one that failed.
    assert ">10 % &gt; 1 %</td>" in html and ">2 s &lt;= 30 s</td>" in html
    assert html.count("look at: ") == 1 and f"look at: {GATE_FORMATS['error_rate'].look_at('html')}" in visible(html)
    assert 'id="generator-warning"' not in html  # this run's generator was not sampled: no claim either way
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (scripts/bootstrap-host installs it)")
    shot = tmp_path / "report.png"
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
              f"--user-data-dir={tmp_path / 'chromium'}"]  # fmt: skip
    dom = subprocess.run([*common, "--dump-dom", (run / "report.html").as_uri()],
                         capture_output=True, text=True, timeout=120).stdout  # fmt: skip
    for element in ('id="gates"', 'id="commands"', 'id="library"', 'id="errors"', 'id="marks"', 'id="locust-link"',
                    'class="uplot ', "slow_updates gate (p99)", "kill: error window",
                    "memory gate (0.8 × maxmemory)", "10 % &gt; 1 %", "look at: the errors"):  # fmt: skip
        assert element in dom, element
    subprocess.run([*common, f"--screenshot={shot}", "--window-size=1200,2600", (run / "report.html").as_uri()],
                   capture_output=True, timeout=120, check=True)  # fmt: skip
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 50_000
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.write_bytes(png)


def test_generator_and_calibration_are_shown_when_the_run_has_them(tmp_path: Path) -> None:
    from redis_harness.report.html import to_html

    report = build(make_run(tmp_path / "run"))
    plain = to_html(report)
    assert 'id="generator"' not in plain and 'id="calibration"' not in plain
    report["calibration"] = {"ping_p50_us": 41.0, "ping_p99_us": 90.0, "get_p50_us": 50.0}
    report["generator"] = {
        "processes": [{"role": "local", "cpu_p50": 97.0, "cpu_max": 100.0, "cpu_over_90_share": 0.8}],
        "saturated": True,
    }
    html = to_html(report)
    assert "PING p50 41 µs, p99 90 µs; GET p50 50 µs" in html
    assert "× 8.0" in html  # cache.get price p50 399 µs against the 50 µs floor
    report["calibration"]["nodes"] = {"redis-0": {"get_p50_us": 48.0}, "redis-2": {"get_p50_us": 52.0}}
    assert "every primary of the Cluster on its own port: redis-0 GET p50 48 µs, redis-2 GET p50 52 µs)." in " ".join(
        to_html(report).split()
    )
    assert 'id="generator-warning"' in html and "<td>the Locust process</td><td>97 %</td>" in html
    assert "<td>80 %</td></tr>" in html  # busy for 80 % of the run, rounded as the terminal says it
    # The terminal's words: busy (on a core or waiting for one), not CPU alone.
    assert "<th>time busy above 90 %</th>" in html and "above 90 % CPU" not in html
    # the banner says which process, how busy, for how much of the run, as the terminal does
    banner = html[html.index('id="generator-warning"') : html.index("</p>", html.index('id="generator-warning"'))]
    assert "the Locust process busy above 90 % for 80 % of the run (CPU p50 97 %, max 100 %)" in visible(banner)
    assert "80\u00a0%" in banner  # a figure stays with its unit
    assert "--workers" in visible(banner) and html.index("generator-warning") < html.index(
        'id="gates"'
    )  # near the verdict


def test_a_generator_that_kept_up_gets_no_saturation_banner(tmp_path: Path) -> None:
    from redis_harness.report.html import to_html

    report = build(make_run(tmp_path / "run"))
    report["generator"] = {
        "processes": [{"role": "local", "cpu_p50": 60.0, "cpu_max": 95.0, "cpu_over_90_share": 0.1}],
        "saturated": False,
    }
    html = to_html(report, has_locust_html=False)
    assert 'id="generator"' in html and 'id="generator-warning"' not in html and "busy above 90 % for" not in html
    assert 'id="late-start"' not in html  # closed loop: no call had a slot to wait for
    report["generator"]["late_start"] = {"count": 13_468, "p50_us": 437, "p99_us": 2_656, "max_us": 41_049}
    late = visible(to_html(report, has_locust_html=False))
    assert "paced calls woke p50 437 µs, p99 2.7 ms, max 41 ms after their intended start; the latency from " in late


def test_the_settings_line_rounds_calls_per_second_as_the_terminal_does(tmp_path: Path) -> None:
    from redis_harness.report.html import to_html

    report = build(make_run(tmp_path / "run"))
    report["throughput_ops_s"] = 3_461.3
    settings = visible(to_html(report, has_locust_html=False)).split("client calls/s")[0]
    assert settings.endswith("3,461 ") and "3,461.3" not in settings


def test_a_failed_latency_gate_on_a_saturated_generator_carries_the_note(tmp_path: Path) -> None:
    from redis_harness.report.html import to_html

    report = build(make_run(tmp_path / "run"))
    slow = next(g for g in report["gates"] if g["name"] == "slow_updates")
    slow.update(passed=False, value=0.25)
    report["generator"] = {
        "processes": [{"role": "local", "cpu_p50": 97.0, "cpu_max": 100.0, "cpu_over_90_share": 0.8}],
        "saturated": True,
    }
    html = to_html(report, has_locust_html=False)
    assert ">250 ms &gt; 100 ms</td>" in html
    assert f"look at: {GATE_FORMATS['slow_updates'].look_at('html')}" in visible(html)
    assert "note: " + LATENCY_NOTE in visible(html)
    assert '<code class="nowrap">--rate</code>' in html  # a browser does not break an option at its dashes
    report["generator"]["saturated"] = False  # the same failure, the generator kept up: the figure is Redis's
    report["generator"]["processes"][0]["cpu_over_90_share"] = 0.0
    assert "note: " not in to_html(report, has_locust_html=False)
