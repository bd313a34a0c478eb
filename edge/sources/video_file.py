"""A video file, replayed frame by frame (every frame; the runtime may pace it to real time)."""

from __future__ import annotations

from pathlib import Path

import cv2

from edge.frame import Frame
from edge.preprocess import to_rgb_uint8
from edge.sources.base import SourceError, make_frame


class VideoFileSource:
    """Frames of a video file in order; a reopen after an error resumes where it stopped.

    Example:
        >>> source = VideoFileSource(Path("drive.mp4"))
    """

    live = False

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.name = self.path.name
        self.fps: float | None = None
        self._capture: cv2.VideoCapture | None = None
        self._next = 0

    def open(self) -> None:
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"cannot decode video {self.path}")
        if self._next:
            capture.set(cv2.CAP_PROP_POS_FRAMES, self._next)
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and fps > 0 else None
        self._capture = capture

    def read(self) -> Frame | None:
        if self._capture is None:
            raise SourceError(f"{self.name} is not open")
        ok, image = self._capture.read()
        if not ok or image is None:
            return None
        frame = make_frame(to_rgb_uint8(image), self._next)
        self._next += 1
        return frame

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
