"""A video file, replayed frame by frame (every frame; the runtime may pace it to real time)."""

from __future__ import annotations

from pathlib import Path

import cv2

from edge.sources.opencv_capture import OpenCVReader


class VideoFileSource(OpenCVReader):
    """Frames of a video file in order; a reopen after an error resumes where it stopped.

    Example:
        >>> source = VideoFileSource(Path("drive.mp4"))
    """

    live = False

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        super().__init__(self.path.name)

    def _resume(self, capture: cv2.VideoCapture) -> None:
        if self._index:
            capture.set(cv2.CAP_PROP_POS_FRAMES, self._index)

    def open(self) -> None:
        self._open(str(self.path), cv2.CAP_ANY, f"cannot decode video {self.path}", self._resume)
