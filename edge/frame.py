"""The two things that flow through the car: a frame in, a result out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One camera frame: uint8 RGB (H, W, 3), when it was captured, and its index.

    Args:
        image: uint8 array (H, W, 3), RGB order (sources convert once, at capture).
        timestamp: capture time, seconds since the epoch (`time.time()`).
        index: position in the source's stream, counting every frame it produced
            (frames dropped because a newer one arrived keep their numbers).
        monotonic: capture time on `time.monotonic()`, for latency.
        truth: ground-truth label when the source knows it (synthetic drives).
    """

    image: np.ndarray
    timestamp: float
    index: int
    monotonic: float
    truth: str | None = None


@dataclass(frozen=True)
class Result:
    """What the model said about one frame."""

    frame_index: int
    capture_time: float
    label: str
    confidence: float
    probabilities: np.ndarray
    top_k: list[tuple[str, float]]
    latency_ms: float
    inference_ms: float
    model_version: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "frame": self.frame_index,
            "capture_time": round(self.capture_time, 6),
            "label": self.label,
            "confidence": round(float(self.confidence), 6),
            "top_k": [[name, round(float(p), 6)] for name, p in self.top_k],
            "latency_ms": round(self.latency_ms, 3),
            "inference_ms": round(self.inference_ms, 3),
            "model_version": self.model_version,
            **self.extra,
        }
