"""fibsynth's HTML report in a real headless browser (Chromium): it loads without errors, requests nothing from
outside the file, and every figure decodes and is displayed.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: NUL-terminated JSON on file
descriptors 3 and 4), so no Python package beyond the standard library is needed. Skipped when no Chromium binary is
found (set ``FIBSYNTH_CHROMIUM`` to point at one); in CI Debian's ``chromium`` package provides it.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_chromium() -> str | None:
    env = os.environ.get("FIBSYNTH_CHROMIUM")
    if env:
        return env if Path(env).is_file() else shutil.which(env)
    for name in _NAMES:
        exe = shutil.which(name)
        if exe:
            return exe
    return None


CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium binary found (apt-get install chromium, or set FIBSYNTH_CHROMIUM) - report not browser-tested",
)


class Browser:
    """Headless Chromium with one page, driven by the DevTools protocol over a pipe."""

    def __init__(self, exe: str, profile: Path, timeout: float = 60.0):
        self.timeout = timeout
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def _fds():  # in the child, before close_fds: the pipe ends become fds 3 (commands) and 4 (replies)
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--mute-audio", f"--user-data-dir={profile}", "--remote-debugging-pipe",
             "--window-size=1280,900", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=_fds, pass_fds=(3, 4), close_fds=True,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=True)

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_chrome], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.poll() is not None else ""
                raise RuntimeError(f"Chromium closed the DevTools pipe: {err[-2000:]}")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, session: bool = False, **params) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str) -> dict:
        for ev in self.events:
            if ev.get("method") == method:
                return ev
        deadline = time.monotonic() + self.timeout
        while True:
            ev = self._read(deadline)
            self.events.append(ev)
            if ev.get("method") == method:
                return ev

    def evaluate(self, expression: str):
        res = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True,
                        awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"page script failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def open(self, url: str) -> None:
        self.events.clear()
        nav = self.call("Page.navigate", session=True, url=url)
        assert "errorText" not in nav, nav
        self.wait_event("Page.loadEventFired")

    def errors(self) -> list[str]:
        """Script exceptions, console errors, log errors and failed requests seen since the last :meth:`open`."""
        out = []
        for ev in self.events:
            m, p = ev.get("method"), ev.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append(f"exception: {p['exceptionDetails'].get('text')}")
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(f"console.{p['type']}: {[a.get('value') for a in p.get('args', [])]}")
            elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
                out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
            elif m == "Network.loadingFailed":
                out.append(f"request failed: {p.get('errorText')}")
        return out

    def requested_urls(self) -> list[str]:
        return [ev["params"]["request"]["url"] for ev in self.events if ev.get("method") == "Network.requestWillBeSent"]

    def screenshot(self, path: Path) -> None:
        import base64

        png = self.call("Page.captureScreenshot", session=True, format="png", captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(png))

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)
        self.proc.stderr.close()


@pytest.fixture
def browser(tmp_path):
    b = Browser(CHROMIUM, tmp_path / "chromium-profile")
    try:
        yield b
    finally:
        b.close()


_IMAGES_JS = """
(async () => {
  const imgs = Array.from(document.images);
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  return imgs.map(i => {
    const r = i.getBoundingClientRect();
    return {alt: i.alt, complete: i.complete, naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight,
            shownWidth: r.width, shownHeight: r.height, src: i.src.slice(0, 22)};
  });
})()
"""


def check_report_in_chromium(report: Path, tmp_path: Path, min_images: int) -> None:
    """A report that a command wrote (reconstruct's, binary and n phases) opened in Chromium: no errors, nothing
    requested from outside the file, at least ``min_images`` figures, each decoded and shown. Skips without
    Chromium."""
    if CHROMIUM is None:
        pytest.skip("no Chromium binary found (apt-get install chromium, or set FIBSYNTH_CHROMIUM)")
    b = Browser(CHROMIUM, tmp_path / "profile")
    try:
        b.open(report.as_uri())
        assert b.errors() == []
        assert all(u.startswith(("file:", "data:")) for u in b.requested_urls())
        imgs = b.evaluate(_IMAGES_JS)
        assert len(imgs) >= min_images
        assert all(i["complete"] and i["naturalWidth"] > 0 and i["shownWidth"] > 0 for i in imgs)
    finally:
        b.close()


def _figures():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from fibsynth.report import figure_png

    fig1, ax = plt.subplots(figsize=(4, 3))
    ax.plot(np.linspace(0, 1, 50), np.linspace(0, 1, 50) ** 2)
    ax.set_title("a curve")
    fig2, ax = plt.subplots(figsize=(3, 3))
    ax.imshow(np.random.default_rng(0).random((32, 32)), cmap="gray")
    return figure_png(fig1), figure_png(fig2)


def _report(path: Path, figures) -> Path:
    from fibsynth.report import Section, write_report

    sections = [
        Section("Structure", "First paragraph.\n\nSecond <paragraph> & escapes.",
                tables=[("Measured", {"solid fraction": 0.3012, "ligament nm": 41.7, "name": "lwm <seed 3>"})],
                figures=[("A curve", figures[0])]),
        Section("Monte Carlo", "An image.", figures=[("A noise image", figures[1])]),
    ]
    return write_report(path, "Browser test report", sections, meta={"seed": 3, "fibsynth": "test"})


def test_report_loads_and_shows_its_figures(browser, tmp_path):
    figs = _figures()
    path = _report(tmp_path / "report.html", figs)
    browser.open(path.as_uri())
    assert browser.errors() == []
    # self-contained: the page itself is the only request (figures are data: URLs)
    assert [u for u in browser.requested_urls() if not u.startswith("data:")] == [path.as_uri()]
    assert browser.evaluate("document.title") == "Browser test report"
    assert browser.evaluate("Array.from(document.querySelectorAll('h2')).map(h => h.textContent)") == [
        "Structure", "Monte Carlo"]
    cells = browser.evaluate("Array.from(document.querySelectorAll('td')).map(td => td.textContent)")
    assert cells == ["solid fraction", "0.3012", "ligament nm", "41.7", "name", "lwm <seed 3>"]
    assert "Second <paragraph> & escapes." in browser.evaluate("document.body.innerText")
    imgs = browser.evaluate(_IMAGES_JS)
    assert [i["alt"] for i in imgs] == ["A curve", "A noise image"]
    import struct

    for img, png in zip(imgs, figs):
        width, height = struct.unpack(">II", png[16:24])  # the PNG's own size (IHDR)
        assert img["complete"] and img["src"].startswith("data:image/png;base64")
        assert (img["naturalWidth"], img["naturalHeight"]) == (width, height), img
        assert img["shownWidth"] > 50 and img["shownHeight"] > 50, img  # laid out and visible


def test_broken_figure_is_detected(browser, tmp_path):
    """The check can fail: a figure whose PNG bytes are corrupt does not decode (naturalWidth 0)."""
    good, _ = _figures()
    path = _report(tmp_path / "broken.html", (good, b"\x89PNG\r\n\x1a\n" + b"garbage" * 20))
    browser.open(path.as_uri())
    imgs = browser.evaluate(_IMAGES_JS)
    assert imgs[0]["naturalWidth"] > 0
    assert imgs[1]["naturalWidth"] == 0
