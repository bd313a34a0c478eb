"""Issue 12: the collapse check, the absolute gate of convert, the interval rule and the car recipe."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge.metrics import absolute_failures, collapse_findings, drop_is_real, scores, wilson
from tests.convert_helpers import CLASS_NAMES, SIZE, make_dataset
from train.training.analysis import diagnose
from train.training.recipe import auto_choices


def test_wilson_interval_matches_known_values():
    # by hand, z = 1.6449 (one-sided 95%): centre (0.875 + z^2/16) / (1 + z^2/8) = 0.78023,
    # half-width z * sqrt(0.875 * 0.125 / 8 + z^2 / 256) / (1 + z^2/8) = 0.19138
    assert wilson(7, 8) == pytest.approx((0.5889, 0.9716), abs=1e-4)
    assert wilson(8, 8)[1] == 1.0 and wilson(0, 8)[0] == 0.0
    assert wilson(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(("reference", "candidate", "margin", "rejects"), [
    ((8, 8), (7, 8), 0.0, False),  # one image of eight: noise
    ((8, 8), (0, 8), 0.0, True),  # all eight lost: real
    ((450, 500), (400, 500), 3.0, True),  # 10 points over 500 images
    ((450, 500), (440, 500), 3.0, False),  # 2 points: within the margin
    ((450, 500), (425, 500), 3.0, True),  # 5 points over 500: just over the line (low bound 1.6 pt)
    ((45, 50), (42, 50), 3.0, False),  # 6 points, but only 50 images (low bound < 0)
])
def test_drop_rule_on_both_sides_of_the_line(reference, candidate, margin, rejects):
    assert drop_is_real(reference, candidate, margin).rejects is rejects


def test_collapse_check_fires_on_a_collapsed_model_and_not_on_a_healthy_one():
    labels = np.array([0] * 50 + [1] * 45 + [2] * 5)
    collapsed = scores(labels, np.zeros(100, np.int64), ["airplane", "ship", "truck"])
    kinds = [f.kind for f in collapse_findings(collapsed)]
    assert kinds == ["not-above-majority", "one-class", "zero-recall"]
    healthy_pred = labels.copy()
    healthy_pred[[0, 1, 50, 51, 95]] = [1, 2, 0, 2, 0]  # 95% right, the rare class found 4 of 5 times
    assert collapse_findings(scores(labels, healthy_pred, ["airplane", "ship", "truck"])) == []
    # a model that finds the two big classes but never the rare one (5 images) is not healthy
    blind = labels.copy()
    blind[95:] = 0
    assert [f.kind for f in collapse_findings(scores(labels, blind, ["a", "b", "c"]))] == ["zero-recall"]
    # on a 1:30 set, answering the majority class for everything is caught though accuracy is 97%
    skewed = np.array([0] * 300 + [1] * 10)
    kinds = [f.kind for f in collapse_findings(scores(skewed, np.zeros(310, np.int64), ["a", "b"]))]
    assert kinds == ["not-above-majority", "one-class", "zero-recall"]


def test_diagnosis_never_calls_a_collapsed_model_a_good_fit():
    history = {"loss": [1.0, 0.8, 0.6], "val_loss": [1.1, 1.0, 0.9], "accuracy": [0.7, 0.75, 0.76],
               "val_accuracy": [0.5, 0.5, 0.5]}
    assert diagnose(history, 3)["verdict"] == "good fit"  # the curves alone look fine...
    health = {"collapsed": True, "advice": "COLLAPSED: always 'airplane'", "findings": []}
    verdict = diagnose(history, 3, health=health)
    assert verdict["verdict"] == "collapsed" and "COLLAPSED" in verdict["detail"]
    rising = {**history, "val_loss": [0.9, 1.0, 1.1]}
    assert diagnose(rising, 3, health=health)["verdict"] == "collapsed"  # not "overfitting"


def test_absolute_failures_name_majority_and_blind_classes():
    labels = np.array([0] * 8 + [1] * 6)
    failures = absolute_failures(scores(labels, np.zeros(14, np.int64), ["a", "b"]))
    assert len(failures) == 2 and "always answering 'a' (57.14%)" in failures[0] and "'b' has 0 recall" in failures[1]
    assert absolute_failures(scores(labels, labels, ["a", "b"])) == []


def test_car_recipe_is_sized_from_the_data():
    small, why = auto_choices(300, [236, 53, 12], (32, 32))
    assert small["batch_size"] == 16 and small["epochs"] * -(-300 // 16) >= 1000 and small["bn_momentum"] == 0.9
    assert small["class_weights"] == "sqrt" and "19.7 : 1" in why["class_weights"]
    cifar, _ = auto_choices(50000, [5000] * 10, (32, 32))
    assert (cifar["batch_size"], cifar["epochs"], cifar["learning_rate"], cifar["class_weights"]) == (128, 15, 0.003, False)
    assert cifar["augment"]["width_shift_range"] == [-4, -2, 0, 2, 4]
    assert auto_choices(2000, [1000, 1000], (96, 96))[0]["augment"]["width_shift_range"] == [-12, -6, 0, 6, 12]


def _constant_model(path, answer: int = 0):
    """A model that answers class `answer` whatever it sees (a collapsed model)."""
    import keras

    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(len(CLASS_NAMES), activation="softmax")
    outputs = dense(x)
    model = keras.Model(inputs, outputs)
    bias = np.zeros(len(CLASS_NAMES), np.float32)
    bias[answer] = 5.0
    dense.set_weights([np.zeros((3, len(CLASS_NAMES)), np.float32), bias])
    model.save(path)
    return path


def test_convert_refuses_a_majority_class_model_unless_forced(tiny, tmp_path):
    from tests.conftest import run_edgekit

    data = make_dataset(tmp_path / "data.npz", n=240)
    model = _constant_model(tmp_path / "constant.keras")
    out = tmp_path / "refused"
    result = run_edgekit("convert", str(model), "--data", str(data), "--rep-size", "40", "--latency-runs", "2",
                         "--mode", "float32", "--out", str(out))
    assert result.returncode != 0 and not out.exists()
    assert "absolute gate:" in result.stdout and "refused" in result.stdout and "0 recall" in result.stdout
    forced = tmp_path / "forced"
    result = run_edgekit("convert", str(model), "--data", str(data), "--rep-size", "40", "--latency-runs", "2",
                         "--mode", "float32", "--out", str(forced), "--force")
    assert result.returncode == 0, result.stdout + result.stderr
    gate = json.loads((forced / "manifest.json").read_text())["gate"]["absolute"]
    assert gate["forced"] is True and gate["failures"] and gate["min_class_images"] == 5
    assert 0.2 < gate["majority_share"] < 0.5  # four colours, about a quarter each
    # a trained model passes the same gate, and the thresholds are recorded
    good = tmp_path / "good"
    result = run_edgekit("convert", str(tiny["model"]), "--data", str(tiny["data"]), "--rep-size", "40",
                         "--latency-runs", "2", "--mode", "float32", "--out", str(good))
    assert result.returncode == 0, result.stdout + result.stderr
    gate = json.loads((good / "manifest.json").read_text())["gate"]["absolute"]
    assert gate["passed"] is True and gate["forced"] is False and gate["accuracy_lower_bound"] > gate["majority_share"]


def test_retrain_inherits_the_parents_whole_recipe_and_each_option_overrides_one_field():
    from types import SimpleNamespace

    from train.retrain import RetrainOptions, inherited_recipe, parent_recipe

    parent = {"model": "car-small", "image_size": [24, 24], "epochs": 40, "batch_size": 16, "optimizer": "adam",
              "learning_rate": 0.001, "lr_schedule": "onecycle", "weight_decay": 0.0, "label_smoothing": 0.1,
              "class_weights": "sqrt", "bn_momentum": 0.9, "patience": None, "restore_best": True,
              "augment": {"horizontal_flip": True, "width_shift_range": [-3, 0, 3]}, "seed": 7, "dataset": "old.npz"}
    production = SimpleNamespace(version="v0003", lineage={"train_config": parent})
    found, where = parent_recipe(production)
    assert found == parent and "v0003" in where
    base = RetrainOptions(data="d.npz", split_file="s.json")
    fine = inherited_recipe(base, parent, fine_tune=True)
    assert fine == {"model": "car-small", "image_size": (24, 24), "epochs": 40, "batch_size": 16, "optimizer": "adam",
                    "learning_rate": 0.0003, "lr_schedule": "onecycle", "weight_decay": 0.0, "label_smoothing": 0.1,
                    "class_weights": "sqrt", "bn_momentum": 0.9, "restore_best": True,
                    "augment": {"horizontal_flip": True, "width_shift_range": [-3, 0, 3]}}
    assert inherited_recipe(base, parent, fine_tune=False)["learning_rate"] == 0.001  # from scratch: as it was
    for option, value in (("batch_size", 8), ("class_weights", False), ("label_smoothing", 0.0),
                          ("augment", {}), ("learning_rate", 0.01), ("model", "baseline")):
        changed = inherited_recipe(RetrainOptions(data="d.npz", split_file="s.json", **{option: value}), parent, True)
        assert changed[option] == value
        assert {k: v for k, v in changed.items() if k != option} == {k: v for k, v in fine.items() if k != option}
    # a parent that recorded no recipe: edgekit's defaults, and the run says so
    assert parent_recipe(SimpleNamespace(version="v0001", lineage={}))[0] == {}
    assert inherited_recipe(base, {}, fine_tune=True) == {"learning_rate": 3e-4}
