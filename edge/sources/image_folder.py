"""An image folder, replayed in sorted path order: flat, or one subfolder per class.

`DIR/<class>/[sub/]*.jpg` (the layout `edgekit dataset build` reads, optionally under
train/val/test folders) gives each frame its class as truth, as the synthetic source does,
so the sample log and the JSON lines carry it; every frame also carries its file's path
relative to DIR (`file` in the JSON line).

A folder is not a camera: a file that cannot be read (damaged, vanished, unreadable) is
skipped with one warning and counted (`source_skipped` in the stats), never retried with
back-off, and the replay goes on with the next file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2

from edge.errors import UserError
from edge.frame import Frame
from edge.preprocess import opencv_pixels
from edge.sources.base import make_frame

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
SUBSET_FOLDERS = {"train", "training", "val", "valid", "validation", "test", "testing"}

log = logging.getLogger(__name__)


def _display(relative: str) -> str:
    """A path as text that can be written anywhere (bytes that are not UTF-8 become \\xNN)."""
    return relative.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def class_of(parts: tuple[str, ...]) -> str | None:
    """The class folder of a relative path: its first folder, below a train/val/test folder if any."""
    folders = parts[:-1]
    if len(folders) >= 2 and folders[0].lower() in SUBSET_FOLDERS:
        return _display(folders[1])
    return _display(folders[0]) if folders else None


def list_images(folder: Path) -> list[Path]:
    """Image files under `folder` (recursively, hidden folders skipped), sorted by relative path."""
    found = []
    for directory, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                found.append(Path(directory) / name)
    return sorted(found, key=lambda p: p.relative_to(folder).parts)


class ImageFolderSource:
    """Every image under a folder, sorted by relative path.

    Attributes:
        skipped: files passed over because they could not be read (see `counters`).

    Example:
        >>> source = ImageFolderSource(Path("photos/"), fps=30)   # photos/red/001.jpg -> truth "red"
    """

    live = False

    def __init__(self, folder: Path, fps: float = 30.0) -> None:
        self.folder = Path(folder)
        self.name = self.folder.name or str(self.folder)
        self.fps: float | None = fps
        self.files = list_images(self.folder)
        if not self.files:
            raise UserError(
                f"no images in {self.folder} or its subfolders: expected files ending in "
                f"{', '.join(sorted(IMAGE_SUFFIXES))}"
            )
        self.skipped = 0
        self._next = 0
        self._frames = 0

    def open(self) -> None:
        pass

    def read(self) -> Frame | None:
        """The next readable image; unreadable ones are skipped and counted. None at the end."""
        while self._next < len(self.files):
            path = self.files[self._next]
            self._next += 1
            try:
                image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            except (OSError, cv2.error):
                image = None
            relative = path.relative_to(self.folder)
            if image is None or image.size == 0:
                self.skipped += 1
                log.warning("skipped %s: cannot read it as an image (damaged, vanished or unreadable); "
                            "%d skipped so far", _display(relative.as_posix()), self.skipped)
                continue
            pixels, order = opencv_pixels(image)
            frame = make_frame(pixels, self._frames, truth=class_of(relative.parts), order=order,
                               file=_display(relative.as_posix()))
            self._frames += 1
            return frame
        return None

    def counters(self) -> dict[str, int]:
        """Figures for the stats line."""
        return {"source_skipped": self.skipped}

    def close(self) -> None:
        pass
