"""What every frame source is: open, read frames, close.

A source yields `edge.frame.Frame` (uint8 pixels, RGB or BGR as they came, timestamp, index). `read()`
returns None when a finite stream (file, folder) ends, and raises
`SourceError` when the device or stream fails; the runtime then reopens it
with backoff (see `edge.sources.resilient`).
"""

from __future__ import annotations

import time
from typing import Protocol

import numpy as np

from edge.errors import UserError
from edge.frame import Frame


class SourceError(Exception):
    """The source failed (device unplugged, read error, stream cut); it may come back."""


class SourceGaveUp(UserError):
    """The source failed too many times in a row: exit non-zero so systemd restarts us."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=3)


class Source(Protocol):
    """A stream of frames.

    Attributes:
        name: what to show in logs ("picamera2", "/dev/video0", "drive.mp4").
        live: True for cameras and network streams (keep only the newest frame),
            False for files, folders and generated streams (process every frame).
        fps: the stream's nominal frame rate, or None if unknown.
    """

    name: str
    live: bool
    fps: float | None

    def open(self) -> None: ...

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...


def make_frame(pixels: np.ndarray, index: int, truth: str | None = None, order: str = "rgb",
               file: str | None = None) -> Frame:
    """A frame stamped now, on both clocks (`order`: how the pixels lie, "rgb" or "bgr")."""
    return Frame(pixels, timestamp=time.time(), index=index, monotonic=time.monotonic(), truth=truth, order=order,
                 file=file)
