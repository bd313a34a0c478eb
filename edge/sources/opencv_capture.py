"""Live OpenCV capture: a V4L2 device (`/dev/video0`, `0`), a GStreamer pipeline, an RTSP/HTTP URL."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2

from edge.frame import Frame
from edge.preprocess import opencv_pixels
from edge.sources.base import SourceError, make_frame
from edge.sources.buffers import BufferPool


class OpenCVReader:
    """What every `cv2.VideoCapture` source shares: open with a check, BGR frames in reused buffers, close.

    Frames are numbered from where the last capture stopped, so a reopen continues the count.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.fps: float | None = None
        self._capture: cv2.VideoCapture | None = None
        self._index = 0
        self._buffers = BufferPool()

    def _open(self, target: str | int, backend: int, failure: str,
              configure: Callable[[cv2.VideoCapture], None] | None = None, params: Sequence[int] = ()) -> None:
        """Open `target`, raising SourceError(failure) if OpenCV cannot; `configure` runs before fps is read.

        `params`: OpenCV open parameters (pairs of cv2.CAP_PROP_* and a value).
        """
        capture = cv2.VideoCapture(target, backend, list(params))
        if not capture.isOpened():
            capture.release()
            raise SourceError(failure)
        if configure is not None:
            configure(capture)
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and fps > 0 else None
        self._capture = capture

    def read(self) -> Frame | None:
        """The next frame, or None when the capture gives none."""
        if self._capture is None:
            raise SourceError(f"{self.name} is not open")
        buffer = self._buffers.free()
        ok, image = self._capture.read(buffer) if buffer is not None else self._capture.read()
        if not ok or image is None:
            return None
        self._buffers.keep(image, buffer)
        pixels, order = opencv_pixels(image)
        frame = make_frame(pixels, self._index, order=order)
        self._index += 1
        return frame

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class OpenCVCaptureSource(OpenCVReader):
    """Frames from `cv2.VideoCapture`, passed on as B,G,R (`Frame.image` converts if asked).

    Args:
        target: a device index (0), a device path, a URL or a GStreamer pipeline
            (anything containing "!"; it should end in `appsink`).
        size: requested (width, height) for devices; ignored by streams.
        timeout: for network streams (FFmpeg): seconds to open and to wait for each frame.

    Example:
        >>> source = OpenCVCaptureSource("/dev/video0", size=(640, 480))
    """

    live = True

    def __init__(self, target: str | int, size: tuple[int, int] | None = None, timeout: float | None = None) -> None:
        super().__init__(str(target))
        self.target = target
        self.size = size
        self.timeout = timeout

    def _backend(self) -> int:
        if isinstance(self.target, str) and "!" in self.target:
            return cv2.CAP_GSTREAMER
        return cv2.CAP_ANY

    def _set_size(self, capture: cv2.VideoCapture) -> None:
        if self.size and isinstance(self.target, int | str) and not str(self.target).startswith(("rtsp:", "http")):
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])

    def open(self) -> None:
        params: tuple[int, ...] = ()
        if self.timeout is not None:
            ms = max(1, int(self.timeout * 1000))
            params = (cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms)
        self._open(self.target, self._backend(), f"cannot open camera/stream {self.name}"
                   + (f" within {self.timeout:g} s (open_timeout)" if self.timeout is not None else ""),
                   self._set_size, params=params)

    def read(self) -> Frame | None:
        frame = super().read()
        if frame is None:
            raise SourceError(f"no frame from {self.name} (unplugged or stream ended)")
        return frame
