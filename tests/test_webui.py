"""The Locust web UI's "Redis" tab, in a real headless browser during a real run.

`redis-harness load ci --scenario raw --web --autostart` runs against the ci
deployment; Debian's Chromium, driven over the Chrome DevTools Protocol (a
websocket), loads the UI, clicks the "Redis" tab like a user would, waits for
non-zero live figures in the rendered table, and keeps a screenshot in
reports/webui/redis-tab.png and the test's tmp folder.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .browser import CHROMIUM, NO_CHROMIUM, Cdp, chromium_page, get_json, try_get_json, wait_for
from .conftest import REPO, Deployment

# Skipped at collection, before the deployment comes up; in CI a missing browser is a failure instead.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason=NO_CHROMIUM),
]
SCREENSHOT = REPO / "reports" / "webui" / "redis-tab.png"
RUN_SECONDS = 20
GET_ROW = "GET raw p50 / p99 / max"  # as the browser shows it: "35 / 341 / 7,651 µs (31,051 calls, 0 errors)"


# ----------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ----------------------------------------------------------------------------- Chromium over CDP


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Cdp]:
    with chromium_page(tmp_path) as page:
        yield page


# ----------------------------------------------------------------------------- the web run


@pytest.fixture
def web_run(ci_deployment: Deployment, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str], Path]]:
    """A short `load --web --autostart` run of the raw scenario; yields its UI address, process and run folder."""
    port = free_port()
    run_dir = tmp_path / "run"
    # 10 users rather than the scenario's 50: on 2 cores the browser needs CPU too.
    cmd = [sys.executable, "-m", "redis_harness.cli", "load", str(ci_deployment.profile.source), "--scenario", "raw",
           "--users", "10", "--rate", "500", "--web", "--autostart", "--duration", f"{RUN_SECONDS}s",
           "--web-port", str(port),
           "--report", str(run_dir)]  # fmt: skip
    out = (tmp_path / "load.log").open("w")
    env = {**ci_deployment.env, "REDIS_HARNESS_ENV_FILE": "/nonexistent/.env"}
    # Its own process group, so a hung run can be ended with its Locust processes.
    proc = subprocess.Popen(
        cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO, text=True, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def running() -> bool:
            assert proc.poll() is None, f"load exited early: {(tmp_path / 'load.log').read_text()[-2000:]}"
            stats = try_get_json(f"{base}/stats/requests")
            return bool(stats) and stats.get("state") in ("spawning", "running")

        wait_for(f"the web UI at {base} to run", running, 60)
        yield base, proc, run_dir
    finally:
        if proc.poll() is None:
            try:
                proc.wait(timeout=RUN_SECONDS + 120)  # --autostart stops by itself; the report follows
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
        out.close()


# ----------------------------------------------------------------------------- reading the page

FIND_TAB_JS = """(() => {
  const tab = [...document.querySelectorAll('[role="tab"]')].find(t => t.textContent.trim() === 'Redis');
  if (!tab) return null;
  const r = tab.getBoundingClientRect();
  return {x: r.x + r.width / 2, y: r.y + r.height / 2, selected: tab.getAttribute('aria-selected')};
})()"""

# MUI slides the selected tab's underline across; a screenshot mid-slide would show it under another tab.
INDICATOR_SETTLED_JS = """(() => {
  const tab = document.querySelector('[role="tab"][aria-selected="true"]');
  const bar = document.querySelector('.MuiTabs-indicator');
  if (!tab || !bar) return false;
  const t = tab.getBoundingClientRect(), b = bar.getBoundingClientRect();
  return Math.abs(t.left - b.left) < 2 && Math.abs(t.width - b.width) < 2;
})()"""

LIVE_PANEL_JS = """(() => {
  const panel = document.getElementById('redis-live');
  if (!panel) return null;
  const charts = [...panel.querySelectorAll('.redis-chart')];
  const gates = Object.fromEntries([...panel.querySelectorAll('.gate')].map(g => [g.dataset.gate, g.dataset.state]));
  if (charts.length < 5 || !Object.keys(gates).length) return null;
  return {charts: charts.map(c => c.dataset.chart), gates,
          pointsPerChart: charts.map(c => (c.querySelector('path')?.getAttribute('d') || '').split('L').length)};
})()"""

TABLE_ROWS_JS = """[...document.querySelectorAll('table tbody tr')]
  .map(tr => [...tr.querySelectorAll('td')].map(td => td.innerText.trim()))"""


def live_figures(rows: list[list[str]]) -> dict[str, list[int]] | None:
    """Numbers shown in the Redis table, by metric; None until the figures that matter are non-zero."""
    # Names with single spaces: the browser's innerText collapses runs of spaces as HTML does.
    figures = {
        " ".join(row[0].split()): [int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", row[1])]
        for row in rows
        if len(row) == 2
    }
    ops = figures.get("ops/s (server)", [0])
    latency = {name: numbers for name, numbers in figures.items() if "p50 / p99 / max" in name}
    if ops[0] > 0 and len(latency) >= 2 and all(n[0] > 0 and n[1] > 0 and n[3] > 0 for n in latency.values()):
        return figures
    return None


def test_redis_tab_shows_live_figures_in_a_real_browser(
    browser_page: Cdp, web_run: tuple[str, subprocess.Popen[str], Path], tmp_path: Path
) -> None:
    base, proc, run_dir = web_run
    page = browser_page
    page.call("Page.navigate", url=f"{base}/")

    tab = wait_for("the Redis tab in the tab bar", lambda: page.evaluate(FIND_TAB_JS), 30)
    page.click(tab["x"], tab["y"])
    wait_for("the Redis tab to be selected", lambda: (page.evaluate(FIND_TAB_JS) or {}).get("selected") == "true", 10)
    assert "tab=redis" in page.evaluate("location.search")

    def shown() -> dict[str, list[int]] | None:
        return live_figures(page.evaluate(TABLE_ROWS_JS))

    figures = wait_for("non-zero live figures in the Redis table", shown, 30)
    # Live charts and each gate's live state, drawn above the table from /redis/live.
    drawn = wait_for("the live charts and gate states in the Redis tab", lambda: page.evaluate(LIVE_PANEL_JS), 20)
    assert drawn["charts"] == ["ops", "hit", "memory", "evictions", "p99"]
    assert all(n > 0 for n in drawn["pointsPerChart"][:1]), "the ops/s chart has a line"
    assert {"error_rate": "passing", "slow_updates": "passing", "no_oom_kill": "at the end"}.items() <= drawn[
        "gates"
    ].items()
    # Live, not one render: the page polls /stats/requests every 2 s and the call count grows.
    calls = figures[GET_ROW][3]
    figures = wait_for("the Redis table to refresh", lambda: (f := shown()) and f[GET_ROW][3] > calls and f, 15)
    wait_for("the tab underline to settle under Redis", lambda: page.evaluate(INDICATOR_SETTLED_JS), 5, 0.1)
    png = page.screenshot()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.write_bytes(png)
    (tmp_path / "redis-tab.png").write_bytes(png)
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert GET_ROW in figures and "SET raw p50 / p99 / max" in figures
    assert "memory used / maxmemory" in figures

    # The same rows reach the UI through /stats/requests (extended_stats); /redis/live serves numbers.
    stats = get_json(f"{base}/stats/requests")
    extended = {block["key"]: block["data"] for block in stats["extended_stats"]}
    assert live_figures([[row["metric"], row["value"]] for row in extended["redis"]])
    live = get_json(f"{base}/redis/live")
    server = live["server"]
    assert server["up"] is True and server["ops_per_s"] > 0 and 0 < server["used_memory"] < server["maxmemory"]
    assert isinstance(server["evictions_per_s"], (int, float)) and isinstance(server["hit_ratio"], (int, float))
    get_raw = live["client"]["commands"]["GET raw"]
    assert get_raw["count"] > 0 and 0 < get_raw["p50_us"] <= get_raw["p99_us"]
    assert len(live["series"]["server"]) >= 2 and all(p["p99_us"] > 0 for p in live["series"]["p99"])

    # The start form's Host is the deployment's endpoint, without Locust's "no host attribute" warning.
    index = urllib.request.urlopen(f"{base}/", timeout=5).read().decode()
    assert re.search(r'"host":\s*"redis://127\.0\.0\.1:\d+"', index)
    assert re.search(r'"missing_host_warning":\s*false', index)

    # The run ends by itself and still writes its report.
    assert proc.wait(timeout=RUN_SECONDS + 120) == 0
    assert (run_dir / "report.json").is_file()
