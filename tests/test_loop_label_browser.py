"""`edgekit label serve` end to end: headless Chromium, real key presses, then what SQLite holds."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.loop_store import make_store
from train.labeling.decisions import LabelDB

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed at /usr/bin/chromium: run `make browser` as root "
           "(apt-get install chromium)",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def served_store(tmp_path):
    store = make_store(tmp_path / "store", n=5)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "label", "serve", str(store), "--port", str(port)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "api/state", timeout=1).read()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"label serve did not start: {server.stdout.read()}")
            time.sleep(0.2)
    yield store, url
    server.terminate()
    server.wait(timeout=10)


def test_keyboard_labeling_in_headless_chromium(served_store):
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) is not installed")
    store, url = served_store
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(10_000)
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        assert page.inner_text("#predicted") == "model: green"
        # the image loaded (wait for it: under load it can arrive after the page says it is ready)
        page.wait_for_function("document.getElementById('img').complete")
        assert page.evaluate("document.getElementById('img').naturalWidth") == 16

        saved = 0

        def press(key: str, saves: bool = True) -> None:
            nonlocal saved
            page.keyboard.press(key)
            if saves:
                saved += 1
                page.wait_for_selector(f"body[data-saved='{saved}']")

        press("3")            # sample 0 -> red (class 3), moves on
        press("x")            # sample 1 -> discarded
        press("1")            # sample 2 -> green
        press("u")            # undo sample 2
        assert page.get_attribute("body", "data-sample") == "images/s0/000002.png"
        press("ArrowRight", saves=False)  # skip sample 2, undecided
        press("4")            # sample 3 -> yellow
        press("ArrowLeft", saves=False)
        press("ArrowLeft", saves=False)
        press("ArrowLeft", saves=False)  # back at sample 1: change discard to "none"
        assert page.inner_text("#decision") == "discarded"
        press("2")
        press("9", saves=False)  # no 9th class: nothing happens
        assert page.inner_text("#decision") == "undecided"  # now on sample 2
        browser.close()

    decisions = {k: (d.label, d.discarded) for k, d in LabelDB(store / "labels.db").all().items()}
    assert decisions == {
        "images/s0/000000.png": ("red", False),
        "images/s1/000001.png": ("none", False),
        "images/s1/000003.png": ("yellow", False),
    }
