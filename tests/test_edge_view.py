"""The live view in this process: settings, Host/token checks, rendering, state, streams, thumbnails."""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import UserError
from edge.runtime import Runtime, load_config
from edge.view.guard import COOKIE, Guard, host_name
from edge.view.live import render
from edge.view.settings import ViewSettings, parse_listen, view_settings, with_listen
from tests.tiny_bundles import int8_tflite, write_bundle
from tests.view_helpers import TOKEN, MjpegReader, frame, request, result, serving


def _wait(condition, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


# --- settings ------------------------------------------------------------------------------------

def test_listen_addresses_default_to_loopback():
    assert parse_listen("8080") == ("127.0.0.1", 8080)
    assert parse_listen("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_listen("[::1]:8080") == ("::1", 8080)
    assert parse_listen("car.local:80") == ("car.local", 80)
    assert ViewSettings().loopback and ViewSettings(host="::1").loopback
    assert not ViewSettings(host="0.0.0.0").loopback and not ViewSettings(host="192.168.1.5").loopback


@pytest.mark.parametrize("text", ["", "http", "8080x", "70000", ":8080", "[::1]8080", "bad host:80", "a/b:80"])
def test_bad_listen_addresses_are_one_line_errors(text):
    with pytest.raises(UserError, match="view"):
        parse_listen(text)


def test_config_file_table_and_command_line_override(tmp_path):
    path = tmp_path / "car.toml"
    path.write_text('bundle = "current"\nsource = "synthetic"\n[view]\nlisten = "0.0.0.0:8081"\n'
                    f'token = "{TOKEN}"\nmax_fps = 5\nwidth = 320\nhosts = ["car.example"]\n')
    config = load_config(path)
    assert config.view == ViewSettings(host="0.0.0.0", port=8081, token=TOKEN, max_fps=5.0, width=320,
                                       hosts=("car.example",))
    moved = with_listen(config.view, "9000")  # --view 9000 changes the address, keeps the rest
    assert (moved.host, moved.port, moved.token, moved.width) == ("127.0.0.1", 9000, TOKEN, 320)
    path.write_text('bundle = "current"\nsource = "synthetic"\nview = "8082"\n')
    assert load_config(path).view == ViewSettings(port=8082)
    assert load_config(None, {"bundle": "b", "source": "synthetic"}).view is None


@pytest.mark.parametrize("table, message", [
    ({"token": "short"}, "token"), ({"width": 0}, "width"), ({"max_fps": "fast"}, "max_fps"),
    ({"quality": 101}, "quality"), ({"main": "yes"}, "main"), ({"hosts": "car"}, "hosts"),
    ({"colour": 1}, "unknown view setting"),
])
def test_bad_view_tables_are_one_line_errors(table, message):
    with pytest.raises(UserError, match=message):
        view_settings(table)


# --- Host and token checks ------------------------------------------------------------------------

def test_host_names_are_parsed_strictly():
    assert host_name("127.0.0.1:8080") == "127.0.0.1"
    assert host_name("LocalHost") == "localhost"
    assert host_name("[::1]:8080") == "::1"
    assert host_name("car.local.:80") == "car.local"
    for bad in (None, "", "a b", "evil.com/x", "user@evil.com", "[::1", "[::1]x", "a:b:c", "host:port"):
        assert host_name(bad) is None, bad


def test_loopback_view_answers_only_loopback_names():
    guard = Guard(ViewSettings(), token=TOKEN, names={"car"})
    assert all(guard.host_ok(h) for h in ("127.0.0.1:8080", "localhost:9999", "[::1]:8080", "127.0.0.2"))
    # DNS rebinding: a page on evil.example resolving to 127.0.0.1 names itself in Host
    assert not any(guard.host_ok(h) for h in ("evil.example:8080", "car:8080", "192.168.1.5:8080", None))
    assert not guard.needs_token and guard.token_ok(None)


def test_off_loopback_view_needs_a_known_name_and_the_token():
    guard = Guard(ViewSettings(host="0.0.0.0", hosts=("car.example",)), token=TOKEN, names={"car", "car.local"})
    assert all(guard.host_ok(h) for h in ("192.168.1.5:8080", "[fe80::1]:8080", "car:8080", "car.local",
                                          "car.example:8080", "localhost:8080"))
    assert not any(guard.host_ok(h) for h in ("evil.example:8080", "car.evil.example", "192.168.1.5.evil.example"))
    assert guard.needs_token
    assert guard.token_ok(TOKEN)
    assert not guard.token_ok(None) and not guard.token_ok("") and not guard.token_ok(TOKEN + "x")
    assert not guard.token_ok(TOKEN.upper())


def test_off_loopback_the_machines_own_name_is_known_without_a_dns_lookup():
    guard = Guard(ViewSettings(host="0.0.0.0"), token=TOKEN)
    short = socket.gethostname().split(".")[0]
    assert guard.host_ok(f"{socket.gethostname()}:8080") and guard.host_ok(f"{short}.local:8080")
    assert not Guard(ViewSettings(), token=TOKEN).host_ok(f"{short}.local:8080")  # loopback: loopback names only


def test_the_token_is_taken_from_the_query_a_bearer_header_or_the_cookie():
    guard = Guard(ViewSettings(host="0.0.0.0"), token=TOKEN, names=set())
    assert guard.presented_token(f"token={TOKEN}", None, None) == TOKEN
    assert guard.presented_token("", f"Bearer {TOKEN}", None) == TOKEN
    assert guard.presented_token("", None, f"other=1; {COOKIE}={TOKEN}") == TOKEN
    assert guard.presented_token("", "Basic abc", "other=1") is None
    assert guard.presented_token("", None, 'bad"cookie') is None


# --- rendering -----------------------------------------------------------------------------------

def test_render_draws_the_roi_scaled_and_leaves_the_frame_alone():
    pixels = np.zeros((480, 640, 3), np.uint8)
    pixels[..., 0] = 200  # R in RGB order
    before = pixels.copy()
    picture = render(pixels, "rgb", (0.25, 0.5, 0.5, 0.25), width=320)
    assert picture.shape == (240, 320, 3)
    assert np.array_equal(pixels, before)  # frames are never written once made
    assert tuple(picture[10, 10]) == (0, 0, 200)  # converted to B,G,R for the encoder
    # the ROI's box: x 80..240, y 120..180 on the 320x240 picture, drawn in yellow (B,G,R 0,255,255)
    assert tuple(picture[120, 160]) == (0, 255, 255) and tuple(picture[150, 80]) == (0, 255, 255)
    assert tuple(picture[150, 160]) == (0, 0, 200)  # inside the box: the frame
    assert render(pixels, "rgb", None, width=480).shape == (240, 320, 3)  # the smallest whole factor
    assert render(pixels, "rgb", None, width=214).shape == (160, 213, 3)  # 640/3: not whole, linear
    small = render(np.zeros((48, 64, 3), np.uint8), "bgr", None, width=320)
    assert small.shape == (48, 64, 3)  # never upscaled


# --- the view in this process --------------------------------------------------------------------

def test_state_follows_the_newest_result_and_records_the_hot_swap():
    with serving() as view:
        for i in range(5):
            view.observe(frame(i, i), result(i), (0.1, 0.2, 0.3, 0.4))
        view.observe(frame(5, 5), result(5, label="green", version="lights:v0002"), (0.1, 0.2, 0.3, 0.4))
        status, headers, body = request(view, "/api/state")
        assert status == 200 and headers["content-type"] == "application/json"
        state = json.loads(body)
    assert state["frame"] == 5 and state["label"] == "green" and state["model_version"] == "lights:v0002"
    assert state["top_k"][0] == ["green", 0.9] and state["roi"] == [0.1, 0.2, 0.3, 0.4]
    assert state["swaps"] == [{"frame": 5, "from": "lights:v0001", "to": "lights:v0002",
                               "time": state["swaps"][0]["time"]}]
    assert state["latency_p50_ms"] == 6.0 and state["latency_p99_ms"] is not None
    assert state["view"]["encoded"] == 0  # nobody watched: nothing was encoded


def test_frames_are_encoded_only_while_a_client_watches():
    with serving() as view:
        for i in range(20):
            view.observe(frame(i, i), result(i), None)
            time.sleep(0.005)
        assert view.encoded == 0 and not view.watching.is_set()
        reader = MjpegReader(view)
        assert reader.status == 200
        seen = []
        for i in range(20, 200):
            view.observe(frame(i, i), result(i), None)
            if len(seen) < 3 and view.encoded > len(seen):
                seen.append(reader.next_jpeg())
            if len(seen) == 3:
                break
            time.sleep(0.02)
        assert len(seen) == 3 and len(set(seen)) == 3  # the frames change
        assert cv2.imdecode(np.frombuffer(seen[0], np.uint8), cv2.IMREAD_COLOR).shape == (48, 64, 3)
        reader.close()
        _wait(lambda: not view.watching.is_set(), what="the encoder to stop after the client left")
        encoded = view.encoded
        for i in range(200, 220):
            view.observe(frame(i, i), result(i), None)
            time.sleep(0.01)
        assert view.encoded <= encoded + 1  # at most the one in progress
        assert view.stats()["clients"] == 0


def test_a_stalled_client_costs_only_its_own_frames():
    """A client that stops reading: the encoder and a reading client go on; its missed frames are counted."""
    with serving(width=640, quality=95) as view:
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", view.server.port))
        stalled.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1:{view.server.port}\r\n\r\n".encode())
        healthy = MjpegReader(view)
        rng = np.random.default_rng(0)
        index = 0
        received = 0

        def feed_and_read(frames: int) -> None:
            nonlocal index, received
            for _ in range(frames):  # noisy 640x480 frames: large JPEGs fill the stalled socket fast
                pixels = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
                f = frame(index)
                view.observe(type(f)(pixels, f.timestamp, index, f.monotonic, order="bgr"), result(index), None)
                index += 1
                healthy.next_jpeg()
                received += 1

        feed_and_read(40)
        # the stalled client is now blocked in its send, its buffers full
        _wait(lambda: view.state()["view"]["blocked"] == 1, what="the stalled client to block")
        encoded, before = view.encoded, received
        feed_and_read(40)
        assert received - before == 40 and view.encoded >= encoded + 40  # nothing waited for it
        assert view.stats()["dropped"] >= 40  # the frames the stalled client missed are counted
        healthy.close()
        stalled.close()


def test_thumbnails_of_logged_samples_are_served_from_memory_by_id():
    with serving(thumbnails=2) as view:
        for i in range(3):
            image = np.full((240, 320, 3), 60 * i, np.uint8)
            view.on_sample_written(image, "rgb", {"frame_index": i, "label": "red", "confidence": 0.5,
                                                   "reasons": "random", "file": "/etc/passwd"})
        state = json.loads(request(view, "/api/state")[2])
        assert [t["id"] for t in state["thumbnails"]] == [3, 2]  # the newest first, only the last 2
        assert "file" not in state["thumbnails"][0]
        status, headers, body = request(view, state["thumbnails"][0]["url"])
        assert status == 200 and headers["content-type"] == "image/jpeg"
        picture = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        assert picture.shape == (120, 160, 3) and abs(int(picture.mean()) - 120) <= 2
        assert request(view, "/thumbs/1.jpg")[0] == 404  # evicted
        assert request(view, "/thumbs/4.jpg")[0] == 404  # never existed


def test_events_stream_the_same_figures():
    with serving() as view:
        view.observe(frame(1, 1), result(1, label="yellow"), None)
        with socket.create_connection(("127.0.0.1", view.server.port), timeout=10) as sock:
            sock.sendall(f"GET /events HTTP/1.1\r\nHost: localhost:{view.server.port}\r\n\r\n".encode())
            data = b""
            while b"\n\n" not in data.partition(b"\r\n\r\n")[2]:
                data += sock.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        assert b"text/event-stream" in head
        event = json.loads(body.split(b"\n\n")[0].removeprefix(b"data: "))
        assert event["label"] == "yellow" and event["frame"] == 1


# --- in the runtime --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bundle(pytestconfig, tmp_path_factory) -> Path:
    return write_bundle(tmp_path_factory.mktemp("view-bundle") / "v0001",
                        int8_tflite(pytestconfig.cache.mkdir("edge-runtime")))


def test_runtime_feeds_the_view_and_reports_its_counters(bundle):
    config = load_config(None, {"bundle": bundle, "source": "synthetic:seed=1,frames=40", "size": "96x72",
                                "quiet": True, "view": "0", "stats_interval": 0})
    runtime = Runtime(config, output=None)
    assert runtime.view is not None and runtime.view.server.port > 0
    stats = runtime.run()
    assert stats["frames"] == 40 and stats["view.encoded"] == 0 and stats["view.refused"] == 0
    state = runtime.view.state()
    assert state["frame"] == 39 and state["model_version"] == "lights:v0001"
    assert state["counters"]["frames"] == 40


def test_picamera2_sends_the_main_stream_to_the_view_only_while_watched(bundle, monkeypatch):
    """lores for the model always; main (same request) only while a video client is connected."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "fakes"))
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)
    import picamera2

    picamera2.reset()
    config = load_config(None, {"bundle": bundle, "source": "picamera2", "size": "640x480", "quiet": True,
                                "view": "0", "stats_interval": 0})
    runtime = Runtime(config, output=None)
    results = runtime.results()
    for _ in range(5):
        next(results)
    assert not any(e[0] == "capture_arrays" for e in picamera2.EVENTS)  # nobody watching: lores only
    reader = MjpegReader(runtime.view)
    pictures = []
    for _ in range(2000):  # the frames captured before the client came are lores only
        next(results)
        if runtime.view.encoded > len(pictures):
            pictures.append(cv2.imdecode(np.frombuffer(reader.next_jpeg(), np.uint8), cv2.IMREAD_COLOR))
            if pictures[-1].shape[0] > 48 or len(pictures) == 20:
                break
    reader.close()
    runtime.stop()
    for _ in results:
        pass
    assert ("capture_arrays", ("lores", "main")) in picamera2.EVENTS
    picture = pictures[-1]
    assert picture.shape == (240, 320, 3)  # main (640x480) scaled to the view's width, not the 64x48 lores
    # the fake's scene is red | green | blue (RGB); the JPEG is B,G,R
    assert picture[120, 40, 2] > 200 and picture[120, 280, 0] > 200


# --- the demo's hot swap, watched, and the benchmark's verdicts ------------------------------------

def test_the_demos_hot_swap_prints_the_view_address_and_the_page_sees_the_swap(bundle, tmp_path):
    from tests.tiny_bundles import point
    from train.demo.car import Car

    car = Car(tmp_path / "car", drive_size=(96, 72))
    releases = car.root / "releases"
    releases.mkdir()
    for version in ("v0001", "v0002"):
        write_bundle(releases / version, (bundle / "model.tflite").read_bytes(), version=version)
    point(car.root / "current", releases / "v0001")
    urls: list[str] = []
    seen: list[dict] = []

    def watch(url: str) -> None:
        urls.append(url)
        for _ in range(200):  # what a browser would see: the page's figures, until the swap shows
            seen.append(json.load(urllib.request.urlopen(url + "api/state", timeout=10)))
            if seen[-1].get("swaps"):
                return
            time.sleep(0.05)

    swap = car.swap_run("synthetic:seed=1,frames=150", "swap", lambda: point(car.root / "current", releases / "v0002"),
                        after_frames=20, max_fps=30, view="127.0.0.1:0", on_view=watch)
    assert len(urls) == 1 and urls[0].startswith("http://127.0.0.1:")
    assert swap.versions == ["lights:v0001", "lights:v0002"] and swap.lost_frames == 0
    assert seen[-1]["swaps"][0]["to"] == "lights:v0002"


def test_the_benchmark_report_fails_a_view_that_costs_too_much():
    from bench.view import report

    def rounds(idle: float, one: float, idle_own: float, one_own: float) -> list[dict]:
        return [{"off": (30.0, 1.0, None), "idle": (30.0, idle, idle_own), "one": (30.0, one, one_own),
                 "three": (30.0, 1.3, 0.2)}] * 3

    def verdicts(*figures: float) -> str:
        return report({"rounds": rounds(*figures), "received": {"one": [10.0], "three": [9.0]}, "load": [1.0]},
                      20, 3, "test")

    assert verdicts(1.01, 1.10, 0.001, 0.1).count("(yes)") == 4
    assert verdicts(1.05, 1.30, 0.001, 0.1).count("**no**") == 2  # the whole process
    assert verdicts(1.01, 1.10, 0.03, 0.2).count("**no**") == 2  # the view's own threads
