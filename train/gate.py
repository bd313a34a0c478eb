"""Candidate vs production, both as TFLite with the car's interpreter, and the promotion gate.

The gate promotes a candidate only if, on every evaluated split, it is not worse
overall by more than `max_drop` points, not worse on any class by more than
`max_class_drop` points of F1, and not worse at all on a critical class's recall
(e.g. "red": missing one is the failure that matters).

Why F1 for the other classes: a model that calls every foggy frame "none" finds all
the real "none" frames too, so its recall on "none" looks great while most of its
"none" answers are wrong. F1 weighs both, so a candidate that stops doing that is not
rejected for "losing" that class.

Example:
    >>> cand = evaluate_bundle(Path("cand/bundle"), images, labels)
    >>> prod = evaluate_bundle(Path("models/signals/v0001/bundle"), images, labels)
    >>> decide({"val": (cand, prod)}, GateRules(max_drop=0.5, critical=["red"])).promote
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.bundle import open_bundle
from edge.interpreter import TFLiteModel


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


def decide(results: dict[str, tuple[Evaluation, Evaluation | None]], rules: GateRules) -> GateDecision:
    """The gate over every split: results[split] = (candidate, production or None)."""
    reasons: list[str] = []
    deltas: dict[str, dict[str, Any]] = {}
    for split, (candidate, production) in results.items():
        if production is None:
            deltas[split] = {"overall": None, "per_class": {}}
            continue
        overall = round(candidate.accuracy - production.accuracy, 4)
        measure = {name: ("recall", "per_class") if name in rules.critical else ("F1", "per_class_f1")
                   for name in candidate.per_class}
        figures = {name: (getattr(candidate, attr).get(name), getattr(production, attr).get(name))
                   for name, (_, attr) in measure.items()}
        per_class = {name: (None if cand is None or prod is None else round(cand - prod, 4))
                     for name, (cand, prod) in figures.items()}
        deltas[split] = {"overall": overall, "per_class": per_class,
                         "measure": {name: kind for name, (kind, _) in measure.items()}}
        if overall < -rules.max_drop:
            reasons.append(f"{split}: overall accuracy {production.accuracy:.2f}% -> {candidate.accuracy:.2f}% "
                           f"({overall:+.2f} pt, limit {-rules.max_drop:+g} pt)")
        for name, delta in per_class.items():
            if delta is None:
                continue
            limit = 0.0 if name in rules.critical else rules.max_class_drop
            if delta < -limit:
                kind = "critical class" if name in rules.critical else "class"
                cand, prod = figures[name]
                reasons.append(f"{split}: {kind} {name!r} {measure[name][0]} {prod:.2f}% -> "
                               f"{cand:.2f}% ({delta:+.2f} pt, limit {-limit:+g} pt)")
    return GateDecision(promote=not reasons, reasons=reasons, deltas=deltas)
