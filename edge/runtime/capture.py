"""The capture thread: read and preprocess the next frame while the interpreter works on this one.

Live sources (and file sources paced with --realtime) keep only the newest
frame: a frame not taken before the next one arrives is dropped and counted.
Other file sources hand over every frame through a short queue (replay).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edge.frame import Frame
from edge.preprocess import PreprocessSpec, preprocess
from edge.sources import ResilientSource


@dataclass(frozen=True)
class Captured:
    """A frame, its model input, and the spec that made it (re-done if the model changed meanwhile)."""

    frame: Frame
    model_input: np.ndarray
    spec: PreprocessSpec
    preprocess_ms: float


END = object()  # get() returns this once a finite source is exhausted and drained


class CaptureThread:
    """Runs `source.read()` + `preprocess()` in its own thread.

    Args:
        source: the (reopening) source.
        spec: returns the preprocessing spec of the model currently running.
        latest_only: keep only the newest frame (cameras, --realtime).
        pace: release frames at the source's frame rate (file sources with --realtime;
            30 fps when the file does not say).
        depth: queue length when every frame is kept.

    Example:
        >>> capture = CaptureThread(source, lambda: spec, latest_only=True)
        >>> capture.start(); item = capture.get(timeout=1.0)
    """

    def __init__(self, source: ResilientSource, spec: Callable[[], PreprocessSpec], latest_only: bool,
                 pace: bool = False, depth: int = 2) -> None:
        self.source = source
        self.spec = spec
        self.latest_only = latest_only
        self.pace = pace
        self.depth = depth
        self.skipped = 0
        self.captured = 0
        self._items: deque[Captured] = deque()
        self._cond = threading.Condition()
        self._ended = False
        self._error: BaseException | None = None
        self._stop = source.stop
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            started = time.monotonic()
            while not self._stop.is_set():
                if self.pace and self.captured:
                    due = started + self.captured / (self.source.fps or 30.0)
                    self._stop.wait(max(0.0, due - time.monotonic()))
                frame = self.source.read()
                if frame is None:
                    break
                if self.pace and not self.captured:
                    started = time.monotonic()
                spec = self.spec()
                t0 = time.perf_counter()
                model_input = preprocess(frame.image, spec)
                self._put(Captured(frame, model_input, spec, (time.perf_counter() - t0) * 1000))
                self.captured += 1
        except BaseException as error:  # handed to the inference thread, which raises it
            with self._cond:
                self._error = error
        finally:
            self.source.close()
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _put(self, item: Captured) -> None:
        with self._cond:
            if self.latest_only:
                self.skipped += len(self._items)
                self._items.clear()
            else:
                while len(self._items) >= self.depth and not self._stop.is_set():
                    self._cond.wait(0.1)
            self._items.append(item)
            self._cond.notify_all()

    def get(self, timeout: float) -> Captured | object | None:
        """The next item; END when the source is exhausted; None on timeout; re-raises the source's error."""
        with self._cond:
            self._cond.wait_for(lambda: self._items or self._ended, timeout)
            if self._items:
                item = self._items.popleft()
                self._cond.notify_all()
                return item
            if self._error is not None:
                raise self._error
            return END if self._ended else None

    def drop_pending(self) -> int:
        """Forget frames not yet taken (when stopping); how many were dropped."""
        with self._cond:
            count = len(self._items)
            self._items.clear()
            self._cond.notify_all()
        return count

    def join(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout)
