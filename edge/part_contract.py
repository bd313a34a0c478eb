"""The tiny contract anything that consumes results on the car follows.

A part is told about every (frame, model input, result) and is shut down once.
`on_result` runs on the inference thread, so it must return at once: a part
with slow work (disk, a second model) hands it to its own thread and a
bounded queue, and drops (and counts) when that queue is full.

Example:
    class PrintLabels:
        def on_result(self, frame, model_input, result): print(result.label)
        def stats(self): return {}
        def shutdown(self): pass
"""

from __future__ import annotations

import os
import threading
from typing import Any, Protocol

import numpy as np

from edge.frame import Frame, Result


class Part(Protocol):
    def on_result(self, frame: Frame, model_input: np.ndarray, result: Result) -> None:
        """Called after each inference, on the inference thread: never block."""

    def stats(self) -> dict[str, Any]:
        """Counters merged into the runtime's periodic stats line."""

    def shutdown(self) -> None:
        """Flush and stop; called once, also on SIGINT/SIGTERM and errors."""


def yield_cpu_to_inference(niceness: int = 10) -> None:
    """Lower the calling thread's CPU priority by `niceness` (Linux; elsewhere nothing happens).

    Call it first thing in a part's own thread: disk writing and encoding can wait, the
    camera -> inference path cannot, and on a 2- or 4-core car they share the cores. The step
    is relative to the thread's own level, so a car started under `nice` keeps the gap.
    """
    try:
        thread = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + niceness))
    except (AttributeError, OSError):  # not Linux, or not allowed: run at normal priority
        pass
