"""An image folder, replayed in sorted file-name order."""

from __future__ import annotations

from pathlib import Path

import cv2

from edge.errors import UserError
from edge.frame import Frame
from edge.preprocess import opencv_pixels
from edge.sources.base import SourceError, make_frame

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


class ImageFolderSource:
    """Every image of a folder (not recursive), sorted by name.

    An unreadable file raises `SourceError` once and is then passed over, so a
    single bad file costs one failure, not the run.

    Example:
        >>> source = ImageFolderSource(Path("frames/"), fps=30)
    """

    live = False

    def __init__(self, folder: Path, fps: float = 30.0) -> None:
        self.folder = Path(folder)
        self.name = self.folder.name or str(self.folder)
        self.fps: float | None = fps
        self.files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise UserError(
                f"no images in {self.folder}: expected files ending in {', '.join(sorted(IMAGE_SUFFIXES))}"
            )
        self._next = 0

    def open(self) -> None:
        pass

    def read(self) -> Frame | None:
        if self._next >= len(self.files):
            return None
        path = self.files[self._next]
        index = self._next
        self._next += 1
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise SourceError(f"cannot read image {path}")
        pixels, order = opencv_pixels(image)
        return make_frame(pixels, index, order=order)

    def close(self) -> None:
        pass
