"""Headless Chromium driven over the DevTools protocol, for the playground's browser test.

Usage::

    with Chromium(tmp_path) as browser:
        browser.navigate("http://127.0.0.1:8000/")
        browser.wait_for("document.querySelectorAll('#grid img').length === 9")
        assert browser.evaluate("document.title") == "GAN playground"
        browser.screenshot(Path("page.png"), width=1200, height=900)
        assert browser.errors() == []          # console errors and uncaught exceptions

The client is a few lines over a WebSocket (``websockets``, which uvicorn[standard] already
brings): no driver binary and nothing downloaded. Chromium runs with a fresh profile, no network
services of its own, and on a DevTools port it picks itself (read from ``DevToolsActivePort``).

As a script it takes the README's screenshots of a running service::

    python -m tests.integration.browser http://127.0.0.1:8000/ docs/
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--remote-debugging-port=0",
]


def find_chromium() -> str | None:
    """The Chromium executable on PATH (Debian's ``chromium`` package), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class BrowserError(RuntimeError):
    """A DevTools command failed or a page expression threw."""


class Chromium:
    """One headless Chromium with one page, driven over the DevTools protocol."""

    def __init__(self, workdir: Path, executable: str | None = None, timeout: float = 20.0):
        self.workdir = workdir
        self.executable = executable or find_chromium()
        self.timeout = timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.socket: ClientConnection | None = None
        self._stack = contextlib.ExitStack()
        self.events: list[dict[str, Any]] = []
        self._next_id = 0

    def __enter__(self) -> Chromium:
        if self.executable is None:
            raise BrowserError("chromium is not installed")
        profile = self.workdir / "chromium-profile"
        profile.mkdir(parents=True, exist_ok=True)
        command = [self.executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"]
        with open(self.workdir / "chromium.log", "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while not (port_file.is_file() and port_file.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise BrowserError(f"chromium did not start; see {self.workdir / 'chromium.log'}")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as answer:
            targets = json.load(answer)
        page = next(t for t in targets if t["type"] == "page")
        self.socket = self._stack.enter_context(
            connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=5)
        )
        for domain in ("Runtime", "Log", "Page"):
            self.send(f"{domain}.enable")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()
        self.socket = None
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    # --- the protocol ------------------------------------------------------------------------

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Run one DevTools command and return its result; events seen meanwhile are kept."""
        assert self.socket is not None
        self._next_id += 1
        ident = self._next_id
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError(f"{method}: no answer within {self.timeout:.0f} s")
            message = json.loads(self.socket.recv(timeout=remaining))
            if message.get("id") == ident:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.send(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"{expression[:80]!r} threw: {text}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float | None = None) -> Any:
        """Poll ``expression`` until it is truthy; its value, or BrowserError after ``timeout``."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(
                    f"still false after {timeout or self.timeout:.0f} s: {expression}"
                )
            time.sleep(0.05)

    def press_enter(self) -> None:
        """Press and release Enter on the focused element, as a keyboard user would."""
        key = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}
        self.send("Input.dispatchKeyEvent", type="keyDown", text="\r", **key)
        self.send("Input.dispatchKeyEvent", type="keyUp", **key)

    def add_init_script(self, source: str) -> None:
        """Run ``source`` in every page this browser opens from now on, before its own scripts."""
        self.send("Page.addScriptToEvaluateOnNewDocument", source=source)

    def navigate(self, url: str) -> None:
        """Open ``url`` and wait until its scripts have run (DOMContentLoaded)."""
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState !== 'loading' && location.href !== 'about:blank'")

    def viewport(self, width: int, height: int, mobile: bool = False) -> None:
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=mobile,
        )

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        """Write a PNG of the page (the whole page, not just the viewport, by default)."""
        result = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=full_page)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(result["data"]))
        return path

    def errors(self) -> list[str]:
        """Console errors, failed loads and uncaught exceptions the page has produced so far."""
        self.evaluate("0")  # collect the events still in flight
        found = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append(details.get("exception", {}).get("description") or details["text"])
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                found.append(
                    " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
                )
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                entry = params["entry"]
                found.append(f"{entry['text']} ({entry.get('url', '')})")
        return found


def take_screenshots(url: str, outdir: Path) -> list[Path]:
    """The README's pictures of the page at ``url``: wide and phone-width, after a walk, a
    score and (when the model completes) a completion of the first image's bottom half."""
    import tempfile

    with (
        tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp,
        Chromium(Path(tmp), timeout=60) as browser,
    ):
        browser.viewport(1280, 900)
        browser.navigate(url)
        browser.wait_for("document.querySelectorAll('#grid img').length > 0")
        browser.evaluate("document.querySelector('#grid .cell').click()")
        browser.evaluate("document.getElementById('walk-play').click()")
        browser.wait_for("document.getElementById('walk-img').naturalWidth > 0")
        browser.evaluate(DRAW_AND_SCORE)
        browser.wait_for("/logit/.test(document.getElementById('score-result').textContent)")
        if not browser.evaluate("document.getElementById('complete').hidden"):
            browser.evaluate("document.getElementById('erase-bottom').click() || true")
            browser.evaluate("document.getElementById('complete-run').click() || true")
            browser.wait_for(
                "/^Completed/.test(document.getElementById('complete-result').textContent)"
            )
        wide = browser.screenshot(outdir / "playground.png")
        browser.viewport(390, 844, mobile=True)
        browser.evaluate("window.scrollTo(0, 0)")
        time.sleep(0.3)
        phone = browser.screenshot(outdir / "playground-phone.png", full_page=False)
        return [wide, phone]


# Draw a figure on the scoring canvas with synthetic pointer events, then press "Score drawing".
DRAW_AND_SCORE = """(() => {
  const canvas = document.getElementById('draw');
  const box = canvas.getBoundingClientRect();
  const at = (x, y) => ({clientX: box.left + x * box.width, clientY: box.top + y * box.height,
                         pointerId: 1, bubbles: true});
  canvas.dispatchEvent(new PointerEvent('pointerdown', at(0.5, 0.2)));
  for (let i = 0; i <= 20; i++) {
    const a = Math.PI * 2 * i / 20;
    canvas.dispatchEvent(new PointerEvent('pointermove',
      at(0.5 + 0.22 * Math.sin(a), 0.5 - 0.3 * Math.cos(a))));
  }
  canvas.dispatchEvent(new PointerEvent('pointerup', at(0.5, 0.2)));
  document.getElementById('draw-score').click();
  return true;
})()"""


if __name__ == "__main__":
    for written in take_screenshots(sys.argv[1], Path(sys.argv[2])):
        print(f"wrote {written}")
