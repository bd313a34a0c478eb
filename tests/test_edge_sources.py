"""File, folder and generated sources; reopen with backoff; the capture thread's two modes."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import UserError
from edge.runtime.capture import END, CaptureThread
from edge.sources import (
    Backoff,
    ResilientSource,
    SourceError,
    SourceGaveUp,
    make_frame,
    make_source,
)
from edge.sources.image_folder import ImageFolderSource
from edge.sources.opencv_capture import OpenCVCaptureSource
from edge.sources.synthetic import SyntheticSource
from edge.sources.video_file import VideoFileSource


def _write_video(path: Path, n: int, size=(64, 48)) -> list[np.ndarray]:
    """n frames, frame i a flat colour with red = 10 * i (RGB), written losslessly enough."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, size)
    frames = []
    for i in range(n):
        rgb = np.zeros((size[1], size[0], 3), np.uint8)
        rgb[..., 0] = 10 * i
        rgb[..., 2] = 200
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        frames.append(rgb)
    writer.release()
    return frames


def _drain(source) -> list:
    frames = []
    source.open()
    while (frame := source.read()) is not None:
        frames.append(frame)
    source.close()
    return frames


def test_video_file_replays_every_frame_in_rgb(tmp_path):
    expected = _write_video(tmp_path / "clip.avi", 12)
    frames = _drain(VideoFileSource(tmp_path / "clip.avi"))
    assert [f.index for f in frames] == list(range(12))
    for frame, rgb in zip(frames, expected, strict=True):
        assert frame.image.shape == rgb.shape
        assert np.abs(frame.image.astype(int) - rgb).mean() < 4  # red ramps, blue constant: RGB order kept


def test_video_frames_reuse_a_buffer_once_nothing_holds_it_and_never_before(tmp_path):
    expected = _write_video(tmp_path / "clip.avi", 12)
    source = VideoFileSource(tmp_path / "clip.avi")
    source.open()
    held = source.read()  # frame 0, kept for the whole test (like a queued sample)
    view = source.read().pixels[:8]  # frame 1, only a crop of it kept
    addresses = []
    for i in range(2, 12):
        frame = source.read()
        assert np.abs(frame.image.astype(int) - expected[i]).mean() < 4
        addresses.append(frame.pixels.ctypes.data)
        del frame
    source.close()
    assert len(set(addresses)) == 1  # every later frame decoded into one reused array
    assert held.pixels.ctypes.data not in addresses and view.base.ctypes.data not in addresses
    assert np.abs(held.image.astype(int) - expected[0]).mean() < 4  # never overwritten
    assert np.abs(cv2.cvtColor(view, cv2.COLOR_BGR2RGB).astype(int) - expected[1][:8]).mean() < 4


def test_image_folder_is_sorted_and_a_bad_file_is_skipped_and_counted(tmp_path):
    for name, red in (("b.png", 20), ("a.png", 10), ("c.png", 30)):
        image = np.full((4, 4, 3), (red, 0, 0), np.uint8)
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    (tmp_path / "b2.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "notes.txt").write_text("ignored")
    folder = ImageFolderSource(tmp_path)
    source = ResilientSource(folder, Backoff(max_failures=1, initial=10))
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    assert [int(f.image[0, 0, 0]) for f in frames] == [10, 20, 30]
    assert [f.index for f in frames] == [0, 1, 2] and [f.file for f in frames] == ["a.png", "b.png", "c.png"]
    assert source.reopens == 0 and folder.counters() == {"source_skipped": 1}  # no back-off for a file


def _write_class_folders(root: Path) -> None:
    for rel, red in (("red/001.png", 200), ("green/002.png", 0), ("green/night/003.png", 5),
                     ("test/yellow/004.png", 100)):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / rel), np.full((4, 4, 3), (0, 0, red), np.uint8))
    (root / ".thumbs").mkdir()
    cv2.imwrite(str(root / ".thumbs" / "x.png"), np.zeros((4, 4, 3), np.uint8))


def test_image_folder_reads_class_folders_recursively_with_truth_and_file(tmp_path):
    """Issue 13.5: `--source DIR` on DIR/<class>/*.jpg said `no images in DIR`."""
    _write_class_folders(tmp_path)
    frames = _drain(ImageFolderSource(tmp_path))
    assert [(f.file, f.truth) for f in frames] == [("green/002.png", "green"), ("green/night/003.png", "green"),
                                                   ("red/001.png", "red"), ("test/yellow/004.png", "yellow")]


def test_empty_folder_is_a_user_error(tmp_path):
    (tmp_path / "red").mkdir()
    (tmp_path / "red" / "notes.txt").write_text("no images here")
    with pytest.raises(UserError, match="no images in .* or its subfolders"):
        ImageFolderSource(tmp_path)


def test_synthetic_source_is_deterministic_and_carries_truth():
    first = _drain(SyntheticSource(size=(64, 48), seed=3, frames=5))
    second = _drain(SyntheticSource(size=(64, 48), seed=3, frames=5))
    assert len(first) == 5 and first[0].image.shape == (48, 64, 3)
    assert all(f.truth for f in first)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(first, second, strict=True))


def test_source_strings(tmp_path):
    (tmp_path / "clip.avi").write_bytes(b"")
    assert isinstance(make_source("synthetic:seed=2,frames=4"), SyntheticSource)
    assert isinstance(make_source("0"), OpenCVCaptureSource)
    assert isinstance(make_source("/dev/video1"), OpenCVCaptureSource)
    assert isinstance(make_source("rtsp://car.local:8554/cam"), OpenCVCaptureSource)
    assert isinstance(make_source("libcamerasrc ! videoconvert ! appsink"), OpenCVCaptureSource)
    assert isinstance(make_source(str(tmp_path / "clip.avi")), VideoFileSource)
    with pytest.raises(UserError, match="not found"):
        make_source(str(tmp_path / "missing.mp4"))
    with pytest.raises(UserError, match="key=value"):
        make_source("synthetic:7")


class FlakyCamera:
    """A live source that fails `fail_times` times, then streams; counts opens and closes."""

    live = True
    fps = 1000.0
    name = "flaky"

    def __init__(self, fail_times: int, period: float = 0.0) -> None:
        self.fail_times = fail_times
        self.period = period
        self.opens = self.closes = 0
        self.index = 0

    def open(self) -> None:
        self.opens += 1
        if self.opens <= self.fail_times:
            raise SourceError("no such device")

    def read(self):
        if self.period:
            time.sleep(self.period)
        frame = make_frame(np.full((6, 6, 3), self.index % 256, np.uint8), self.index)
        self.index += 1
        return frame

    def close(self) -> None:
        self.closes += 1


def test_failing_source_is_reopened_with_growing_backoff(monkeypatch):
    waits: list[float] = []
    stop = threading.Event()
    monkeypatch.setattr(stop, "wait", lambda delay: waits.append(delay) or False)
    camera = FlakyCamera(fail_times=3)
    source = ResilientSource(camera, Backoff(max_failures=5, initial=0.5, maximum=1.5), stop)
    assert source.read().index == 0
    assert waits == [0.5, 1.0, 1.5]
    assert camera.opens == 4 and camera.closes == 0  # a failed open() cleans up after itself
    source.close()
    assert camera.closes == 1


def test_source_gives_up_after_n_consecutive_failures():
    source = ResilientSource(FlakyCamera(fail_times=99), Backoff(max_failures=4, initial=0.001))
    with pytest.raises(SourceGaveUp, match="failed 4 times in a row") as raised:
        source.read()
    assert raised.value.exit_code != 0


def test_live_capture_keeps_only_the_newest_frame_and_counts_skips():
    stop = threading.Event()
    source = ResilientSource(FlakyCamera(fail_times=0, period=0.001), stop=stop)
    capture = CaptureThread(source, latest_only=True)
    capture.start()
    taken = []
    while len(taken) < 15:
        item = capture.get(timeout=1.0)
        assert item is not None and item is not END
        taken.append(item.frame.index)
        time.sleep(0.01)  # a slow model: the camera runs ahead
    capture.join()
    assert taken == sorted(taken) and len(set(taken)) == len(taken)
    gaps = sum(b - a - 1 for a, b in zip(taken, taken[1:], strict=False))
    assert gaps > 0
    assert capture.skipped >= gaps  # every frame the model never saw was counted


def test_file_replay_processes_every_frame_even_with_a_slow_model(tmp_path):
    _write_video(tmp_path / "clip.avi", 25)
    capture = CaptureThread(ResilientSource(VideoFileSource(tmp_path / "clip.avi")),
                            latest_only=False)
    capture.start()
    taken = []
    while (item := capture.get(timeout=2.0)) is not END:
        assert item is not None
        taken.append(item.frame.index)
        time.sleep(0.005)
    capture.join()
    assert taken == list(range(25)) and capture.skipped == 0


def test_run_on_class_folders_carries_truth_and_file_into_json_lines_and_the_sample_log(tmp_path):
    """Issue 13.5 through `edgekit run`: every JSON line names its file and class; logged samples keep the truth."""
    from edge.samplelog.store import SampleStore
    from tests.conftest import run_edgekit
    from tests.tiny_bundles import float_tflite, write_bundle

    bundle = write_bundle(tmp_path / "bundle", float_tflite())
    _write_class_folders(tmp_path / "photos")
    result = run_edgekit("run", "--bundle", str(bundle), "--source", str(tmp_path / "photos"),
                         "--log-dir", str(tmp_path / "log"), "--log-random", "1", check=True)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(line["file"], line["truth"]) for line in lines] == [
        ("green/002.png", "green"), ("green/night/003.png", "green"), ("red/001.png", "red"),
        ("test/yellow/004.png", "yellow")]
    with SampleStore(tmp_path / "log") as store:
        truths = sorted(row["truth"] for row in store.rows())
    assert truths == ["green", "green", "red", "yellow"]
