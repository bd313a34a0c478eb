"""`edgekit train --time-budget MINUTES`: the schedule is sized to the clock, not to an epoch count.

A Keras callback, in the style of keras/src/callbacks/early_stopping.py. It times every epoch
(training and validation together), and after each one plans how many epochs fit in what is left
of the budget (at the mean time of the epochs since the first, which also traces the graph; after
the first epoch, at the first epoch's time). Each plan also keeps the epoch's validation accuracy
against the wall time (the accuracy reached at 15, 30 or 60 minutes) and the machine's 1-minute load
average, which says how much of the CPU the run had. The learning rate follows one-cycle (linear warm-up
over the first 30% of the planned steps, then cosine to ~0) or cosine over the *planned* steps, so
it ends near zero on time even when the machine slows down or speeds up: each re-plan resizes the
rest of the schedule. Training stops after the last planned epoch. The best checkpoint is the run's
usual Checkpoint (train.training.callbacks).

`plan` is what the budget allowed: it goes to the run folder (budget.json, and run.json "budget").
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import keras

WARMUP = 0.3  # one-cycle: fraction of the planned steps spent warming up
START_DIVISOR = 25.0  # one-cycle starts (and cosine never goes below peak / 1000)
FLOOR = 1e-3  # the schedules end at peak * FLOOR


def learning_rate(progress: float, peak: float, schedule: str) -> float:
    """The learning rate at `progress` (0..1) of the planned steps.

    Example:
        >>> learning_rate(0.3, 0.01, "onecycle"), round(learning_rate(1.0, 0.01, "cosine"), 6)
        (0.01, 1e-05)
    """
    progress = min(1.0, max(0.0, progress))
    if schedule == "onecycle":
        if progress < WARMUP:
            start = peak / START_DIVISOR
            return start + (peak - start) * progress / WARMUP
        progress = (progress - WARMUP) / (1 - WARMUP)
    if schedule == "constant":
        return peak
    return peak * (FLOOR + (1 - FLOOR) * 0.5 * (1 + math.cos(math.pi * progress)))


def epochs_that_fit(budget_s: float, elapsed_s: float, epochs_done: int, epoch_s: float) -> int:
    """Total epochs (done + still to run) that fit in the budget at `epoch_s` seconds each; at least
    the ones done (a budget already spent plans no more).

    Example:
        >>> epochs_that_fit(600, elapsed_s=70, epochs_done=1, epoch_s=50)
        11
    """
    remaining = max(0.0, budget_s - elapsed_s)
    return epochs_done + int(remaining // max(epoch_s, 1e-9))


class TimeBudget(keras.callbacks.Callback):
    """Sizes the learning-rate schedule and the epoch count to `minutes` of wall time.

    Args:
        minutes: the budget for fit() (training and validation epochs).
        peak_lr: the schedule's peak learning rate.
        steps_per_epoch: optimizer steps per epoch.
        schedule: "onecycle", "cosine" or "constant".
        first_guess_epochs: the plan before any epoch is timed (sizes the first epoch's warm-up).
        clock: seconds, monotonic (tests pass a fake one).
    """

    def __init__(self, minutes: float, peak_lr: float, steps_per_epoch: int, schedule: str = "onecycle",
                 first_guess_epochs: int = 15, clock: Any = time.perf_counter) -> None:
        super().__init__()
        if not minutes > 0:
            raise ValueError(f"time budget must be > 0 minutes, got {minutes}")
        self.budget_s = 60.0 * float(minutes)
        self.peak_lr = float(peak_lr)
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.schedule = schedule
        self.clock = clock
        self.planned_epochs = max(1, int(first_guess_epochs))
        self.epoch_times: list[float] = []
        self.plans: list[dict[str, Any]] = []
        self.step = 0
        self.start = 0.0
        self.epoch_start = 0.0

    def on_train_begin(self, logs: Any = None) -> None:
        self.start = self.clock()
        self.step = 0
        self._set_lr()

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch_start = self.clock()

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        self._set_lr()

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.step += 1

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        now = self.clock()
        self.epoch_times.append(now - self.epoch_start)
        done = len(self.epoch_times)
        later = self.epoch_times[1:]
        epoch_s = sum(later) / len(later) if later else self.epoch_times[0]
        self.planned_epochs = max(1, epochs_that_fit(self.budget_s, now - self.start, done, epoch_s))
        self.plans.append({"after_epoch": done, "elapsed_s": round(now - self.start, 2),
                           "epoch_s": round(epoch_s, 2), "planned_epochs": self.planned_epochs,
                           "val_accuracy": _number((logs or {}).get("val_accuracy")),
                           "load_1min": round(os.getloadavg()[0], 2)})  # a shared machine's slowdown, shown
        if done >= self.planned_epochs:
            self.model.stop_training = True

    def _set_lr(self) -> None:
        progress = self.step / (self.planned_epochs * self.steps_per_epoch)
        self.model.optimizer.learning_rate.assign(learning_rate(progress, self.peak_lr, self.schedule))

    @property
    def plan(self) -> dict[str, Any]:
        """What the budget allowed, for the run folder."""
        return {"budget_min": self.budget_s / 60, "schedule": self.schedule, "peak_learning_rate": self.peak_lr,
                "steps_per_epoch": self.steps_per_epoch,
                "first_epoch_s": round(self.epoch_times[0], 2) if self.epoch_times else None,
                "later_epoch_mean_s": (round(sum(self.epoch_times[1:]) / len(self.epoch_times[1:]), 2)
                                       if len(self.epoch_times) > 1 else None),
                "epochs_planned": self.planned_epochs, "epochs_run": len(self.epoch_times),
                "fit_s": round(sum(self.epoch_times), 2), "plans": self.plans}


def _number(value: Any) -> float | None:
    return None if value is None else round(float(value), 4)
