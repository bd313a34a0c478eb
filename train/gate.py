"""Candidate vs production, both as TFLite with the car's interpreter, and the promotion gate.

Absolute (whatever production is): on every evaluated split the candidate must be clearly better
than always answering the majority class and find every class that has at least
`min_class_images` images (edge.metrics.absolute_failures); `force` records and overrides it.

Relative, with the sample size in mind: a drop from production to candidate rejects only when it
is larger than its margin (`max_drop` overall, `max_class_drop` for a class's F1, 0 for a critical
class's recall) AND the images show it is real: the lower one-sided 95% bound of the drop
(Newcombe's interval from the two Wilson intervals, edge.metrics.drop_is_real) is above 0. One
image of eight is noise; ten points over 500 images is not. F1 is not a plain proportion; it is
judged as one over (images of the class + answers of the class) / 2 trials.

Why F1 for the other classes: a model that calls every foggy frame "none" finds all
the real "none" frames too, so its recall on "none" looks great while most of its
"none" answers are wrong. F1 weighs both, so a candidate that stops doing that is not
rejected for "losing" that class.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.bundle import open_bundle
from edge.interpreter import TFLiteModel
from edge.metrics import (
    MIN_CLASS_IMAGES,
    absolute_failures,
    absolute_thresholds,
    drop_is_real,
    scores_from_confusion,
)


@dataclass
class Evaluation:
    """Accuracy (percent) overall, recall and F1 per class (percent), the confusion matrix (rows = truth)."""

    accuracy: float
    per_class: dict[str, float | None]  # recall: the share of the class's images called that class
    counts: dict[str, int]
    confusion: list[list[int]]
    images: int
    per_class_f1: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GateRules:
    max_drop: float = 1.0
    max_class_drop: float = 3.0
    critical: list[str] = field(default_factory=list)
    min_class_images: int = MIN_CLASS_IMAGES
    force: bool = False  # promote past the absolute gate (recorded in the decision)


@dataclass
class GateDecision:
    promote: bool
    reasons: list[str]
    deltas: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(predicted: np.ndarray, labels: np.ndarray, class_names: list[str]) -> Evaluation:
    n = len(class_names)
    matrix = np.bincount(labels * n + predicted, minlength=n * n).reshape(n, n)
    totals = matrix.sum(axis=1)
    per_class = {name: (round(float(matrix[i, i] / totals[i] * 100), 4) if totals[i] else None)
                 for i, name in enumerate(class_names)}
    called = matrix.sum(axis=0)
    per_class_f1 = {name: (round(float(2 * matrix[i, i] / (totals[i] + called[i]) * 100), 4) if totals[i] else None)
                    for i, name in enumerate(class_names)}
    accuracy = float((predicted == labels).mean() * 100) if len(labels) else float("nan")
    return Evaluation(round(accuracy, 4), per_class, {c: int(t) for c, t in zip(class_names, totals, strict=True)},
                      matrix.tolist(), int(len(labels)), per_class_f1)


def evaluate_bundle(bundle_path: Path, images: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Run a bundle's TFLite model (this machine's interpreter, as on the car) over model inputs."""
    bundle = open_bundle(bundle_path, verify=True)
    model = TFLiteModel(bundle.model_path)
    predicted = np.asarray([int(np.argmax(model.predict(x))) for x in images], np.int64)
    return evaluate(predicted, np.asarray(labels, np.int64), bundle.labels)


def _successes(ev: Evaluation, name: str, kind: str) -> tuple[float, float]:
    """(successes, trials) behind a class's recall or F1 (percent figures -> counts)."""
    names = list(ev.counts)
    i = names.index(name)
    support = ev.counts[name]
    if kind == "recall":
        return (ev.per_class[name] or 0.0) / 100 * support, support
    trials = (support + int(np.asarray(ev.confusion)[:, i].sum())) / 2
    return (ev.per_class_f1.get(name) or 0.0) / 100 * trials, trials


def decide(results: dict[str, tuple[Evaluation, Evaluation | None]], rules: GateRules) -> GateDecision:
    """The gate over every split: results[split] = (candidate, production or None)."""
    reasons: list[str] = []
    deltas: dict[str, dict[str, Any]] = {}
    for split, (candidate, production) in results.items():
        shipped = scores_from_confusion(candidate.confusion, list(candidate.counts))
        failures = absolute_failures(shipped, rules.min_class_images)
        absolute = {**absolute_thresholds(shipped, rules.min_class_images), "failures": failures,
                    "forced": bool(failures and rules.force)}
        if not rules.force:
            reasons += [f"{split}: absolute gate: {f}" for f in failures]
        if production is None:
            deltas[split] = {"overall": None, "per_class": {}, "absolute": absolute}
            continue
        overall = round(candidate.accuracy - production.accuracy, 4)
        measure = {name: ("recall", "per_class") if name in rules.critical else ("F1", "per_class_f1")
                   for name in candidate.per_class}
        figures = {name: (getattr(candidate, attr).get(name), getattr(production, attr).get(name))
                   for name, (_, attr) in measure.items()}
        per_class = {name: (None if cand is None or prod is None else round(cand - prod, 4))
                     for name, (cand, prod) in figures.items()}
        overall_drop = drop_is_real((production.accuracy / 100 * production.images, production.images),
                                    (candidate.accuracy / 100 * candidate.images, candidate.images), rules.max_drop)
        class_drops = {name: drop_is_real(_successes(production, name, measure[name][0]),
                                          _successes(candidate, name, measure[name][0]),
                                          0.0 if name in rules.critical else rules.max_class_drop)
                       for name, delta in per_class.items() if delta is not None}
        deltas[split] = {"overall": overall, "per_class": per_class,
                         "measure": {name: kind for name, (kind, _) in measure.items()},
                         "absolute": absolute, "overall_interval": overall_drop.to_dict(),
                         "per_class_interval": {n: d.to_dict() for n, d in class_drops.items()}}
        if overall_drop.rejects:
            reasons.append(f"{split}: overall accuracy {production.accuracy:.2f}% -> {candidate.accuracy:.2f}% "
                           f"({overall:+.2f} pt on {candidate.images} images, limit {-rules.max_drop:+g} pt; the "
                           f"drop is at least {overall_drop.low:.2f} pt at 95%)")
        for name, drop in class_drops.items():
            if drop.rejects:
                kind = "critical class" if name in rules.critical else "class"
                cand, prod = figures[name]
                reasons.append(f"{split}: {kind} {name!r} {measure[name][0]} {prod:.2f}% -> {cand:.2f}% "
                               f"({per_class[name]:+.2f} pt on {candidate.counts[name]} images, limit "
                               f"{-drop.margin:+g} pt; the drop is at least {drop.low:.2f} pt at 95%)")
    return GateDecision(promote=not reasons, reasons=reasons, deltas=deltas)
