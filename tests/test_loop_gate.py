"""The promotion gate: overall margin, per-class margin, critical classes may not drop at all."""

from __future__ import annotations

import numpy as np

from tests.tiny_bundles import LABELS, float_tflite, write_bundle
from train.gate import GateRules, decide, evaluate, evaluate_bundle


def _eval(correct_per_class: list[int], n: int = 10):
    labels, predicted = [], []
    for cls, correct in enumerate(correct_per_class):
        labels += [cls] * n
        predicted += [cls] * correct + [(cls + 1) % len(LABELS)] * (n - correct)
    return evaluate(np.asarray(predicted), np.asarray(labels), LABELS)


def test_evaluate_counts_and_confusion():
    ev = _eval([10, 5, 10, 0])
    assert ev.accuracy == 62.5 and ev.per_class == {"green": 100.0, "none": 50.0, "red": 100.0, "yellow": 0.0}
    assert ev.confusion[1] == [0, 5, 5, 0] and ev.counts["red"] == 10
    # F1 = 2 TP / (images of the class + predictions of the class): green 20/30, none 10/15, red 20/25
    assert ev.per_class_f1 == {"green": 66.6667, "none": 66.6667, "red": 80.0, "yellow": 0.0}


def _confusion_eval(rows: list[list[int]]):
    """An Evaluation from a confusion matrix (rows = truth, columns = predicted)."""
    labels, predicted = [], []
    for truth, row in enumerate(rows):
        for guess, count in enumerate(row):
            labels += [truth] * count
            predicted += [guess] * count
    return evaluate(np.asarray(predicted), np.asarray(labels), LABELS)


def test_a_class_is_judged_on_f1_so_calling_everything_none_is_no_merit():
    # production calls most foggy frames "none": 24/36 of the real "none" found, but 137 wrong "none"s
    production = _confusion_eval([[36, 54, 0, 0], [7, 24, 0, 5], [0, 49, 37, 4], [0, 34, 2, 34]])
    # the candidate learnt fog: fewer "none" answers (recall 18/36) but far fewer wrong ones
    candidate = _confusion_eval([[68, 20, 0, 2], [7, 18, 2, 9], [0, 6, 73, 11], [0, 1, 3, 66]])
    assert candidate.per_class["none"] < production.per_class["none"]
    assert candidate.per_class_f1["none"] > production.per_class_f1["none"]
    decision = decide({"fresh_test": (candidate, production)}, GateRules(max_class_drop=5, critical=["red"]))
    assert decision.promote, decision.reasons
    assert decision.deltas["fresh_test"]["measure"] == {"green": "F1", "none": "F1", "red": "recall", "yellow": "F1"}
    # the same recall loss on a critical class is still a rejection
    decision = decide({"fresh_test": (candidate, production)}, GateRules(max_class_drop=5, critical=["none"]))
    assert not decision.promote and "critical class 'none' recall" in decision.reasons[0]


def test_gate_rules():
    production = _eval([8, 8, 8, 8])
    better = _eval([9, 9, 9, 8])
    assert decide({"val": (better, production)}, GateRules(critical=["red"])).promote
    red_drop = _eval([10, 10, 7, 10])  # better overall, red -10 pt
    decision = decide({"val": (red_drop, production)}, GateRules(max_class_drop=20, critical=["red"]))
    assert not decision.promote and "critical class 'red'" in decision.reasons[0]
    assert decide({"val": (red_drop, production)}, GateRules(max_class_drop=20)).promote
    class_drop = _eval([10, 4, 10, 10])
    assert decide({"val": (class_drop, production)}, GateRules(max_class_drop=50)).promote
    assert not decide({"val": (class_drop, production)}, GateRules(max_class_drop=3)).promote
    worse = _eval([7, 8, 8, 8])  # -2.5 pt overall
    assert not decide({"val": (worse, production)}, GateRules(max_drop=1, max_class_drop=50)).promote
    # every split must pass: good on val, bad on the fresh test set
    decision = decide({"val": (better, production), "fresh_test": (worse, production)},
                      GateRules(max_drop=1, max_class_drop=50))
    assert not decision.promote and decision.reasons[0].startswith("fresh_test")
    assert decide({"val": (worse, None)}, GateRules()).promote  # nothing in production yet


def test_evaluate_bundle_uses_the_tflite_model(tmp_path):
    bundle = write_bundle(tmp_path / "b", float_tflite(), name="signals")
    images = np.random.default_rng(0).integers(0, 256, (12, 8, 8, 3), dtype=np.uint8)
    from edge.interpreter import TFLiteModel

    model = TFLiteModel(bundle / "model.tflite")
    expected = np.asarray([np.argmax(model.predict(x)) for x in images])
    ev = evaluate_bundle(bundle, images, expected)
    assert ev.accuracy == 100.0 and ev.images == 12
