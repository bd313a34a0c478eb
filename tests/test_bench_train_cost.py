"""make bench-train's issue-17 figures on tiny data: the budget run's evaluation (float, int8 on two
interpreters, accuracy by wall time), the pipeline/compute split, int8 latency against a baseline,
and the report with its accuracy-vs-MACs picture."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from bench.train_cost import at_minutes, evaluate_budget_run, int8_latency, time_split
from train.data import Dataset
from train.training import TrainConfig, train


def _cifar_like(n: int = 160) -> Dataset:
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 10
    images = rng.integers(0, 60, (n, 32, 32, 3)).astype(np.uint8)
    for index, label in enumerate(labels):  # a class is a bright stripe at its own rows
        images[index, 3 * label : 3 * label + 3] += 180
    subsets = np.where(np.arange(n) < n * 3 // 4, "train", "test")
    return Dataset(images, labels, [f"c{i}" for i in range(10)], groups=np.arange(n).astype(str),
                   sources=np.arange(n).astype(str), subsets=subsets, name="stripes")


def test_accuracy_at_minutes_takes_the_last_epoch_finished_by_each_mark():
    plans = [{"elapsed_s": 400, "val_accuracy": 0.5}, {"elapsed_s": 900, "val_accuracy": 0.6},
             {"elapsed_s": 1900, "val_accuracy": 0.7}]
    assert at_minutes(plans, (5, 15, 30, 60)) == {"5": None, "15": 0.6, "30": 0.6, "60": 0.7}


@pytest.mark.slow
def test_budget_run_split_latency_and_report(tmp_path):
    from bench.training import write_report

    data = _cifar_like()
    data.save(tmp_path / "stripes.npz")
    run = tmp_path / "runs" / "car-resnet8-budget0.05"
    train(TrainConfig(dataset=str(tmp_path / "stripes.npz"), model="car-resnet8", out=str(run), batch_size=16,
                      epochs=2, learning_rate=0.003, lr_schedule="onecycle", time_budget=0.05, verbose=0), dataset=data)
    figures = evaluate_budget_run(run, data, calibration=20)
    assert (run / "model-int8.tflite").is_file()
    assert figures["test_images"] == 40 and 0 <= figures["int8_test_accuracy"] <= 1
    assert figures["int8_interpreters_agree"] >= 0.9  # the car's interpreter and TensorFlow's, same model
    assert any(op.startswith("ADD v") for op in figures["int8_ops"])  # the residual adds run in int8
    assert figures["at_minutes"]["60"] == figures["budget"]["plans"][-1]["val_accuracy"]

    split = time_split(data, images=64, repeats=1)
    assert split["steps"] == 1 and set(split["seconds"]) == {"pipeline", "compute", "epoch"}
    assert split["pipeline_over_compute"] == pytest.approx(split["seconds"]["pipeline"] / split["seconds"]["compute"])

    latency = int8_latency(["car-resnet8"], runs=5)
    assert list(latency["rows"]) == ["baseline", "car-resnet8"]
    assert latency["rows"]["baseline"]["1_thread"]["vs_baseline"] == 1.0
    assert latency["rows"]["car-resnet8"]["macs"] == 12_501_632

    args = argparse.Namespace(dataset=str(tmp_path / "stripes.npz"), epochs=5, batch_size=32, seeds=[1], limit=None,
                              runs=str(tmp_path / "runs"), results=str(tmp_path / "results"), overhead_limit=50000)
    car = {"preset": "car-small", "params": 98794, "recipe": {}, "test_accuracy": 0.8, "best_test_accuracy": 0.8,
           "epochs": 15, "wall_time_s": 60.0, "run": str(tmp_path / "runs" / "car")}
    path = write_report(args, {}, car, None, 1.0,
                        {"budget_run": figures, "time_split": split, "int8_latency": latency})
    text = path.read_text()
    assert "car-resnet8 trained from scratch with `--time-budget 0.05`" in text
    assert "Input pipeline : compute" in text and "| car-resnet8 | 78,714 | 12,501,632 |" in text
    assert (tmp_path / "results" / "pictures" / "accuracy-vs-macs.png").stat().st_size > 10_000
    # a later invocation that runs only the latency keeps the budget run and says so
    again = write_report(args, {}, None, None, 1.0, {"int8_latency": latency}).read_text()
    assert "Kept from an earlier invocation (not rerun in this one): car default, budget run, time split" in again
    assert json.loads((tmp_path / "results" / "train-cifar10.json").read_text())["cost"]["budget_run"]
