"""edge.preprocess and edge.frame: a BGR frame gives exactly the model input of its RGB twin."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from edge.errors import UserError
from edge.frame import Frame
from edge.preprocess import (
    BOX_AVERAGE_MIN_AREA,
    PreprocessSpec,
    box_average,
    opencv_pixels,
    preprocess,
    preprocess_frame,
)


def _scene(height: int = 120, width: int = 160) -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("resize,interpolation,color", list(itertools.product(
    ("stretch", "center-crop", "letterbox"), ("area", "linear", "nearest", "cubic"), ("rgb", "gray"))))
def test_bgr_frame_gives_the_same_model_input_as_converting_first(resize, interpolation, color):
    rgb = _scene()
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    spec = PreprocessSpec(input_size=(24, 40), roi=(0.1, 0.2, 0.7, 0.6), resize=resize,
                          interpolation=interpolation, color=color)
    expected = preprocess(rgb, spec)
    np.testing.assert_array_equal(preprocess(bgr, spec, order="bgr"), expected)
    np.testing.assert_array_equal(preprocess_frame(Frame(bgr, 0.0, 0, 0.0, order="bgr"), spec), expected)
    np.testing.assert_array_equal(preprocess_frame(Frame(rgb, 0.0, 0, 0.0), spec), expected)


@pytest.mark.parametrize("factor_y,factor_x", [(10, 10), (15, 20), (20, 15), (1, 100), (100, 1), (12, 25), (30, 30), (300, 1)])
def test_box_average_gives_the_bytes_of_opencv_area_resize(factor_y, factor_x):
    rng = np.random.default_rng(factor_y * 100 + factor_x)
    out_h, out_w = 7, 5
    frame = rng.integers(0, 256, (out_h * factor_y + 3, out_w * factor_x + 4, 3), dtype=np.uint8)
    region = frame[1 : 1 + out_h * factor_y, 2 : 2 + out_w * factor_x]  # a crop: rows are strided
    for image in (region, cv2.GaussianBlur(region, (0, 0), 3)):  # noise, and smooth (many ties)
        expected = cv2.resize(image, (out_w, out_h), interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(box_average(image, out_h, out_w), expected)


def test_camera_frame_to_32x32_takes_the_box_path_and_matches_opencv(monkeypatch):
    frame = _scene(480, 640)
    expected = cv2.resize(frame, (32, 32), interpolation=cv2.INTER_AREA)
    assert (480 // 32) * (640 // 32) >= BOX_AVERAGE_MIN_AREA
    monkeypatch.setattr(cv2, "resize", lambda *a, **k: pytest.fail("cv2.resize used for a box average"))
    np.testing.assert_array_equal(preprocess(frame, PreprocessSpec(input_size=(32, 32))), expected)


def test_frame_converts_only_when_asked_and_both_orders_agree():
    rgb = _scene(8, 10)
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    from_bgr = Frame(bgr, 1.0, 5, 2.0, order="bgr")
    assert from_bgr.bgr is bgr  # no copy for the order the pixels came in
    np.testing.assert_array_equal(from_bgr.image, rgb)
    assert from_bgr.image is from_bgr.image  # converted once
    from_rgb = Frame(rgb, 1.0, 5, 2.0)
    assert from_rgb.image is rgb
    np.testing.assert_array_equal(from_rgb.bgr, bgr)
    renumbered = from_bgr.renumbered(9)
    assert renumbered.index == 9 and renumbered.order == "bgr" and renumbered.pixels is bgr
    with pytest.raises(ValueError, match="order"):
        Frame(rgb, 0.0, 0, 0.0, order="rgba")


def test_opencv_pixels_keeps_8bit_bgr_and_converts_everything_else():
    bgr = _scene(4, 4)
    pixels, order = opencv_pixels(bgr)
    assert pixels is bgr and order == "bgr"
    gray = np.full((4, 4), 200, np.uint8)
    pixels, order = opencv_pixels(gray)
    assert order == "rgb" and pixels.shape == (4, 4, 3) and (pixels == 200).all()
    deep = (bgr.astype(np.uint16) * 257)
    pixels, order = opencv_pixels(deep)
    assert order == "rgb"
    np.testing.assert_array_equal(pixels, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def test_a_frame_that_is_not_uint8_rgb_is_a_clear_error():
    with pytest.raises(UserError, match="uint8 RGB"):
        preprocess(np.zeros((8, 8), np.uint8), PreprocessSpec(input_size=(4, 4)))
