"""--time-budget (train.training.time_budget): the plan follows the measured epoch time, training stops
within the budget and the learning rate ends near zero on time. A fake clock makes the epoch times
exact, so nothing here depends on how fast this machine is."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from edge.errors import UserError
from tests.test_train_training import TINY_SPEC, tiny_dataset
from train.training import TrainConfig, train
from train.training.time_budget import TimeBudget, epochs_that_fit, learning_rate


class FakeClock:
    """Seconds that advance only when an epoch ends: epoch 1 takes `first`, later ones `later`."""

    def __init__(self, first: float, later: float) -> None:
        self.now, self.first, self.later, self.epochs = 0.0, first, later, 0

    def __call__(self) -> float:
        return self.now


class Tick(keras.callbacks.Callback):
    """Placed before TimeBudget: moves the fake clock on by the epoch's duration."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def on_epoch_end(self, epoch, logs=None):
        self.clock.now += self.clock.first if self.clock.epochs == 0 else self.clock.later
        self.clock.epochs += 1


class LearningRates(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.rates: list[float] = []

    def on_train_batch_end(self, batch, logs=None):
        self.rates.append(float(self.model.optimizer.learning_rate.numpy()))


def _fit_with_budget(minutes: float, first: float, later: float, schedule: str = "onecycle"):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).random((64, 4)).astype("float32")
    y = keras.utils.to_categorical(np.arange(64) % 2, 2)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.01), "categorical_crossentropy")
    clock = FakeClock(first, later)
    budget = TimeBudget(minutes, peak_lr=0.01, steps_per_epoch=4, schedule=schedule, first_guess_epochs=3,
                        clock=clock)
    rates = LearningRates()
    history = model.fit(x, y, batch_size=16, epochs=100, verbose=0, callbacks=[Tick(clock), budget, rates])
    return budget, rates.rates, len(history.history["loss"]), clock


def test_plan_follows_the_measured_epoch_time_and_stops_within_budget():
    # 60 s budget; epoch 1 (tracing) 25 s, then 10 s each:
    # after 1: 35 s left / 25 s -> 2 planned; after 2: 25 s left / 10 s -> 4; after 3 and 4: still 4
    budget, rates, epochs, clock = _fit_with_budget(1.0, first=25, later=10)
    assert [p["planned_epochs"] for p in budget.plans] == [2, 4, 4, 4]
    assert [p["epoch_s"] for p in budget.plans] == [25, 10, 10, 10]
    assert epochs == budget.plan["epochs_run"] == budget.plan["epochs_planned"] == 4
    assert clock.now <= 60
    # a slower machine plans fewer epochs from the same budget
    slow, _, slow_epochs, slow_clock = _fit_with_budget(1.0, first=25, later=20)
    assert slow_epochs == 2 and slow_clock.now <= 60 and slow.plan["later_epoch_mean_s"] == 20


def test_learning_rate_warms_up_and_ends_near_zero_on_time():
    _, rates, epochs, _ = _fit_with_budget(1.0, first=25, later=10)
    assert len(rates) == epochs * 4
    peak = max(rates)
    assert rates.index(peak) < len(rates) // 2 and peak == pytest.approx(0.01, rel=0.2)
    assert rates[0] < 0.01 / 5 and rates[-1] < 0.01 * 0.05
    _, cosine, _, _ = _fit_with_budget(1.0, first=25, later=10, schedule="cosine")
    assert cosine[0] == pytest.approx(0.01) and cosine[-1] < 0.01 * 0.05


def test_schedule_and_fit_arithmetic():
    assert learning_rate(0.0, 1.0, "onecycle") == pytest.approx(1 / 25)
    assert learning_rate(0.3, 1.0, "onecycle") == pytest.approx(1.0)
    assert learning_rate(1.0, 1.0, "onecycle") == pytest.approx(1e-3)
    assert learning_rate(0.5, 1.0, "constant") == 1.0
    assert epochs_that_fit(600, elapsed_s=70, epochs_done=1, epoch_s=50) == 11
    assert epochs_that_fit(600, elapsed_s=700, epochs_done=5, epoch_s=50) == 5  # over budget: no more


def test_train_with_a_budget_records_what_it_allowed(tmp_path):
    tiny_dataset().save(tmp_path / "tiny.npz")
    (tmp_path / "tiny.json").write_text(json.dumps(TINY_SPEC))
    result = train(TrainConfig(dataset=str(tmp_path / "tiny.npz"), model=str(tmp_path / "tiny.json"),
                               out=str(tmp_path / "run"), batch_size=16, epochs=3, lr_schedule="onecycle",
                               time_budget=0.05, verbose=0))
    plan = json.loads((tmp_path / "run" / "budget.json").read_text())
    assert json.loads((tmp_path / "run" / "run.json").read_text())["budget"] == plan
    assert plan["budget_min"] == 0.05 and plan["steps_per_epoch"] == 5 and plan["schedule"] == "onecycle"
    assert plan["epochs_run"] == len(result.history["loss"]) == plan["plans"][-1]["planned_epochs"] >= 1
    assert plan["first_epoch_s"] == plan["plans"][0]["epoch_s"] > 0
    assert result.status == "completed" and (tmp_path / "run" / "model.keras").is_file()
    for step in plan["plans"]:  # each plan is what fitted in the budget at the measured time
        assert step["val_accuracy"] is not None and step["planned_epochs"] >= step["after_epoch"]


def test_budget_must_be_positive():
    with pytest.raises(UserError, match="time-budget"):
        TrainConfig(dataset="x", time_budget=0)
