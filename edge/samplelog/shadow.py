"""A shadow model: a candidate that sees the same inputs as the driving model, in its own thread.

It never changes or delays the primary result: `submit` only puts the work in
a one-slot queue (skipping, and counting, when the shadow is still busy), and
the verdict comes back through a callback on the shadow's thread.

Example:
    >>> shadow = ShadowRunner(model.predict, labels, "v0002", on_verdict=print)
    >>> shadow.submit(frame, model_input, result, reasons=[])
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edge.frame import Frame, Result

log = logging.getLogger(__name__)

Verdict = Callable[[Frame, Result, list[str], dict[str, Any]], None]


class ShadowRunner:
    """Runs `predict` (model input -> probabilities) on submitted frames in a daemon thread.

    Args:
        predict: the shadow model's prediction function.
        labels: its class names (compared by name with the primary's label).
        version: its model version, recorded in each row.
        on_verdict: called on the shadow thread with (frame, result, reasons, shadow_info);
            "disagreement" is appended to reasons when the top-1 labels differ.
        prepare: optional frame -> shadow input when its preprocessing differs from the primary's.
    """

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], labels: list[str], version: str,
                 on_verdict: Verdict, prepare: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.predict = predict
        self.labels = list(labels)
        self.version = version
        self.on_verdict = on_verdict
        self.prepare = prepare
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self.frames = 0
        self.skipped = 0
        self.disagreements = 0
        self.errors = 0
        self._busy_s = 0.0
        self._thread = threading.Thread(target=self._loop, name="edgekit-shadow", daemon=True)
        self._thread.start()

    def submit(self, frame: Frame, model_input: np.ndarray, result: Result, reasons: list[str]) -> bool:
        """Hand one frame to the shadow; False (and counted) when it is still busy."""
        try:
            self._queue.put_nowait((frame, model_input, result, reasons))
            return True
        except queue.Full:
            self.skipped += 1
            return False

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            frame, model_input, result, reasons = item
            start = time.perf_counter()
            try:
                x = self.prepare(frame.image) if self.prepare else model_input
                probabilities = np.asarray(self.predict(x), dtype=np.float32).reshape(-1)
            except Exception as error:  # a bad candidate must not stop the car
                self.errors += 1
                if self.errors == 1:
                    log.warning("shadow model failed (%s); it keeps being tried, the primary is unaffected", error)
                continue
            finally:
                self._busy_s += time.perf_counter() - start
            self.frames += 1
            top = int(np.argmax(probabilities))
            shadow_label = self.labels[top] if top < len(self.labels) else str(top)
            info = {"shadow_version": self.version, "shadow_label": shadow_label,
                    "shadow_confidence": round(float(probabilities[top]), 6)}
            if shadow_label != result.label:
                self.disagreements += 1
                reasons = [*reasons, "disagreement"]
            self.on_verdict(frame, result, reasons, info)

    def stats(self) -> dict[str, Any]:
        mean_ms = 1000 * self._busy_s / self.frames if self.frames else 0.0
        return {"shadow_frames": self.frames, "shadow_skipped": self.skipped,
                "shadow_ms": round(mean_ms, 2), "disagree": self.disagreements}

    def shutdown(self, timeout: float = 5.0) -> None:
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)
