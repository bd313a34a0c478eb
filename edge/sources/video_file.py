"""A video file, replayed frame by frame (every frame; the runtime may pace it to real time)."""

from __future__ import annotations

from pathlib import Path

import cv2

from edge.errors import UserError
from edge.frame import Frame
from edge.sources.base import SourceError
from edge.sources.opencv_capture import OpenCVReader


class VideoTruncated(UserError):
    """A video file that ends before the frame count its header announces (a copy cut short)."""


class VideoFileSource(OpenCVReader):
    """Frames of a video file in order; a reopen after an error resumes where it stopped.

    Args:
        path: the video file.
        decoder_threads: FFmpeg's decoding threads. One by default: the runtime already
            decodes in its own thread while the interpreter works, so more decoder threads
            only fight inference for the cores (on 2 cores they cost ~20% more CPU per frame
            for the same decoding speed).

    Example:
        >>> source = VideoFileSource(Path("drive.mp4"))
    """

    live = False

    def __init__(self, path: Path, decoder_threads: int = 1) -> None:
        self.path = Path(path)
        self.decoder_threads = decoder_threads
        self.frame_count: int | None = None  # from the container's header, when it has one
        super().__init__(self.path.name)

    def _resume(self, capture: cv2.VideoCapture) -> None:
        if self._index:
            capture.set(cv2.CAP_PROP_POS_FRAMES, self._index)

    def _thread_params(self) -> tuple[int, ...]:
        # OpenCV 4.6 (Raspberry Pi OS Bookworm's python3-opencv) has no CAP_PROP_N_THREADS
        # (seen on the emulated car, tests/car): there FFmpeg keeps its own thread count.
        prop = getattr(cv2, "CAP_PROP_N_THREADS", None)
        return () if prop is None else (prop, self.decoder_threads)

    def open(self) -> None:
        try:
            self._open(str(self.path), cv2.CAP_ANY, f"cannot decode video {self.path}", self._resume,
                       params=self._thread_params())
        except SourceError as error:
            if not self.path.is_file():
                raise  # gone for now (a remount): the runtime retries
            # a file that does not open never will: say so now instead of retrying with back-off
            raise UserError(f"cannot decode video {self.path}: not a video, or truncated (an .mp4 cut "
                            f"before its index); copy it again or convert it (ffmpeg -i IN -c copy OUT.mkv)"
                            ) from error
        count = self._capture.get(cv2.CAP_PROP_FRAME_COUNT) if self._capture is not None else 0
        self.frame_count = int(count) if count and count > 0 else None

    def read(self) -> Frame | None:
        """The next frame; None at the end; VideoTruncated when it ends well before its announced length."""
        frame = super().read()
        if frame is None and self.frame_count and self._index < self.frame_count - max(2, self.frame_count // 50):
            raise VideoTruncated(f"video {self.path} ended after {self._index} of the {self.frame_count} frames "
                                 f"its header announces: the file is truncated (its frames were all processed); "
                                 f"copy it again")
        return frame
