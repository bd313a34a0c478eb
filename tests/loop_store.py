"""A small host-side sample store written with the sample log's own API (for labeling tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.samplelog.imagefile import encode_image
from edge.samplelog.store import SampleStore

LABELS = ["green", "none", "red", "yellow"]


def make_store(root: Path, n: int = 6, sessions: int = 2) -> Path:
    """n samples over `sessions` sessions; sample i is predicted LABELS[i % 4], truth LABELS[(i+1) % 4]."""
    rng = np.random.default_rng(0)
    with SampleStore(root, create=True) as store:
        for i in range(n):
            session = f"s{i % sessions}"
            meta = {
                "session_id": session, "frame_index": i, "capture_time": 1000.0 + i, "reasons": "low_confidence",
                "priority": 1, "model_version": "v0001", "label": LABELS[i % 4], "confidence": 0.5 + i / (2 * n),
                "labels": LABELS, "truth": LABELS[(i + 1) % 4],
            }
            image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            store.add(encode_image(image, meta, "png"), meta, f"{i:06d}.png")
    return root
