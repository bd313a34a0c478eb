"""Live OpenCV capture: a V4L2 device (`/dev/video0`, `0`), a GStreamer pipeline, an RTSP/HTTP URL."""

from __future__ import annotations

import cv2

from edge.frame import Frame
from edge.preprocess import to_rgb_uint8
from edge.sources.base import SourceError, make_frame


class OpenCVCaptureSource:
    """Frames from `cv2.VideoCapture`, converted once from BGR to RGB.

    Args:
        target: a device index (0), a device path, a URL or a GStreamer pipeline
            (anything containing "!"; it should end in `appsink`).
        size: requested (width, height) for devices; ignored by streams.

    Example:
        >>> source = OpenCVCaptureSource("/dev/video0", size=(640, 480))
    """

    live = True

    def __init__(self, target: str | int, size: tuple[int, int] | None = None) -> None:
        self.target = target
        self.size = size
        self.name = str(target)
        self.fps: float | None = None
        self._capture: cv2.VideoCapture | None = None
        self._index = 0

    def _backend(self) -> int:
        if isinstance(self.target, str) and "!" in self.target:
            return cv2.CAP_GSTREAMER
        return cv2.CAP_ANY

    def open(self) -> None:
        capture = cv2.VideoCapture(self.target, self._backend())
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"cannot open camera/stream {self.name}")
        if self.size and isinstance(self.target, int | str) and not str(self.target).startswith(("rtsp:", "http")):
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and fps > 0 else None
        self._capture = capture

    def read(self) -> Frame | None:
        if self._capture is None:
            raise SourceError(f"{self.name} is not open")
        ok, image = self._capture.read()
        if not ok or image is None:
            raise SourceError(f"no frame from {self.name} (unplugged or stream ended)")
        frame = make_frame(to_rgb_uint8(image), self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
