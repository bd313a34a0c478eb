"""A generated drive (`edge.synthetic.drive`): a camera without a camera, for demos and tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from edge.frame import Frame
from edge.sources.base import make_frame


class SyntheticSource:
    """Frames of `edge.synthetic.drive`, with the truth label on each frame.

    Args:
        size: (width, height) of the frames.
        seed: the drive's seed (same seed, same drive).
        fps: the drive's frame rate.
        frames: stop after this many frames (None: endless).
        options: more keyword arguments for `drive` (e.g. conditions).

    Example:
        >>> source = SyntheticSource(size=(640, 480), seed=1, frames=300)
    """

    live = False

    def __init__(self, size: tuple[int, int] = (640, 480), seed: int = 0, fps: float = 30.0,
                 frames: int | None = None, **options: Any) -> None:
        self.size = size
        self.seed = seed
        self.fps: float | None = fps
        self.frames = frames
        self.options = options
        self.name = f"synthetic(seed={seed})"
        self._stream: Iterator | None = None
        self._index = 0

    def open(self) -> None:
        from edge.synthetic import drive

        width, height = self.size
        self._stream = drive(frame_size=(height, width), seed=self.seed, fps=int(self.fps or 30),
                             **self.options)
        for _ in range(self._index):  # resume after a reopen
            next(self._stream)

    def read(self) -> Frame | None:
        if self._stream is None or (self.frames is not None and self._index >= self.frames):
            return None
        try:
            image, truth = next(self._stream)
        except StopIteration:
            return None
        frame = make_frame(image, self._index, truth=truth)
        self._index += 1
        return frame

    def close(self) -> None:
        self._stream = None
