"""The capture thread: read the next frame while the interpreter works on this one.

Preprocessing happens in the inference thread, on the frame it takes: a frame dropped
for a newer one is never resized, and a frame always meets the spec of the model that
runs it, even right after a hot swap.

Live sources (and file sources paced with --realtime) keep only the newest
frame: a frame not taken before the next one arrives is dropped and counted.
Other file sources hand over every frame through a short queue (replay).
"""

from __future__ import annotations

import threading
import time
from collections import deque

from edge.frame import Frame
from edge.sources import ResilientSource

END = object()  # get() returns this once a finite source is exhausted and drained


class CaptureThread:
    """Runs `source.read()` in its own thread.

    Args:
        source: the (reopening) source.
        latest_only: keep only the newest frame (cameras, --realtime).
        pace: release frames at the source's frame rate (file sources with --realtime;
            30 fps when the file does not say).
        depth: queue length when every frame is kept.

    Example:
        >>> capture = CaptureThread(source, latest_only=True)
        >>> capture.start(); frame = capture.get(timeout=1.0)
    """

    def __init__(self, source: ResilientSource, latest_only: bool, pace: bool = False, depth: int = 2) -> None:
        self.source = source
        self.latest_only = latest_only
        self.pace = pace
        self.depth = depth
        self.skipped = 0
        self.captured = 0
        self._items: deque[Frame] = deque()
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
                self._put(frame)
                self.captured += 1
        except BaseException as error:  # handed to the inference thread, which raises it
            with self._cond:
                self._error = error
        finally:
            self.source.close()
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _put(self, frame: Frame) -> None:
        with self._cond:
            if self.latest_only:
                self.skipped += len(self._items)
                self._items.clear()
            else:
                while len(self._items) >= self.depth and not self._stop.is_set():
                    self._cond.wait(0.1)
            self._items.append(frame)
            self._cond.notify_all()

    def get(self, timeout: float) -> Frame | object | None:
        """The next frame; END when the source is exhausted; None on timeout; re-raises the source's error."""
        with self._cond:
            self._cond.wait_for(lambda: self._items or self._ended, timeout)
            if self._items:
                frame = self._items.popleft()
                self._cond.notify_all()
                return frame
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
