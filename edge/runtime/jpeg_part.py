"""A plain part: write every Nth frame as a JPEG, in its own thread."""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.errors import UserError
from edge.frame import Frame, Result
from edge.part_contract import yield_cpu_to_inference


class JpegWriter:
    """Writes every `every`-th frame to `folder/NNNNNNNN_label.jpg` off the inference thread.

    A full queue drops the frame and counts it (`dropped`); nothing blocks inference.

    Example:
        >>> part = JpegWriter(Path("frames"), every=10)
    """

    name = "jpeg"

    def __init__(self, folder: Path, every: int = 10, quality: int = 90, queue_size: int = 16) -> None:
        if every < 1:
            raise UserError(f"jpeg part: every must be at least 1, got {every}")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.every = every
        self.quality = quality
        self.written = 0
        self.dropped = 0
        self.errors = 0
        self._seen = 0
        self._queue: queue.Queue[tuple[np.ndarray, str] | None] = queue.Queue(queue_size)
        self._thread = threading.Thread(target=self._write_loop, name="jpeg-writer", daemon=True)
        self._thread.start()

    @classmethod
    def from_options(cls, options: dict[str, Any], context: Any = None) -> JpegWriter:
        try:
            return cls(Path(options.pop("folder")), **{k: int(v) for k, v in options.items()})
        except KeyError as error:
            raise UserError("jpeg part needs a folder: --part jpeg:folder=PATH[,every=10]") from error
        except (TypeError, ValueError) as error:
            raise UserError(f"bad jpeg part option: {error} (known: folder, every, quality, queue_size)") from error

    def on_result(self, frame: Frame, model_input: np.ndarray, result: Result) -> None:
        self._seen += 1
        if (self._seen - 1) % self.every:
            return
        try:
            self._queue.put_nowait((frame, f"{frame.index:08d}_{result.label}.jpg"))
        except queue.Full:
            self.dropped += 1

    def _write_loop(self) -> None:
        yield_cpu_to_inference()
        while (item := self._queue.get()) is not None:
            frame, name = item
            if cv2.imwrite(str(self.folder / name), frame.bgr, [cv2.IMWRITE_JPEG_QUALITY, self.quality]):
                self.written += 1
            else:
                self.errors += 1

    def stats(self) -> dict[str, Any]:
        return {"written": self.written, "dropped": self.dropped, "errors": self.errors}

    def shutdown(self) -> None:
        self._queue.put(None)
        self._thread.join()
