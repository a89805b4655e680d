"""The Locust web UI in a real headless browser: a session of two tests, each judged and reported.

`redis-harness load ci --scenario raw --web` runs against the ci deployment;
Debian's Chromium, driven over the Chrome DevTools Protocol (a websocket),
does what a user does: finds the Host read-only, presses START, opens the
Redis tab and waits for live figures, presses STOP and sees the verdict, every
gate in the terminal's wording and a link to the test's report.html (fetched:
the very file in the run folder), presses NEW and START for a second test that
ends by its run time, and the session ends with Ctrl-C: exit code the last
test's verdict, no Locust process left. The screenshot after Stop is kept in
reports/webui/redis-tab.png (docs/webui-redis-tab.png is a copy of it).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from .browser import CHROMIUM, NO_CHROMIUM, Cdp, chromium_page, get_json, stop_group, try_get_json, wait_for
from .conftest import REPO, Deployment
from .docs_pictures import keep
from .test_load_session import honest

# Skipped at collection, before the deployment comes up; in CI a missing browser is a failure instead.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason=NO_CHROMIUM),
]
RUN_SECONDS = 20  # the planned run time (--duration), the start form's Run time
WEB_PORTS = range(8170, 8180)  # this test's Locust web ports (8089 is the default others use)
GET_ROW = "GET raw p50 / p99 / max"  # as the browser shows it: "35 / 341 / 7,651 µs (31,051 calls, 0 errors)"
# The terminal's wording of each gate (report.gate_lines.comparison): value, relation, threshold, unit.
GATE_WORDING = {
    "error_rate": r"^[\d.,]+ % (<=|>) 1 %$",
    "slow_updates": r"^[\d.,]+ ms (<=|>) 100 ms$",
    "no_oom_kill": r"^not OOM-killed$",
    "generator_headroom": r"^[\d.,]+ % (<=|>) 10 %$",
}


# ----------------------------------------------------------------------------- helpers


def free_port() -> int:
    """The first free port of this test's range."""
    for port in WEB_PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port in {WEB_PORTS.start}-{WEB_PORTS.stop - 1} for the web UI")


def fetch(url: str, data: dict[str, str] | None = None) -> tuple[int, bytes]:
    """Status and body of a GET (or a form POST); 404s and the like are answers, not exceptions."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with urllib.request.urlopen(url, data=body, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# ----------------------------------------------------------------------------- Chromium over CDP


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Cdp]:
    with chromium_page(tmp_path) as page:
        yield page


# ----------------------------------------------------------------------------- the web session


@dataclass
class WebSession:
    base: str
    port: int
    proc: subprocess.Popen[str]
    run_dir: Path
    out: Path

    def live(self) -> dict[str, Any]:
        return get_json(f"{self.base}/redis/live")

    def output(self) -> str:
        return self.out.read_text(errors="replace")


@pytest.fixture
def web_session(ci_deployment: Deployment, tmp_path: Path) -> Iterator[WebSession]:
    """`load --web` of the raw scenario, waiting for Start; yields once the UI answers."""
    port = free_port()
    run_dir = tmp_path / "run"
    # 10 users rather than the scenario's 50: on 2 cores the browser needs CPU too.
    cmd = [sys.executable, "-m", "redis_harness.cli", "load", str(ci_deployment.profile.source), "--scenario", "raw",
           "--users", "10", "--rate", "500", "--web", "--duration", f"{RUN_SECONDS}s", "--web-port", str(port),
           "--report", str(run_dir)]  # fmt: skip
    out_path = tmp_path / "load.log"
    out = out_path.open("w")
    env = {**ci_deployment.env, "REDIS_HARNESS_ENV_FILE": "/nonexistent/.env"}
    # Its own process group, as a command in a terminal: Ctrl-C reaches the group.
    proc = subprocess.Popen(
        cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO, text=True, start_new_session=True
    )
    session = WebSession(f"http://127.0.0.1:{port}", port, proc, run_dir, out_path)
    try:

        def answering() -> bool:
            assert proc.poll() is None, f"load exited early: {session.output()[-2000:]}"
            return bool(try_get_json(f"{session.base}/redis/live"))

        wait_for(f"the web UI at {session.base}", answering, 60)
        yield session
    finally:
        stop_group(proc, 90)
        out.close()


def locust_processes(port: int) -> list[str]:
    """Locust processes of this session (their command line names its web port)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "locust" in cmdline and f"--web-port {port}" in cmdline:
            found.append(cmdline)
    return found


# ----------------------------------------------------------------------------- reading the page

FIND_JS = """((text, selector) => {
  const shown = e => (e.innerText || e.textContent || '').trim().toUpperCase();
  const el = [...document.querySelectorAll(selector)].find(e => shown(e) === text);
  if (!el) return null;
  el.scrollIntoView({block: 'center'});
  const r = el.getBoundingClientRect();
  return {x: r.x + r.width / 2, y: r.y + r.height / 2, selected: el.getAttribute('aria-selected')};
})"""

# MUI slides the selected tab's underline across; a screenshot mid-slide would show it under another tab.
INDICATOR_SETTLED_JS = """(() => {
  const tab = document.querySelector('[role="tab"][aria-selected="true"]');
  const bar = document.querySelector('.MuiTabs-indicator');
  if (!tab || !bar) return false;
  const t = tab.getBoundingClientRect(), b = bar.getBoundingClientRect();
  return Math.abs(t.left - b.left) < 2 && Math.abs(t.width - b.width) < 2;
})()"""

HOST_JS = """(() => {
  const input = document.querySelector('input[name="host"]');
  if (!input) return null;
  const note = input.closest('.MuiFormControl-root')?.querySelector('.redis-host-note');
  return {value: input.value, readOnly: input.readOnly, note: note ? note.innerText : null};
})()"""

PANEL_JS = """(() => {
  const panel = document.getElementById('redis-live');
  if (!panel) return null;
  const test = panel.querySelector('#redis-test');
  const charts = [...panel.querySelectorAll('.redis-chart')].map(c => ({
    key: c.dataset.chart, unit: c.dataset.unit, title: c.querySelector('div').innerText,
    yUnit: c.querySelector('.y-unit')?.textContent, xUnit: c.querySelector('.x-unit')?.textContent,
    points: (c.querySelector('path')?.getAttribute('d') || '').split('L').length}));
  const gates = [...panel.querySelectorAll('.gate')].map(g => ({
    name: g.dataset.gate, state: g.dataset.state, text: g.querySelector('.gate-text').innerText}));
  const link = panel.querySelector('#redis-report-link');
  return {state: test?.dataset.state, test: Number(test?.dataset.test || 0), line: test?.innerText,
          verdict: panel.querySelector('.verdict')?.innerText, link: link ? link.getAttribute('href') : null,
          charts, gates, lookAt: [...panel.querySelectorAll('.look-at')].map(l => l.innerText)};
})()"""

BANNER_JS = """(() => {
  const bar = document.getElementById('redis-banner');
  if (!bar) return null;
  const link = bar.querySelector('a');
  return {state: bar.dataset.state, text: bar.innerText, link: link ? link.getAttribute('href') : null};
})()"""

TABLE_ROWS_JS = """[...document.querySelectorAll('table tbody tr')]
  .map(tr => [...tr.querySelectorAll('td')].map(td => td.innerText.trim()))"""


def click(page: Cdp, text: str, selector: str = "button, [role=tab]") -> None:
    """A real mouse click on the element showing `text` (a button or a tab), scrolled into view."""
    target = wait_for(
        f"{text!r} on the page", lambda: page.evaluate(f"{FIND_JS}({json.dumps(text)}, {json.dumps(selector)})"), 20
    )
    page.click(target["x"], target["y"])


def live_figures(rows: list[list[str]]) -> dict[str, list[int]] | None:
    """Numbers shown in the Redis table, by metric; None until the figures that matter are non-zero."""
    # Names with single spaces: the browser's innerText collapses runs of spaces as HTML does.
    figures = {
        " ".join(row[0].split()): [int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", row[1])]
        for row in rows
        if len(row) == 2
    }
    ops = next((v for k, v in figures.items() if k.startswith("ops/s (server, last second")), [0])
    latency = {name: numbers for name, numbers in figures.items() if "p50 / p99 / max" in name}
    if ops[0] > 0 and len(latency) >= 2 and all(n[0] > 0 and n[1] > 0 and n[3] > 0 for n in latency.values()):
        return figures
    return None


# ----------------------------------------------------------------------------- the session, as a user


def test_web_session_judges_each_test_and_stays_up_for_the_next(
    browser_page: Cdp, web_session: WebSession, ci_deployment: Deployment, tmp_path: Path
) -> None:
    base, page = web_session.base, browser_page
    endpoint = f"redis://{ci_deployment.profile.network.host}:{ci_deployment.profile.network.port}"
    page.call("Page.navigate", url=f"{base}/")
    banner = wait_for("the Redis banner", lambda: page.evaluate(BANNER_JS), 30)
    assert banner["state"] == "idle" and "no test yet" in banner["text"]

    # Host: the deployment's endpoint, read-only in the form and refused otherwise by the server.
    host = wait_for("the Host field, read-only", lambda: (h := page.evaluate(HOST_JS)) and h["note"] and h, 20)
    assert host["value"] == endpoint and host["readOnly"] is True and endpoint in host["note"]
    status, body = fetch(f"{base}/swarm", {"user_count": "2", "spawn_rate": "2", "host": "redis://10.9.9.9:6379"})
    refused = json.loads(body)
    assert status == 200 and refused["success"] is False and "read-only" in refused["message"]
    assert web_session.live()["test"]["state"] == "idle"  # nothing started
    # The class picker the README promises: the scenario's user class, picked by default.
    index = fetch(f"{base}/")[1].decode()
    assert re.search(r'"show_userclass_picker":\s*true', index)
    assert "RawGetSet" in page.evaluate("document.body.innerText")

    # ---- test 1: START in the form, live figures in the Redis tab, STOP before its run time
    click(page, "START")
    wait_for("test 1 to run", lambda: web_session.live()["test"]["state"] == "running", 30)
    click(page, "REDIS", "[role=tab]")
    wait_for("the Redis tab to be selected", lambda: "tab=redis" in page.evaluate("location.search"), 10)
    figures = wait_for(
        "non-zero live figures in the Redis table", lambda: live_figures(page.evaluate(TABLE_ROWS_JS)), 30
    )
    assert GET_ROW in figures and "SET raw p50 / p99 / max" in figures and "memory used / maxmemory" in figures
    assert "ops/s (server, mean since start)" in figures  # the table says which ops/s it shows, as the chart does
    panel = wait_for(
        "lines in the charts and the gates",
        lambda: (p := page.evaluate(PANEL_JS)) and p["gates"] and p["charts"][0]["points"] > 2 and p,
        20,
    )
    assert [c["key"] for c in panel["charts"]] == ["ops", "hit", "memory", "evictions", "p99"]
    for chart in panel["charts"]:  # a time axis and a unit on every chart
        assert chart["xUnit"] == "time since the test started (s)" and chart["yUnit"] == chart["unit"] != ""
        assert re.search(r"last second \(at \d+ s\)", chart["title"]), chart["title"]
    assert "mean since the start" in panel["charts"][0]["title"] and panel["charts"][0]["points"] > 1
    assert {g["name"]: g["state"] for g in panel["gates"]} == {
        "error_rate": "passing", "slow_updates": "passing", "no_oom_kill": "at the end", "generator_headroom": "passing"
    }  # fmt: skip
    for gate in panel["gates"]:
        if gate["state"] == "passing":
            assert re.match(GATE_WORDING[gate["name"]], gate["text"]), gate
    # Progress: elapsed against the planned run time, never past it while the test runs.
    for _ in range(6):
        test = web_session.live()["test"]
        assert test["planned_s"] == RUN_SECONDS and honest(test["progress"]), test
        assert test["state"] != "running" or test["elapsed_s"] <= RUN_SECONDS, test
        time.sleep(0.5)
    click(page, "STOP")

    # The UI stays up with the verdict, every gate in the terminal's wording and the report's link.
    judged = wait_for("test 1's verdict", lambda: (p := page.evaluate(PANEL_JS)) and p["state"] == "judged" and p, 60)
    assert judged["test"] == 1 and judged["verdict"] == "PASSED"
    assert re.search(rf"ended after \d+ s \(planned {RUN_SECONDS} s\)", judged["line"]), judged["line"]
    assert {g["name"] for g in judged["gates"]} == set(GATE_WORDING)
    for gate in judged["gates"]:
        assert gate["state"] == "pass" and re.match(GATE_WORDING[gate["name"]], gate["text"]), gate
    assert judged["link"] == "/redis/report/run/report.html"
    banner = wait_for(
        "the banner's verdict", lambda: (b := page.evaluate(BANNER_JS)) and b["state"] == "judged" and b, 10
    )
    assert "PASSED" in banner["text"] and "4 of 4 gates passed" in banner["text"] and banner["link"] == judged["link"]
    status, served = fetch(base + judged["link"])
    assert status == 200 and served == (web_session.run_dir / "report.html").read_bytes()
    # The ended test's figures stay in the table: the calls counted there are the report's.
    calls = json.loads((web_session.run_dir / "report.json").read_text())["commands"]["GET raw"]["count"]

    def table_calls() -> int | None:
        rows = {" ".join(r[0].split()): r[1] for r in page.evaluate(TABLE_ROWS_JS) if len(r) == 2}
        shown = re.search(r"\(([\d,]+) calls", rows.get(GET_ROW, ""))
        return int(shown.group(1).replace(",", "")) if shown else None

    # The table refreshes once a second, the banner on its own: wait for the table's next refresh.
    assert wait_for("the ended test's calls in the table", lambda: table_calls() == calls, 20)
    assert fetch(f"{base}/redis/report/run/locust.html")[0] == 200
    # Only the session's test folders and the report's own files are served.
    for path in ("run/raw.json", "run/..%2Frun.json", "run-2/report.html", "..%2Frun/report.html", "tmp/report.html"):
        assert fetch(f"{base}/redis/report/{path}")[0] == 404, path
    # The terminal printed the summary as for a headless run.
    assert web_session.output().count("raw on ci:") == 1 and f"report: {web_session.run_dir}/report.html" in (
        web_session.output()
    )
    wait_for("the tab underline to settle under Redis", lambda: page.evaluate(INDICATOR_SETTLED_JS), 5, 0.1)
    png = page.screenshot()
    keep("webui-redis-tab.png", png)
    (tmp_path / "redis-tab.png").write_bytes(png)
    assert png.startswith(b"\x89PNG") and len(png) > 10_000

    # ---- test 2: NEW, START; it runs in a folder of its own and ends by its run time
    click(page, "NEW")
    click(page, "START")
    wait_for("test 2 to run", lambda: (t := web_session.live()["test"])["number"] == 2 and t["state"] == "running", 30)
    wait_for("server ops/s in test 2", lambda: (web_session.live()["server"]["ops_per_s"] or 0) > 0, 20)
    second = wait_for(
        "test 2's verdict after its run time",
        lambda: (p := page.evaluate(PANEL_JS)) and p["test"] == 2 and p["state"] == "judged" and p,
        RUN_SECONDS + 60,
    )
    assert second["verdict"] == "PASSED" and second["link"] == "/redis/report/run-2/report.html"
    run_2 = web_session.run_dir.parent / "run-2"
    assert fetch(base + second["link"]) == (200, (run_2 / "report.html").read_bytes())
    assert json.loads((run_2 / "run.json").read_text())["options"]["duration_s"] == RUN_SECONDS
    assert [t["name"] for t in web_session.live()["tests"]] == ["run", "run-2"]

    # ---- Ctrl-C ends the session: exit code the last test's verdict, no Locust left
    os.killpg(web_session.proc.pid, signal.SIGINT)
    assert web_session.proc.wait(timeout=90) == 0, web_session.output()[-2000:]
    assert web_session.output().count("raw on ci:") == 2
    wait_for("every Locust process to end", lambda: locust_processes(web_session.port) == [], 10)


def test_sigterm_during_a_web_test_cuts_it_short_as_headless(web_session: WebSession) -> None:
    """A signal while a test runs: that test's report says so and the exit code is 128 + the signal."""
    form = {"user_count": "5", "spawn_rate": "5", "host": web_session.live()["host"], "run_time": "60s"}
    assert json.loads(fetch(f"{web_session.base}/swarm", form)[1])["success"] is True
    wait_for("a few seconds of load", lambda: web_session.live()["test"]["elapsed_s"] >= 3, 30)
    web_session.proc.send_signal(signal.SIGTERM)  # what a CI runner or `kill` does
    assert web_session.proc.wait(timeout=90) == 128 + signal.SIGTERM, web_session.output()[-2000:]
    report = json.loads((web_session.run_dir / "report.json").read_text())
    assert report["interrupted"] is True and report["interrupted_by"] == "SIGTERM"
    assert 0 < report["duration_s"] < 30  # ended at the signal, not at its 60 s run time
    assert "interrupted (SIGTERM)" in web_session.output()
    wait_for("every Locust process to end", lambda: locust_processes(web_session.port) == [], 10)
