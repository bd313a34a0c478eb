"""Reopen a failing source with backoff; give up after N consecutive failures."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from edge.frame import Frame
from edge.sources.base import Source, SourceError, SourceGaveUp

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Wait `initial` s after a failure, doubling up to `maximum`; give up after `max_failures` in a row."""

    max_failures: int = 5
    initial: float = 0.5
    maximum: float = 10.0

    def delay(self, failures: int) -> float:
        return min(self.maximum, self.initial * 2 ** max(0, failures - 1))


class ResilientSource:
    """A source that reopens itself on `SourceError`.

    `read()` returns frames (indices keep counting across reopens of live
    sources), None at the end of a finite stream, and raises `SourceGaveUp`
    after `backoff.max_failures` consecutive failures. A live stream that ends
    counts as a failure (a camera does not end).

    Example:
        >>> source = ResilientSource(OpenCVCaptureSource(0), Backoff(max_failures=5))
    """

    def __init__(self, source: Source, backoff: Backoff = Backoff(), stop: threading.Event | None = None) -> None:
        self.source = source
        self.backoff = backoff
        self.stop = stop or threading.Event()
        self.failures = 0
        self.reopens = 0
        self._opened = False
        self._index_offset = 0
        self._last_index = -1

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def live(self) -> bool:
        return self.source.live

    @property
    def fps(self) -> float | None:
        return self.source.fps

    def read(self) -> Frame | None:
        while not self.stop.is_set():
            try:
                if not self._opened:
                    self.source.open()
                    self._opened = True
                    if self.source.live:
                        self._index_offset = self._last_index + 1
                frame = self.source.read()
                if frame is None and self.source.live:
                    raise SourceError(f"{self.source.name} ended")
            except SourceError as error:
                self._fail(error)
                continue
            self.failures = 0
            if frame is not None and self._index_offset:
                frame = frame.renumbered(frame.index + self._index_offset)
            if frame is not None:
                self._last_index = frame.index
            return frame
        return None

    def _fail(self, error: SourceError) -> None:
        self.failures += 1
        self.close()
        if self.failures >= self.backoff.max_failures:
            raise SourceGaveUp(
                f"source {self.source.name} failed {self.failures} times in a row (last: {error}); "
                "check the camera/stream and restart"
            )
        delay = self.backoff.delay(self.failures)
        log.warning("source %s failed (%s); reopening in %.1f s (%d/%d)", self.source.name, error,
                    delay, self.failures, self.backoff.max_failures)
        self.reopens += 1
        self.stop.wait(delay)

    def close(self) -> None:
        if self._opened:
            self._opened = False
            try:
                self.source.close()
            except Exception as error:  # closing a broken device must not hide the original error
                log.debug("closing %s failed: %s", self.source.name, error)
