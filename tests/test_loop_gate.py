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
