"""`edgekit run --view` end to end: a real runtime process, headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_loop_label_browser import CHROMIUM, CHROMIUM_ARGS
from tests.tiny_bundles import int8_tflite, point, write_bundle

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium: "
                       "run `make browser` as root (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def car(pytestconfig, tmp_path_factory) -> Path:
    """releases/v0001 and v0002 (same model, another version) and `current` -> v0001."""
    root = tmp_path_factory.mktemp("view-car")
    flatbuffer = int8_tflite(pytestconfig.cache.mkdir("edge-runtime"))
    for version in ("v0001", "v0002"):
        write_bundle(root / "releases" / version, flatbuffer, version=version, roi=(0.5, 0.05, 0.3, 0.5))
    point(root / "current", root / "releases" / "v0001")
    return root


class Run:
    """`edgekit run ... --view ADDRESS` in a subprocess; its stderr collected; the view's URL parsed."""

    def __init__(self, cwd: Path, view: str, *extra: str) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "run", "--bundle", "current", "--source", "synthetic:seed=3",
             "--size", "320x240", "--realtime", "--quiet", "--stats-interval", "0", "--view", view, *extra],
            cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.process.stderr), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 60
        while not (found := [re.search(r"live view on (http://\S+)", line) for line in self.lines if "live view on" in line]):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail("edgekit run --view did not start:\n" + "".join(self.lines))
            time.sleep(0.05)
        self.url = found[0].group(1)
        self.port = int(re.search(r":(\d+)/", self.url).group(1))
        self.local = f"http://127.0.0.1:{self.port}/"

    def state(self, token: str | None = None) -> dict:
        request = urllib.request.Request(self.local + "api/state",
                                         headers={"Authorization": f"Bearer {token}"} if token else {})
        return json.load(urllib.request.urlopen(request, timeout=10))

    def stop(self) -> str:
        self.process.terminate()
        self.process.wait(timeout=30)
        self._reader.join(timeout=5)
        return "".join(self.lines)


@pytest.fixture
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) is not installed")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _frame_after(page, frame: int) -> int:
    page.wait_for_function(f"() => Number(document.body.dataset.frame) > {frame}")
    return int(page.get_attribute("body", "data-frame"))


def test_the_page_shows_live_frames_figures_samples_and_the_hot_swap(car, browser, tmp_path):
    run = Run(car, "127.0.0.1:0", "--log-dir", str(tmp_path / "samples"), "--log-random", "0.3")
    try:
        page = browser.new_page()
        page.set_default_timeout(30_000)
        page.goto(run.local)
        page.wait_for_selector("body[data-ready='1']")
        # the frame: an MJPEG image the browser decodes, which changes
        page.wait_for_function("() => document.getElementById('stream').naturalWidth > 0")
        assert page.evaluate("document.getElementById('stream').naturalWidth") == 320
        first = page.locator("#stream").screenshot()
        for _ in range(100):  # a new picture within 10 s (5 frames/s are sent)
            if page.locator("#stream").screenshot() != first:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the frame on the page did not change")
        # the label, the figures, the model
        assert page.inner_text("#label") in ("green", "none", "red", "yellow")
        assert page.locator("#topk tr").count() == 3
        assert float(page.inner_text("#fps")) > 0
        assert re.fullmatch(r"[\d.]+ ms / [\d.]+ ms", page.inner_text("#latency"))
        assert page.inner_text("#model") == "model lights:v0001"
        # the sample log: counters, and thumbnails served by the view from memory
        page.wait_for_function("() => document.querySelectorAll('#thumbs img').length > 0")
        page.wait_for_function("() => document.querySelector('#thumbs img').naturalWidth === 160")
        assert "logged" in page.inner_text("#log")
        # hot swap: the page shows the switch
        point(car / "current", car / "releases" / "v0002")
        page.wait_for_selector("body[data-model='lights:v0002']")
        assert page.inner_text("#model") == "model lights:v0002"
        assert re.fullmatch(r"hot swap at frame \d+: lights:v0001 → lights:v0002", page.inner_text("#swap"))
        assert page.get_attribute("body", "data-swaps") == "1"
        page.close()
    finally:
        stderr = run.stop()
        point(car / "current", car / "releases" / "v0001")
    assert "model swapped: lights:v0001 -> lights:v0002" in stderr
    assert re.search(r"view\.encoded=[1-9]", stderr)


def test_off_loopback_the_page_needs_the_printed_token(car, browser):
    run = Run(car, "0.0.0.0:0")
    try:
        token = re.search(r"\?token=([A-Za-z0-9_-]+)", run.url).group(1)
        page = browser.new_page()
        page.set_default_timeout(30_000)
        response = page.goto(run.local)
        assert response.status == 401 and "token required" in page.inner_text("body")
        assert page.goto(run.local + "api/state").status == 401
        page.goto(f"{run.local}?token={token}")  # traded for a cookie, and dropped from the address
        assert page.url == run.local
        page.wait_for_selector("body[data-ready='1']")
        page.wait_for_function("() => document.getElementById('stream').naturalWidth > 0")
        assert page.inner_text("#label") in ("green", "none", "red", "yellow")
        page.close()
        assert run.state(token)["model_version"] == "lights:v0001"
    finally:
        stderr = run.stop()
    assert "the token is required" in stderr
    assert re.search(r"view\.refused=[2-9]", stderr)


def test_a_client_that_stops_reading_does_not_slow_inference(car, browser):
    """Measured in frames: while a client is stuck, the runtime still answers the camera's frames."""
    run = Run(car, "127.0.0.1:0")
    stuck = socket.socket()
    try:
        page = browser.new_page()
        page.set_default_timeout(30_000)
        page.goto(run.local)
        page.wait_for_selector("body[data-ready='1']")
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(("127.0.0.1", run.port))
        stuck.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1:{run.port}\r\n\r\n".encode())
        deadline = time.monotonic() + 60
        while (before := run.state())["view"]["blocked"] < 1:  # its socket buffers are full
            assert time.monotonic() < deadline, "the stuck client never blocked"
            time.sleep(0.2)
        shown = _frame_after(page, before["frame"])
        for _ in range(5):  # the page keeps getting new frames
            shown = _frame_after(page, shown + 20)
        after = run.state()
        produced = after["frame"] - before["frame"]
        answered = after["counters"]["frames"] - before["counters"]["frames"]
        assert after["view"]["blocked"] == 1 and after["view"]["dropped"] > 0
        # a runtime waiting on the stuck client would answer next to nothing here (its send times out
        # after 10 s); the margin below is for a loaded test machine, where a camera skips some frames anyway
        assert produced >= 100 and answered >= 0.5 * produced, (answered, produced)
        page.close()
    finally:
        stuck.close()
        run.stop()
