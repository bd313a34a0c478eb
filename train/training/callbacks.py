"""The Keras callbacks every training run uses: epoch history with a NaN guard, and the checkpoint (best or last epoch).

Top-level classes, as Keras' own callbacks are (keras/src/callbacks/early_stopping.py), so they can
be read, tested and reused apart from train.training.run.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import keras


class EpochRecorder(keras.callbacks.Callback):
    """Keeps every finished epoch's logs (`history`), and stops training at the first non-finite
    batch loss, remembering where (`nan_at` = (epoch, batch), both from 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch = 0
        self.nan_at: tuple[int, int] | None = None

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.nan_at = (self.epoch + 1, batch + 1)
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        for key, value in (logs or {}).items():
            if key != "learning_rate":
                self.history.setdefault(key, []).append(float(value))


class Checkpoint(keras.callbacks.Callback):
    """Saves the model to `path` after every epoch (keep="last") or whenever val_loss improves
    (keep="best"); written beside and renamed, so a Ctrl-C or a crash mid-save never leaves a broken
    model.keras.

    Example:
        >>> model.fit(train_ds, validation_data=val_ds, callbacks=[Checkpoint(Path("model.keras"), "last")])  # doctest: +SKIP
    """

    def __init__(self, path: Path, keep: str = "best") -> None:
        super().__init__()
        self.path = Path(path)
        self.keep = keep
        self.best = math.inf

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        value = float((logs or {}).get("val_loss", math.nan))
        if not math.isfinite(value) or (self.keep == "best" and value >= self.best):
            return  # never replace a good model with a diverged one, nor (keep="best") with a worse one
        self.best = min(self.best, value)
        partial = self.path.with_name(".saving-" + self.path.name)
        try:
            self.model.save(partial)
            os.replace(partial, self.path)
        finally:
            partial.unlink(missing_ok=True)
