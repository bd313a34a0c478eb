"""Counters and percentiles for the periodic stats line."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import numpy as np


def peak_rss_mb() -> float | None:
    """This process's peak resident memory in MB (Linux VmHWM; elsewhere ru_maxrss).

    Not `wait4`'s ru_maxrss seen from a parent: Linux carries the parent's resident size
    across fork + exec into it, so a child started from a 140 MB Python process would report
    at least 140 MB whatever it used.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _percentile(values: deque[float], q: float) -> float | None:
    return round(float(np.percentile(np.fromiter(values, float), q)), 3) if values else None


class RuntimeStats:
    """Frames/s, capture->result latency and inference time, over a window and in total.

    Example:
        >>> stats = RuntimeStats()
        >>> stats.record(latency_ms=12.0, inference_ms=3.0)
        >>> stats.snapshot(skipped=0, model_version="3")["frames"]
        1
    """

    def __init__(self, window: int = 1000) -> None:
        self.started = time.monotonic()
        self.frames = 0
        self.latency_ms: deque[float] = deque(maxlen=window)
        self.inference_ms: deque[float] = deque(maxlen=window)
        self._window_start = self.started
        self._window_frames = 0
        self.first_result_s: float | None = None
        self._loop_start = self.started

    def start(self) -> None:
        """The loop begins now: fps counts from here (first_result_s still counts from construction)."""
        self._loop_start = self._window_start = time.monotonic()

    def record(self, latency_ms: float, inference_ms: float) -> None:
        if self.first_result_s is None:
            self.first_result_s = time.monotonic() - self.started
        self.frames += 1
        self._window_frames += 1
        self.latency_ms.append(latency_ms)
        self.inference_ms.append(inference_ms)

    def snapshot(self, reset_window: bool = True, **extra: Any) -> dict[str, Any]:
        """The figures since the last snapshot (fps, percentiles) plus totals and `extra` counters."""
        now = time.monotonic()
        elapsed = max(now - self._window_start, 1e-9)
        figures = {
            "fps": round(self._window_frames / elapsed, 2),
            "latency_p50_ms": _percentile(self.latency_ms, 50),
            "latency_p99_ms": _percentile(self.latency_ms, 99),
            "inference_p50_ms": _percentile(self.inference_ms, 50),
            "frames": self.frames,
            "uptime_s": round(now - self._loop_start, 3),
            **extra,
        }
        if reset_window:
            self._window_start, self._window_frames = now, 0
            self.latency_ms.clear()
            self.inference_ms.clear()
        return figures


def format_stats(figures: dict[str, Any]) -> str:
    """`stats fps=29.9 latency_p50_ms=11.2 ...`: one line, readable and easy to parse."""
    return "stats " + " ".join(f"{key}={value}" for key, value in figures.items())
