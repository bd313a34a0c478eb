"""The Raspberry Pi camera through picamera2 (imported only when this source is chosen).

The main stream is `RGB888`, which picamera2 lays out as B,G,R in memory; its frames
are passed on as they are, marked B,G,R (`Frame.order == "bgr"`), and the preprocessing
converts once; a YUV420 lores stream is converted to RGB here. When the region of interest allows, a `lores`
stream close to the model input is requested too, so that the camera's ISP
does the scaling instead of the CPU, and frames come from it.

Install on the Pi: `sudo apt install python3-picamera2` and a venv made with
`--system-site-packages` (picamera2 is not installed from PyPI there).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import cv2
import numpy as np

from edge.errors import UserError
from edge.frame import Frame
from edge.sources.base import SourceError, make_frame

log = logging.getLogger(__name__)

LORES_WIDTH_ALIGN = 64  # keeps the lores row stride equal to its width on every Pi ISP
LORES_FORMATS = ("YUV420", "RGB888")  # Pi 4 and older: YUV420 only; Pi 5: either


def lores_size_for(main_size: tuple[int, int], model_size_hw: tuple[int, int],
                   roi: tuple[float, float, float, float]) -> tuple[int, int] | None:
    """The smallest lores (width, height) with main's aspect that still holds the ROI at model size.

    None when that is not smaller than main (a small ROI needs the full frame).

    Example:
        >>> lores_size_for((640, 480), (32, 32), (0, 0, 1, 1))
        (64, 48)
    """
    main_w, main_h = main_size
    need_w = model_size_hw[1] / roi[2]
    need_h = model_size_hw[0] / roi[3]
    for width in range(LORES_WIDTH_ALIGN, main_w, LORES_WIDTH_ALIGN):
        height = 2 * math.ceil(width * main_h / main_w / 2)
        if width >= need_w and height >= need_h:
            return (width, height) if height < main_h else None
    return None


class PiCameraSource:
    """Frames from the Pi camera.

    Args:
        size: main stream (width, height).
        fps: requested frame rate.
        lores: lores stream (width, height) for the model, or None to read main.
        lores_format: "YUV420" (every Pi) or "RGB888" (Pi 5).
        camera: camera number.
        want_main: with a lores stream, frames also carry the main stream (`Frame.main`, B,G,R) of the
            same request whenever this returns True (the live view, while someone watches).

    Example:
        >>> source = PiCameraSource(size=(640, 480), lores=(64, 48))
    """

    live = True

    def __init__(self, size: tuple[int, int] = (640, 480), fps: float = 30.0,
                 lores: tuple[int, int] | None = None, lores_format: str = "YUV420",
                 camera: int = 0, want_main: Callable[[], bool] | None = None) -> None:
        if lores_format not in LORES_FORMATS:
            raise UserError(f"unknown lores format {lores_format!r}: use one of {', '.join(LORES_FORMATS)}")
        self.size = size
        self.fps: float | None = fps
        self.lores = lores
        self.lores_format = lores_format
        self.camera = camera
        self.want_main = want_main
        self.name = f"picamera2[{camera}]"
        self._camera: Any = None
        self._index = 0

    def open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as error:
            raise UserError(
                "the picamera2 source needs picamera2: on Raspberry Pi OS run "
                "`sudo apt install python3-picamera2` and use a venv made with --system-site-packages"
            ) from error
        camera = None
        try:
            camera = Picamera2(self.camera)
            streams: dict[str, Any] = {"main": {"size": tuple(self.size), "format": "RGB888"}}
            if self.lores:
                streams["lores"] = {"size": tuple(self.lores), "format": self.lores_format}
            config = camera.create_video_configuration(
                **streams, controls={"FrameRate": float(self.fps or 30.0)}, buffer_count=4,
            )
            camera.configure(config)
            camera.start()
        except Exception as error:
            if camera is not None:
                _close_quietly(camera)
            raise SourceError(f"cannot start {self.name}: {error}") from error
        self._camera = camera
        log.info("picamera2: main %sx%s RGB888%s", *self.size,
                 f", lores {self.lores[0]}x{self.lores[1]} {self.lores_format} (ISP scaling)" if self.lores else "")

    def read(self) -> Frame | None:
        if self._camera is None:
            raise SourceError(f"{self.name} is not open")
        stream = "lores" if self.lores else "main"
        with_main = stream == "lores" and self.want_main is not None and self.want_main()
        try:
            if with_main:  # both from one request: the same moment
                (array, main), _ = self._camera.capture_arrays([stream, "main"])
            else:
                array, main = self._camera.capture_array(stream), None
        except Exception as error:
            raise SourceError(f"{self.name} capture failed: {error}") from error
        pixels, order = self._pixels(array, stream)
        frame = make_frame(pixels, self._index, order=order)
        if main is not None:
            frame = replace(frame, main=self._pixels(main, "main")[0])
        self._index += 1
        return frame

    def _pixels(self, array: np.ndarray, stream: str) -> tuple[np.ndarray, str]:
        """(pixels, order): lores YUV420 -> RGB; RGB888 is B,G,R in memory and is passed on as such."""
        if stream == "lores" and self.lores_format == "YUV420":
            width, height = self.lores
            if array.shape[:2] != (height * 3 // 2, width):
                raise SourceError(f"lores YUV420 array has shape {array.shape}, expected {(height * 3 // 2, width)}")
            return cv2.cvtColor(array, cv2.COLOR_YUV2RGB_I420), "rgb"
        # XRGB8888 would add a fourth byte
        return (array if array.shape[2] == 3 else np.ascontiguousarray(array[..., :3])), "bgr"

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            _close_quietly(camera)


def _close_quietly(camera: Any) -> None:
    """stop() then close(); close runs even when stop fails."""
    try:
        camera.stop()
    except Exception as error:  # a camera that failed to start may refuse to stop
        log.debug("picamera2 stop failed: %s", error)
    finally:
        camera.close()
