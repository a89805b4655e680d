"""Headless Chromium driven over the Chrome DevTools Protocol (a websocket), for the tests that
look at a page as a person does: the Locust web UI (test_webui.py) and report.html
(test_report_browser.py)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
import websocket

CHROMIUM = next((path for name in ("chromium", "chromium-browser") if (path := shutil.which(name))), None)
NO_CHROMIUM = "chromium is not installed (apt-get install chromium; scripts/bootstrap-host installs it)"
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float, step_s: float = 0.5) -> T:
    """Poll probe() until it returns something truthy; bounded in time (and so in count)."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(step_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what} (last seen: {last!r})")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def try_get_json(url: str) -> Any:
    try:
        return get_json(url)
    except (OSError, urllib.error.URLError, ValueError):
        return None


class Cdp:
    """A minimal Chrome DevTools Protocol client over one page's websocket."""

    def __init__(self, ws_url: str, timeout_s: float = 10) -> None:
        # No Origin header: Chromium refuses DevTools websockets from unlisted origins.
        self.ws = websocket.create_connection(ws_url, timeout=timeout_s, suppress_origin=True)
        self.timeout_s = timeout_s
        self.next_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        call_id = self.next_id
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:  # events arrive in between; skip them
            message = json.loads(self.ws.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise AssertionError(f"CDP {method}: {message['error']}")
                return message.get("result", {})
        raise AssertionError(f"CDP {method}: no answer within {self.timeout_s:.0f} s")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, x: float, y: float) -> None:
        """A real mouse click (press and release), as a user's, not element.click()."""
        self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])

    def close(self) -> None:
        self.ws.close()


def stop_group(proc: subprocess.Popen[Any], grace_s: float) -> None:
    """End a process started in its own session, and its children: SIGTERM, then SIGKILL after `grace_s`."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextmanager
def chromium_page(tmp_path: Path, window_size: str = "1280,900") -> Iterator[Cdp]:
    """Headless Chromium with a throwaway profile; yields a CDP client of its first page."""
    if CHROMIUM is None:
        pytest.fail(f"{NO_CHROMIUM}; CI must have it")
    profile_dir = tmp_path / "chromium-profile"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--window-size={window_size}", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
           f"--user-data-dir={profile_dir}", "about:blank"]  # fmt: skip
    log = (tmp_path / "chromium.log").open("w")
    # Its own process group: the browser's helpers (zygote, renderer) end with it.
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    page: Cdp | None = None
    try:
        # Port 0: Chromium picks a free port and writes it to DevToolsActivePort.
        active = profile_dir / "DevToolsActivePort"
        port = int(wait_for("Chromium's DevTools port", lambda: active.is_file() and active.read_text().split()[0], 30))
        targets = wait_for(
            "a page target",
            lambda: [t for t in try_get_json(f"http://127.0.0.1:{port}/json/list") or [] if t["type"] == "page"],
            15,
        )
        page = Cdp(targets[0]["webSocketDebuggerUrl"])
        page.call("Page.enable")
        page.call("Runtime.enable")
        yield page
    finally:
        if page is not None:
            page.close()
        stop_group(proc, 10)
        log.close()
