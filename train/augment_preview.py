"""The augmentation preview picture: a row of originals, a row per option, a combined row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import UserError
from train.augment import AugmentConfig, augment_batch


def _pixels(batch: Any) -> np.ndarray:
    """augment_batch's float32 0..255 output as uint8 for imshow."""
    return np.round(batch.numpy()).astype(np.uint8)


def preview(images: np.ndarray, config: AugmentConfig, combined: AugmentConfig, path: Path, seed: int = 0) -> Path:
    """Write the preview PNG for uint8 images (n, h, w, 3); returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    options = config.active_options()
    if not options:
        raise UserError("no augmentation option is on: nothing to preview")
    rows = [("original", images)]
    for index, option in enumerate(options):
        value = getattr(config, option)
        shown = list(value) if isinstance(value, tuple) else value
        rows.append((f"{option}={shown}", _pixels(augment_batch(images, [seed, 100 * (index + 1)], config.only(option)))))
    rows.append(("combined: " + ", ".join(combined.active_options()), _pixels(augment_batch(images, [seed, 999], combined))))
    n = len(images)
    fig, axes = plt.subplots(len(rows), n, figsize=(1.6 * n, 1.75 * len(rows)), squeeze=False)
    for r, (title, batch) in enumerate(rows):
        for c in range(n):
            axes[r][c].imshow(batch[c])
            axes[r][c].axis("off")
        axes[r][0].set_title(title, fontsize=8, loc="left")
    fig.subplots_adjust(left=0.02, right=0.98, top=1 - 0.3 / len(rows), bottom=0.01, wspace=0.05, hspace=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
