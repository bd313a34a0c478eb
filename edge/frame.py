"""The two things that flow through the car: a frame in, a result out."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import cv2
import numpy as np


@dataclass(frozen=True, eq=False)
class Frame:
    """One camera frame: its pixels, when it was captured, and its index.

    `frame.image` is always uint8 RGB (H, W, 3). A source whose pixels arrive B,G,R
    (OpenCV, picamera2's `RGB888`) passes them as they are with `order="bgr"`, and the
    RGB copy is made only if something asks for `image`: the runtime resizes the BGR
    frame and swaps the channels of the small model input (`edge.preprocess`), and the
    sample log encodes its JPEGs from `bgr`, so on the hot path a full frame is never
    converted at all. Both give the same pixels as converting first.

    A frame's pixels are never written once it is made, so parts may keep them without a
    copy; a source that decodes into reused buffers (edge.sources.buffers) reuses only
    those no frame, queue or view refers to any more.

    Args:
        pixels: uint8 array (H, W, 3) in `order`.
        timestamp: capture time, seconds since the epoch (`time.time()`).
        index: position in the source's stream, counting every frame it produced
            (frames dropped because a newer one arrived keep their numbers).
        monotonic: capture time on `time.monotonic()`, for latency.
        truth: ground-truth label when the source knows it (synthetic drives, class folders).
        order: "rgb" or "bgr", how `pixels` lie in memory.
        file: the image file it came from, relative to the source's folder (image folders).
        main: a larger B,G,R picture of the same moment, for people only (picamera2's main stream
            while the model reads its lores stream and the live view has a viewer); else None.

    Example:
        >>> frame = Frame(np.zeros((2, 2, 3), np.uint8), 0.0, 0, 0.0, order="bgr")
        >>> frame.image.shape
        (2, 2, 3)
    """

    pixels: np.ndarray
    timestamp: float
    index: int
    monotonic: float
    truth: str | None = None
    order: str = "rgb"
    file: str | None = None
    main: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.order not in ("rgb", "bgr"):
            raise ValueError(f"Frame order must be 'rgb' or 'bgr', got {self.order!r}")

    @cached_property
    def image(self) -> np.ndarray:
        """The pixels in RGB order (converted once, on first use, if they came as BGR)."""
        return self.pixels if self.order == "rgb" else cv2.cvtColor(self.pixels, cv2.COLOR_BGR2RGB)

    @cached_property
    def bgr(self) -> np.ndarray:
        """The pixels in B,G,R order, as OpenCV's encoders want them."""
        return self.pixels if self.order == "bgr" else cv2.cvtColor(self.pixels, cv2.COLOR_RGB2BGR)

    def renumbered(self, index: int) -> Frame:
        """The same frame under another index (a reopened live source continues its count)."""
        return replace(self, index=index)


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
