"""Fault replays of the small parts (issue 14, item 12): `samples check` sees stray files, Ctrl-C
while edgekit starts, a truncated video, a stream that accepts connections and never answers."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from edge.errors import UserError
from edge.sources import SourceOptions, make_source
from edge.sources.base import SourceError
from edge.sources.video_file import VideoFileSource, VideoTruncated
from tests.conftest import ROOT, run_edgekit
from tests.faults.stores import make_store


@pytest.mark.fault("small parts")
@pytest.mark.parametrize("stray", ["leftover.png.tmp", "unindexed.png", "link.png", "odd name.png"])
def test_samples_check_reports_what_the_index_does_not_know(tmp_path, stray, record_property):
    store = make_store(tmp_path / "samples", 2)
    path = store / "images" / "s1" / stray
    if stray == "link.png":
        path.symlink_to("/etc/hostname")
    else:
        path.write_bytes((store / "images" / "s1" / "000000000.png").read_bytes()[:-10] + b"0123456789")
    result = run_edgekit("samples", "check", str(store))
    record_property("data_lost", 0)
    report = json.loads(result.stdout)
    assert result.returncode == 1 and not report["ok"], result.stdout
    found = report["temp_files"] + report["unindexed"] + report["strays"]
    assert found == [f"images/s1/{stray}"], report


def _stack_in_edgekit(stderr: str) -> bool:
    """A traceback that runs through edgekit's own files (not only Python's start-up)."""
    own = tuple(f'File "{ROOT / package}/' for package in ("edge", "train", "convert"))
    return "Traceback" in stderr and any(line.strip().startswith(own) for line in stderr.splitlines())


@pytest.mark.fault("small parts")
@pytest.mark.slow
def test_ctrl_c_while_edgekit_starts_gives_one_line_not_a_traceback(tmp_path, record_property):
    """SIGINT at 40 (or more) moments 10 ms apart as `edgekit samples stats` starts. Python's own start-up
    (before edgekit's first line runs) may still print its traceback; once edgekit runs, never."""
    store = make_store(tmp_path / "samples", 2)
    outcomes: dict[str, int] = {}
    for step in range(100):  # 10 ms apart, until the window after Python's start-up was hit 5 times
        if step >= 40 and outcomes.get("interrupted", 0) >= 5:
            break
        process = subprocess.Popen([sys.executable, "-m", "edge.cli", "samples", "stats", str(store)], cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(step * 0.01)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        assert not _stack_in_edgekit(stderr), stderr
        if "Traceback" in stderr:
            outcomes["python start-up"] = outcomes.get("python start-up", 0) + 1
        elif process.returncode == 130:
            assert stderr.strip().splitlines()[-1].endswith("interrupted"), stderr
            outcomes["interrupted"] = outcomes.get("interrupted", 0) + 1
        elif process.returncode == -signal.SIGINT:  # before Python set up its own handler: killed, silent
            outcomes["python start-up"] = outcomes.get("python start-up", 0) + 1
        else:
            assert process.returncode == 0, stderr
            outcomes["finished"] = outcomes.get("finished", 0) + 1
    print("ctrl-c outcomes:", outcomes)
    record_property("data_lost", 0)
    assert outcomes.get("interrupted", 0) >= 5, outcomes  # the start-up window was really hit


def _video(path, frames: int = 40) -> bytes:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    for index in range(frames):
        writer.write(np.full((48, 64, 3), index * 5, np.uint8))
    writer.release()
    return path.read_bytes()


@pytest.mark.fault("small parts")
def test_a_truncated_video_ends_with_one_line_and_non_zero(tmp_path, record_property):
    data = _video(tmp_path / "drive.avi")
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * 0.9)])
    source = VideoFileSource(cut)
    source.open()
    read = 0
    with pytest.raises(VideoTruncated, match=r"ended after \d+ of the 40 frames"):
        while source.read() is not None:
            read += 1
    source.close()
    record_property("data_lost", 0)
    assert 0 < read < 40
    whole = VideoFileSource(tmp_path / "drive.avi")  # the full file still ends quietly
    whole.open()
    assert sum(1 for _ in iter(whole.read, None)) == 40


@pytest.mark.fault("small parts")
def test_a_video_that_cannot_be_decoded_is_one_line_at_once(tmp_path, record_property):
    (tmp_path / "cut.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    source = VideoFileSource(tmp_path / "cut.mp4")
    record_property("data_lost", 0)
    with pytest.raises(UserError, match="cannot decode video") as raised:
        source.open()
    assert not isinstance(raised.value, SourceError)  # no back-off: a file that does not open never will


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never says a word (a hung camera)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


@pytest.mark.fault("small parts")
@pytest.mark.parametrize("scheme", ["http", "rtsp"])
def test_a_stream_that_never_answers_costs_the_open_timeout_not_30_s(silent_server, scheme, record_property):
    source = make_source(f"{scheme}://127.0.0.1:{silent_server}/stream", SourceOptions(open_timeout=1.0))
    started = time.monotonic()
    with pytest.raises(SourceError, match="within 1 s"):
        source.open()
    elapsed = time.monotonic() - started
    record_property("data_lost", 0)
    assert elapsed < 10, f"opening took {elapsed:.1f} s"  # OpenCV's own default is 30 s
    assert SourceOptions().open_timeout <= 10
