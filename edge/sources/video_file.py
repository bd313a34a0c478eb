"""A video file, replayed frame by frame (every frame; the runtime may pace it to real time)."""

from __future__ import annotations

from pathlib import Path

import cv2

from edge.sources.opencv_capture import OpenCVReader


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
        super().__init__(self.path.name)

    def _resume(self, capture: cv2.VideoCapture) -> None:
        if self._index:
            capture.set(cv2.CAP_PROP_POS_FRAMES, self._index)

    def open(self) -> None:
        self._open(str(self.path), cv2.CAP_ANY, f"cannot decode video {self.path}", self._resume,
                   params=(cv2.CAP_PROP_N_THREADS, self.decoder_threads))
