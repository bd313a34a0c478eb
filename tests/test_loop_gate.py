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
    # the same recall loss (24/36 -> 18/36) on a critical class: six images of 36 could be noise...
    decision = decide({"fresh_test": (candidate, production)}, GateRules(max_class_drop=5, critical=["none"]))
    assert decision.promote, decision.reasons
    # ...but the same shares over five times the images are a real loss: a rejection
    scaled = [_confusion_eval((np.asarray(m) * 5).tolist()) for m in (
        [[36, 54, 0, 0], [7, 24, 0, 5], [0, 49, 37, 4], [0, 34, 2, 34]],
        [[68, 20, 0, 2], [7, 18, 2, 9], [0, 6, 73, 11], [0, 1, 3, 66]])]
    decision = decide({"fresh_test": (scaled[1], scaled[0])}, GateRules(max_class_drop=5, critical=["none"]))
    assert not decision.promote and "critical class 'none' recall" in decision.reasons[0]


def test_gate_rules():
    # 100 images a class: drops of 20 points are real, so the margins decide
    production = _eval([80, 80, 80, 80], n=100)
    better = _eval([90, 90, 90, 80], n=100)
    assert decide({"val": (better, production)}, GateRules(critical=["red"])).promote
    red_drop = _eval([100, 100, 60, 100], n=100)  # better overall, red recall -20 pt
    decision = decide({"val": (red_drop, production)}, GateRules(max_class_drop=20, critical=["red"]))
    assert not decision.promote and "critical class 'red'" in decision.reasons[0]
    assert decide({"val": (red_drop, production)}, GateRules(max_class_drop=20)).promote
    class_drop = _eval([100, 40, 100, 100], n=100)  # 'none' F1 80% -> 57%
    assert decide({"val": (class_drop, production)}, GateRules(max_class_drop=50)).promote
    assert not decide({"val": (class_drop, production)}, GateRules(max_class_drop=3)).promote
    worse = _eval([50, 80, 80, 80], n=100)  # -7.5 pt overall on 400 images
    assert not decide({"val": (worse, production)}, GateRules(max_drop=1, max_class_drop=50)).promote
    # every split must pass: good on val, bad on the fresh test set
    decision = decide({"val": (better, production), "fresh_test": (worse, production)},
                      GateRules(max_drop=1, max_class_drop=50))
    assert not decision.promote and decision.reasons[0].startswith("fresh_test")
    assert decide({"val": (worse, None)}, GateRules()).promote  # nothing in production yet


def test_drops_are_judged_with_their_sample_size():
    # issue 12: 8 images of the rare class, one of them lost (-6.7 pt of F1): noise, not a rejection
    production = _confusion_eval([[8, 0, 0, 0], [0, 40, 0, 0], [0, 0, 40, 0], [0, 0, 0, 40]])
    candidate = _confusion_eval([[7, 1, 0, 0], [0, 40, 0, 0], [0, 0, 40, 0], [0, 0, 0, 40]])
    decision = decide({"val": (candidate, production)}, GateRules(max_class_drop=3, critical=["green"]))
    assert decision.promote, decision.reasons
    assert decision.deltas["val"]["per_class"]["green"] == -12.5  # the point drop is over the margin...
    assert decision.deltas["val"]["per_class_interval"]["green"]["low"] < 0  # ...but not shown to be real
    # the same share lost over 500 images is real: rejected
    production = _confusion_eval([[500, 0, 0, 0], [0, 500, 0, 0], [0, 0, 500, 0], [0, 0, 0, 500]])
    candidate = _confusion_eval([[440, 60, 0, 0], [0, 500, 0, 0], [0, 0, 500, 0], [0, 0, 0, 500]])
    decision = decide({"val": (candidate, production)}, GateRules(max_drop=5, max_class_drop=3, critical=["green"]))
    assert not decision.promote and "critical class 'green' recall" in decision.reasons[0]
    # overall: 2 points over 2,000 images with a 1-point margin is real; over 100 images it is not
    big_prod, big_cand = _eval([450, 450, 450, 450], n=500), _eval([430, 430, 430, 430], n=500)
    assert not decide({"val": (big_cand, big_prod)}, GateRules(max_drop=1, max_class_drop=50)).promote
    small_prod, small_cand = _eval([22, 23, 22, 23], n=25), _eval([22, 22, 21, 23], n=25)
    assert decide({"val": (small_cand, small_prod)}, GateRules(max_drop=1, max_class_drop=50)).promote


def test_absolute_gate_refuses_a_majority_class_model_unless_forced():
    # always 'none': 70% right on a set that is 70% 'none', three classes never found
    majority = _confusion_eval([[0, 10, 0, 0], [0, 70, 0, 0], [0, 10, 0, 0], [0, 10, 0, 0]])
    decision = decide({"val": (majority, None)}, GateRules())
    assert not decision.promote
    assert "no better than always answering 'none' (70.00%)" in decision.reasons[0]
    assert sum("0 recall on 10 images" in r for r in decision.reasons) == 3
    assert decision.deltas["val"]["absolute"]["majority_share"] == 0.7
    forced = decide({"val": (majority, None)}, GateRules(force=True))
    assert forced.promote and forced.deltas["val"]["absolute"]["forced"] is True
    good = _confusion_eval([[9, 1, 0, 0], [2, 66, 1, 1], [0, 1, 9, 0], [0, 2, 0, 8]])
    assert decide({"val": (good, None)}, GateRules()).promote
    # a rare class of 3 images at 0 recall is below min_class_images: not judged
    rare = _confusion_eval([[0, 3, 0, 0], [0, 70, 0, 0], [0, 1, 20, 0], [0, 1, 0, 20]])
    assert decide({"val": (rare, None)}, GateRules()).promote
    assert not decide({"val": (rare, None)}, GateRules(min_class_images=3)).promote
    # a class never found but still answered for half as many images as it has (wrongly): a weak class, not a
    # given-up one, so the gate lets it through below 20 images and refuses it from 20
    weak = _confusion_eval([[40, 0, 0, 5], [0, 60, 0, 0], [0, 0, 20, 0], [0, 10, 0, 0]])
    assert decide({"val": (weak, None)}, GateRules()).promote
    gave_up = _confusion_eval([[45, 0, 0, 0], [0, 60, 0, 0], [0, 0, 20, 0], [0, 10, 0, 0]])
    assert "0 recall on 10 images and is the answer for 0" in decide({"val": (gave_up, None)}, GateRules()).reasons[0]
    weak_big = _confusion_eval([[30, 0, 0, 10], [0, 60, 0, 0], [0, 0, 20, 0], [0, 20, 0, 0]])
    assert not decide({"val": (weak_big, None)}, GateRules()).promote


def test_evaluate_bundle_uses_the_tflite_model(tmp_path):
    bundle = write_bundle(tmp_path / "b", float_tflite(), name="signals")
    images = np.random.default_rng(0).integers(0, 256, (12, 8, 8, 3), dtype=np.uint8)
    from edge.interpreter import TFLiteModel

    model = TFLiteModel(bundle / "model.tflite")
    expected = np.asarray([np.argmax(model.predict(x)) for x in images])
    ev = evaluate_bundle(bundle, images, expected)
    assert ev.accuracy == 100.0 and ev.images == 12


def test_retrain_report_table_has_accuracy_apart_and_one_number_format(tmp_path):
    """Issue 13.8: overall accuracy sat under a "recall" column, and 99.4845 stood next to 0.0."""
    import re

    from convert.data import SplitData
    from train.data import Dataset
    from train.retrain import write_report

    rng = np.random.default_rng(0)
    labels = np.arange(400) % 4
    dataset = Dataset(np.zeros((400, 4, 4, 3), np.uint8), labels, LABELS,
                      np.asarray([f"g{i}" for i in range(400)]), np.asarray([f"s{i}" for i in range(400)]))
    data = SplitData(dataset, {"train": np.arange(200), "val": np.arange(200, 400)}, LABELS)
    truth = labels[200:]
    good = np.where(rng.random(200) < 0.97, truth, (truth + 1) % 4)
    cand, prod = evaluate(good, truth, LABELS), evaluate(np.where(truth == 2, 0, truth), truth, LABELS)
    decision = decide({"val": (cand, prod)}, GateRules(critical=["red"]))
    text = write_report(tmp_path / "report", "v0002", "v0001", {"val": (cand, prod)}, decision, True, data,
                        tmp_path).read_text()
    assert "| class | recall % | F1 % | gate delta (pt) |" in text and "| overall |" not in text
    assert re.search(r"Accuracy: 75\.0 -> 9\d\.\d % \(production -> candidate, \+\d+\.\d pt\)", text), text
    rows = [line for line in text.splitlines() if line.startswith(("| green", "| none", "| red", "| yellow"))]
    numbers = re.findall(r"-?\d+\.\d+", " ".join(rows))
    assert len(rows) == 4 and numbers and all(re.fullmatch(r"-?\d+\.\d", n) for n in numbers), rows
    assert "| red | 0.0 -> " in text
