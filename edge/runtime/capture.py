"""The capture thread: read the next frame while the interpreter works on this one.

Live sources (and file sources paced with --realtime) keep only the newest
frame: a frame not taken before the next one arrives is dropped and counted,
and is never preprocessed. Other file sources hand over every frame through a
short queue (replay); while that queue is full, the capture thread is free and
preprocesses the queued frames itself, so decoding and resizing share the
cores with inference instead of waiting for it.

The inference thread preprocesses whatever is not done yet (or was done for
another spec, just before a hot swap), so a frame always meets the spec of
the model that runs it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edge.frame import Frame
from edge.preprocess import PreprocessSpec, preprocess_frame
from edge.sources import ResilientSource

END = object()  # get() returns this once a finite source is exhausted and drained


@dataclass
class Captured:
    """A frame and, if the capture thread got to it first, its model input and the spec that made it."""

    frame: Frame
    model_input: np.ndarray | None = None
    spec: PreprocessSpec | None = None
    busy: bool = False  # the capture thread is preprocessing it right now

    def model_input_for(self, spec: PreprocessSpec) -> np.ndarray:
        """The model input for `spec`: the one made ahead if it fits, else made now."""
        if self.model_input is not None and self.spec == spec:
            return self.model_input
        return preprocess_frame(self.frame, spec)


class CaptureThread:
    """Runs `source.read()` in its own thread.

    Args:
        source: the (reopening) source.
        latest_only: keep only the newest frame (cameras, --realtime).
        spec: returns the spec of the model running now; when given, the capture thread
            preprocesses queued frames while the replay queue is full.
        pace: release frames at the source's frame rate (file sources with --realtime;
            30 fps when the file does not say).
        depth: queue length when every frame is kept.

    Example:
        >>> capture = CaptureThread(source, latest_only=True)
        >>> capture.start(); item = capture.get(timeout=1.0)
    """

    def __init__(self, source: ResilientSource, latest_only: bool,
                 spec: Callable[[], PreprocessSpec] | None = None, pace: bool = False, depth: int = 4) -> None:
        self.source = source
        self.latest_only = latest_only
        self.spec = spec
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
                self._put(Captured(frame))
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
                    if not self._prepare_one():
                        self._cond.wait(0.1)
            self._items.append(item)
            self._cond.notify_all()

    def _prepare_one(self) -> bool:
        """Preprocess the newest queued frame not done yet (lock held on entry and exit)."""
        if self.spec is None:
            return False
        item = next((i for i in reversed(self._items) if i.model_input is None and not i.busy), None)
        if item is None:
            return False
        item.busy = True
        spec = self.spec()
        self._cond.release()
        try:
            model_input = preprocess_frame(item.frame, spec)
        finally:
            self._cond.acquire()
        item.model_input, item.spec, item.busy = model_input, spec, False
        return True

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
