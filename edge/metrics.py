"""Scoring a classifier, with its sample size in mind: one module for training, convert and the gates.

- `scores`: confusion matrix, per-class precision/recall/F1/support, accuracy, majority share.
- `wilson`: the Wilson score interval of a proportion (k successes of n).
- `drop_is_real`: is a drop from a reference proportion to a candidate's larger than the margin
  *and* larger than the images can resolve? Newcombe's hybrid score interval (method 10 of
  Newcombe 1998) for the difference of two proportions, built from the two Wilson intervals.
- `collapse_findings`: the ways a model can look trained and yet have learnt nothing.
- `absolute_failures`: the absolute gate (no better than the majority class, a class at 0 recall).

Pure numpy (no TensorFlow): the car may score itself with it too.

Example:
    >>> s = scores([0, 0, 1, 1], [0, 0, 0, 0], ["a", "b"])
    >>> s.accuracy, s.majority_share, s.recall
    (0.5, 0.5, [1.0, 0.0])
    >>> [f.kind for f in collapse_findings(s, min_class_images=2)]
    ['not-above-majority', 'one-class', 'zero-recall']
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

Z_ONE_SIDED_95 = 1.6448536269514722  # a one-sided 95% bound
MIN_CLASS_IMAGES = 5  # the ship gate: a class with at least this many images at 0 recall may not ship
# The training verdict "collapsed": 0 hits on a class counts only once 0 of n is evidence the model
# rarely finds it, not bad luck: 0 of 9 puts recall's one-sided 95% Wilson upper bound at 23% (< 25%),
# 0 of 5 still allows 35%. On make bench-small's 99 runs, 5 called 4 healthy models collapsed (a class
# with 4-6 val images found 15-28% of the time on test); 9 kept every caught collapse but one.
COLLAPSE_CLASS_IMAGES = 9
ONE_CLASS_SHARE = 0.9  # "one class predicted for most of val": at least this share of all predictions...
# Several small classes never found: each too small to judge alone (0 of 3 is bad luck at any recall), but
# together they may be too many images to be bad luck. The same 25% line as above: had the model found every
# class at least a quarter of the time, would it miss this many images in never-found classes? (p < 5%)
UNFOUND_RECALL = 0.25
UNFOUND_P = 0.05
# A class at 0 recall counts (in both rules above) only if the model also answers it for fewer than
# this share of its own images: it has given up on the class. A weak model that answers 'cat' about as
# often as cats occur, only on the wrong images, has not (bench-small: two such runs, 0 of 9 val cats
# found and cat answered 6 and 9 times, found 24-28% of the time on test; the collapsed runs' unfound
# classes were answered for fewer than half their images in all but three cases, each in a run with other
# given-up classes).
GIVEN_UP_ANSWER_SHARE = 0.5
# ...unless the class has so many images that 0 found is conclusive alone (0 of 20 at 25% recall: p = 0.3%):
# a model that answers 'ship' for 21 other images and never for any of 41 ships is broken for 'ship'.
ZERO_RECALL_CONCLUSIVE = 20


@dataclass(frozen=True)
class Scores:
    """How a classifier did on one set of images (fractions in [0, 1], None for an absent class)."""

    class_names: list[str]
    confusion: list[list[int]]  # rows = truth, columns = predicted
    support: list[int]  # images per class
    predicted: list[int]  # predictions per class
    precision: list[float | None]
    recall: list[float | None]
    f1: list[float | None]
    accuracy: float
    images: int
    majority_share: float  # accuracy of always answering the most common class
    majority_class: str

    @property
    def correct(self) -> int:
        return int(np.trace(np.asarray(self.confusion)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        """Per-class precision, recall, F1 and support as a text table (printed after every run)."""
        width = max([len("class"), *map(len, self.class_names)])
        lines = [f"{'class':<{width}}  precision  recall     F1  images"]

        def pct(value: float | None) -> str:
            return "      -" if value is None else f"{value * 100:6.1f}%"

        for i, name in enumerate(self.class_names):
            lines.append(f"{name:<{width}}    {pct(self.precision[i])}  {pct(self.recall[i])} {pct(self.f1[i])}"
                         f"  {self.support[i]:6d}")
        lines.append(f"{'overall':<{width}}  accuracy {self.accuracy * 100:.1f}% of {self.images} "
                     f"(always '{self.majority_class}': {self.majority_share * 100:.1f}%)")
        return "\n".join(lines)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows = true class, columns = predicted class."""
    labels, predicted = np.asarray(labels, np.int64), np.asarray(predicted, np.int64)
    return np.bincount(labels * n_classes + predicted, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def scores(labels: Any, predicted: Any, class_names: list[str]) -> Scores:
    """Scores from true labels and predicted class indices."""
    matrix = confusion_matrix(np.asarray(labels), np.asarray(predicted), len(class_names))
    return scores_from_confusion(matrix, class_names)


def scores_from_confusion(matrix: Any, class_names: list[str]) -> Scores:
    """Scores from a confusion matrix (rows = truth)."""
    matrix = np.asarray(matrix, np.int64)
    support, called, hits = matrix.sum(axis=1), matrix.sum(axis=0), np.diag(matrix)
    total = int(matrix.sum())

    def ratio(num: int, den: int) -> float | None:
        return float(num / den) if den else None

    precision = [ratio(h, c) if s else None for h, c, s in zip(hits, called, support, strict=True)]
    precision = [0.0 if s and p is None else p for p, s in zip(precision, support, strict=True)]
    recall = [ratio(h, s) for h, s in zip(hits, support, strict=True)]
    f1 = [ratio(2 * h, s + c) if s else None for h, s, c in zip(hits, support, called, strict=True)]
    top = int(support.argmax()) if total else 0
    return Scores(list(class_names), matrix.tolist(), support.tolist(), called.tolist(), precision, recall, f1,
                  float(hits.sum() / total) if total else float("nan"), total,
                  float(support[top] / total) if total else float("nan"), class_names[top] if class_names else "")


def wilson(successes: float, n: float, z: float = Z_ONE_SIDED_95) -> tuple[float, float]:
    """Wilson score interval of a proportion: (low, high); (0, 1) when n is 0.

    Example:
        >>> [round(v, 3) for v in wilson(7, 8)]
        [0.589, 0.972]
    """
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Drop:
    """A drop in points (reference - candidate) and the interval the images allow around it."""

    points: float
    low: float  # lower bound of the drop, points
    high: float
    margin: float
    rejects: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def drop_is_real(reference: tuple[float, float], candidate: tuple[float, float], margin_points: float,
                 z: float = Z_ONE_SIDED_95) -> Drop:
    """Judge a drop from `reference` = (successes, n) to `candidate` = (successes, n).

    It rejects only when the measured drop is over `margin_points` AND the lower bound of the
    drop (Newcombe's hybrid score interval from the two Wilson intervals, one-sided 95% by
    default) is above 0: the images show the candidate really is worse. A negative margin
    demands a gain: then the lower bound must be above the margin instead. Treating the two
    figures as independent overstates the noise of a paired comparison on the same images,
    which errs on the side of not rejecting for a single image.

    Example:
        >>> drop_is_real((8, 8), (7, 8), 0).rejects  # one image of eight: noise
        False
        >>> drop_is_real((450, 500), (400, 500), 3).rejects  # 10 points over 500 images: real
        True
    """
    (k1, n1), (k2, n2) = reference, candidate
    p1, p2 = (k1 / n1 if n1 else 0.0), (k2 / n2 if n2 else 0.0)
    l1, u1 = wilson(k1, n1, z)
    l2, u2 = wilson(k2, n2, z)
    drop = p1 - p2
    low = drop - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = drop + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    rejects = drop * 100 > margin_points + 1e-9 and low * 100 > min(0.0, margin_points)
    return Drop(round(drop * 100, 4), round(low * 100, 4), round(high * 100, 4), margin_points, rejects)


@dataclass(frozen=True)
class Finding:
    """One way a model failed, in plain words: what, the likely cause, the fix."""

    kind: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def above_majority(s: Scores, z: float = Z_ONE_SIDED_95) -> tuple[bool, float]:
    """(is the accuracy clearly above the majority share?, the accuracy's Wilson lower bound)."""
    low, _ = wilson(s.correct, s.images, z)
    return low > s.majority_share, low


def unfound_p_value(support: list[int], hits: list[int], recall: float = UNFOUND_RECALL) -> tuple[float, int]:
    """(p, images): `images` = the images of every class found 0 times; p = the chance of at least that
    many if each class were found with probability `recall` per image (classes independent). The sum
    runs over whichever classes came out at 0, so picking them after the fact is accounted for.

    Example:
        >>> p, images = unfound_p_value([26, 19, 14, 10, 7, 5, 4, 3, 2, 1], [25, 9, 2, 1, 0, 0, 0, 0, 0, 0])
        >>> images, round(p, 3)
        (22, 0.02)
    """
    observed = sum(n for n, k in zip(support, hits, strict=True) if n and k == 0)
    if not observed:
        return 1.0, 0
    total = sum(support)
    dist = np.zeros(total + 1)
    dist[0] = 1.0  # distribution of the never-found images, class by class
    for n in (n for n in support if n):
        zero = (1 - recall) ** n
        shifted = np.zeros_like(dist)
        shifted[n:] = dist[:total + 1 - n] * zero
        dist = dist * (1 - zero) + shifted
    return float(min(1.0, dist[observed:].sum())), observed


def given_up_classes(s: Scores, answer_share: float | None = GIVEN_UP_ANSWER_SHARE) -> list[bool]:
    """Per class: has the model given up on it? 0 recall, and (below ZERO_RECALL_CONCLUSIVE images) the
    answer for fewer than `answer_share` x its images (None: every class at 0 recall).

    Example:
        >>> given_up_classes(scores([0, 0, 1, 1, 2, 2], [0, 0, 2, 2, 0, 0], ["a", "b", "c"]))  # 'c' answered twice
        [False, True, False]
    """
    return [bool(n) and r == 0 and (answer_share is None or n >= ZERO_RECALL_CONCLUSIVE or answered < answer_share * n)
            for r, n, answered in zip(s.recall, s.support, s.predicted, strict=True)]


def collapse_findings(s: Scores, min_class_images: int = COLLAPSE_CLASS_IMAGES,
                      one_class_share: float = ONE_CLASS_SHARE,
                      unfound_recall: float | None = UNFOUND_RECALL,
                      given_up_share: float | None = GIVEN_UP_ANSWER_SHARE) -> list[Finding]:
    """The signs of a collapsed model (empty for a healthy one).

    - accuracy not clearly above the majority share (its Wilson lower bound is not above it);
    - one class takes at least `one_class_share` of the predictions, and clearly more than its
      true share (halfway from its share to 100%);
    - a given-up class with at least `min_class_images` images: 0 recall, and (below
      ZERO_RECALL_CONCLUSIVE images) answered for fewer than `given_up_share` x its images
      (None: every class at 0 recall counts);
    - given-up classes with too many images between them to be bad luck (`unfound_p_value` below
      UNFOUND_P; None skips this rule).
    """
    findings = []
    if not s.images:
        return findings
    clear, low = above_majority(s)
    if not clear:
        findings.append(Finding("not-above-majority", (
            f"accuracy {s.accuracy * 100:.1f}% on {s.images} images is not clearly above always answering "
            f"'{s.majority_class}' ({s.majority_share * 100:.1f}%; the accuracy's 95% lower bound is {low * 100:.1f}%)")))
    top = int(np.argmax(s.predicted))
    share, true_share = s.predicted[top] / s.images, s.support[top] / s.images
    if share >= max(one_class_share, true_share + (1 - true_share) / 2) and len(s.class_names) > 1:
        findings.append(Finding("one-class", (
            f"'{s.class_names[top]}' is the answer for {share * 100:.0f}% of the images "
            f"(it is {true_share * 100:.0f}% of them)")))
    given_up = given_up_classes(s, given_up_share)
    dead = [name for name, gone, n in zip(s.class_names, given_up, s.support, strict=True)
            if gone and n >= min_class_images]
    if dead:
        findings.append(Finding("zero-recall", (
            f"never finds {', '.join(repr(d) for d in dead)} (0 recall, and rarely the answer; classes with "
            f">= {min_class_images} images are judged)")))
    if unfound_recall is not None and not dead:
        p, images = unfound_p_value(s.support, [int(not gone) for gone in given_up], unfound_recall)  # 0: unfound
        if p < UNFOUND_P:
            unfound = [name for name, gone in zip(s.class_names, given_up, strict=True) if gone]
            findings.append(Finding("never-found-classes", (
                f"never finds {', '.join(repr(u) for u in unfound)} (0 of {images} images between them, and "
                f"rarely the answer; had it found every class {unfound_recall * 100:.0f}% of the time, that "
                f"would happen with probability {p * 100:.1f}%)")))
    return findings


def absolute_failures(s: Scores, min_class_images: int = MIN_CLASS_IMAGES, z: float = Z_ONE_SIDED_95) -> list[str]:
    """The absolute gate: reasons a model must not ship whatever it is compared with (empty: passes).

    Example:
        >>> absolute_failures(scores([0] * 8 + [1] * 2, [0] * 10, ["a", "b"]), min_class_images=2)[1]
        "class 'b' has 0 recall on 2 images and is the answer for 0 (limit: any class with >= 2 images must be found at least once, unless it has < 20 and is answered for half as many images)"
    """
    failures = []
    clear, low = above_majority(s, z)
    if not clear:
        failures.append(f"accuracy {s.accuracy * 100:.2f}% on {s.images} images is no better than always answering "
                        f"'{s.majority_class}' ({s.majority_share * 100:.2f}%): its 95% lower bound "
                        f"{low * 100:.2f}% must be above that")
    for name, gone, n, answered in zip(s.class_names, given_up_classes(s), s.support, s.predicted, strict=True):
        if gone and n >= min_class_images:
            failures.append(f"class {name!r} has 0 recall on {n} images and is the answer for {answered} (limit: any "
                            f"class with >= {min_class_images} images must be found at least once, unless it has < "
                            f"{ZERO_RECALL_CONCLUSIVE} and is answered for half as many images)")
    return failures


def absolute_thresholds(s: Scores, min_class_images: int = MIN_CLASS_IMAGES, z: float = Z_ONE_SIDED_95) -> dict[str, Any]:
    """The absolute gate's thresholds, as stored in a manifest or a decision."""
    return {"majority_class": s.majority_class, "majority_share": round(s.majority_share, 6),
            "accuracy_lower_bound": round(above_majority(s, z)[1], 6), "z": round(z, 4),
            "min_class_images": min_class_images,
            "given_up_answer_share": GIVEN_UP_ANSWER_SHARE, "zero_recall_conclusive": ZERO_RECALL_CONCLUSIVE,
            "rule": "the accuracy's one-sided 95% Wilson lower bound must be above the majority share; "
                    "no class with >= min_class_images images may have 0 recall unless it has fewer than "
                    "zero_recall_conclusive images and is the answer for at least given_up_answer_share x its images"}
