"""The picamera2 source against a fake picamera2 that mirrors the real API and memory layouts."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from edge.errors import UserError
from edge.sources import (
    Backoff,
    ResilientSource,
    SourceError,
    SourceGaveUp,
    SourceOptions,
    make_source,
)
from edge.sources.picamera import PiCameraSource, lores_size_for

FAKES = Path(__file__).parent / "fakes"


@pytest.fixture
def fake_camera(monkeypatch):
    monkeypatch.syspath_prepend(str(FAKES))
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)
    import picamera2

    assert Path(picamera2.__file__).is_relative_to(FAKES)
    picamera2.reset()
    yield picamera2
    picamera2.reset()


def _names(events):
    return [event[0] for event in events]


def test_main_stream_rgb888_is_bgr_in_memory_and_comes_out_rgb(fake_camera):
    source = PiCameraSource(size=(640, 480))
    source.open()
    frame = source.read()
    source.close()
    assert frame.image.dtype == np.uint8 and frame.image.shape == (480, 640, 3)
    np.testing.assert_array_equal(frame.image, fake_camera.SCENE)
    assert frame.image[10, 10].tolist() == [255, 0, 0]  # red stays red


def test_lores_stream_is_requested_near_model_input_and_converted_from_yuv(fake_camera):
    source = make_source("picamera2", SourceOptions(size=(640, 480), model_input_hw=(32, 32)))
    source.open()
    frame = source.read()
    source.close()
    config = next(event[1] for event in fake_camera.EVENTS if event[0] == "configure")
    assert config["use_case"] == "video"
    assert config["main"] == {"size": (640, 480), "format": "RGB888"}
    assert config["lores"] == {"size": (64, 48), "format": "YUV420"}
    assert ("capture_array", "lores") in fake_camera.EVENTS
    assert frame.image.shape == (48, 64, 3)
    red, green, blue = frame.image[24, 5], frame.image[24, 32], frame.image[24, 60]
    assert red[0] > 200 and red[1] < 60 and red[2] < 60
    assert green[1] > 200 and green[0] < 60
    assert blue[2] > 200 and blue[0] < 60


def test_lores_only_when_the_roi_allows():
    assert lores_size_for((640, 480), (32, 32), (0, 0, 1, 1)) == (64, 48)
    assert lores_size_for((640, 480), (32, 32), (0.5, 0.5, 0.25, 0.25)) == (192, 144)
    assert lores_size_for((640, 480), (96, 96), (0.45, 0.45, 0.1, 0.1)) is None  # needs the full frame


def test_lifecycle_order(fake_camera):
    source = PiCameraSource(size=(320, 240))
    source.open()
    for _ in range(3):
        source.read()
    source.close()
    assert _names(fake_camera.EVENTS) == ["init", "configure", "start", "capture_array", "capture_array",
                                         "capture_array", "stop", "close"]


def test_close_runs_when_capture_fails(fake_camera):
    fake_camera.FAIL_CAPTURE_AFTER = 1
    source = PiCameraSource()
    source.open()
    source.read()
    with pytest.raises(SourceError, match="timed out"):
        source.read()
    source.close()
    assert _names(fake_camera.EVENTS)[-2:] == ["stop", "close"]


def test_close_runs_when_start_fails_and_when_stop_fails(fake_camera):
    fake_camera.FAIL_START = True
    with pytest.raises(SourceError, match="device busy"):
        PiCameraSource().open()
    assert _names(fake_camera.EVENTS)[-1] == "close"
    fake_camera.reset()
    fake_camera.FAIL_STOP = True
    source = PiCameraSource()
    source.open()
    source.close()  # a failing stop() is logged, not raised: close() must still run
    assert _names(fake_camera.EVENTS)[-2:] == ["stop", "close"]


def test_failing_camera_is_reopened_then_given_up_with_one_line(fake_camera):
    fake_camera.FAIL_CAPTURE_AFTER = 2
    source = ResilientSource(PiCameraSource(), Backoff(max_failures=3, initial=0.001, maximum=0.002))
    frames = [source.read(), source.read()]
    assert [f.index for f in frames] == [0, 1]
    with pytest.raises(SourceGaveUp) as raised:
        source.read()
    message = str(raised.value)
    assert "\n" not in message and "failed 3 times in a row" in message
    assert _names(fake_camera.EVENTS).count("init") == 3  # opened, then reopened twice
    assert _names(fake_camera.EVENTS).count("close") == 3  # every open was closed


def test_missing_picamera2_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(UserError, match="apt install python3-picamera2"):
        PiCameraSource().open()
