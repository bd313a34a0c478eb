"""Choosing golden inputs that can tell models apart.

The car replays a bundle's golden inputs before it trusts the model (edge.bundle.self_test).
Inputs whose outputs are saturated (top probability near 1, an int8 output at its clamp) come
out the same for almost any model of the task, and near-copies of one scene test one thing, so
a different model, flipped weights or a wrong kernel path would pass. The converter therefore
picks, from the evaluation images (or the representative set, or random inputs as a last
resort):

1. one input per class the model predicts, and per true class when labels are known: the
   least confident one whose top-1 margin is still clear;
2. inputs near decision boundaries: the smallest clear margins;
3. the rest spread over the confidence range.

"Clear" means the top-1 output leads the runner-up by more than twice what the agreement rule
lets another interpreter differ (edge.bundle.agreement_rule), so a legitimate interpreter can
never flip a golden input's label while another model usually does.

Example:
    >>> chosen, stats = select_golden(raw, probabilities, 16, margin=17 / 256, labels=truth)
"""

from __future__ import annotations

from typing import Any

import numpy as np

SATURATED_PROBABILITY = 0.95


def _order(candidates: np.ndarray, key: np.ndarray) -> list[int]:
    return [int(i) for i in candidates[np.argsort(key[candidates], kind="stable")]]


def select_golden(raw: np.ndarray, probabilities: np.ndarray, count: int, margin: float,
                  labels: np.ndarray | None = None, clamp: float | None = None,
                  inputs: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Indices of up to `count` pool rows to use as golden inputs (at least one per class), and figures.

    Args:
        raw: the model's raw outputs on the pool (N, classes).
        probabilities: the same, dequantized (N, classes).
        count: how many to pick; raised to the number of classes so each can have one.
        margin: the smallest top-1 lead (in probability) that counts as clear.
        labels: true class per pool row, when known.
        clamp: the raw output value that means "clamped" (255 for uint8 outputs), if any.
        inputs: the pool's images, to skip exact duplicates.
    """
    n, classes = probabilities.shape
    ranked = np.sort(probabilities, axis=1)
    top = ranked[:, -1]
    lead = ranked[:, -1] - ranked[:, -2] if classes > 1 else ranked[:, -1]
    predicted = probabilities.argmax(1)
    clear = lead > margin
    unsaturated = top < SATURATED_PROBABILITY
    if clamp is not None:
        unsaturated &= raw.max(1) < clamp
    tiers = [clear & unsaturated, clear, np.ones(n, bool)]
    count = max(count, classes)
    chosen: list[int] = []
    seen: set[bytes] = set()

    def take(index: int) -> bool:
        key = inputs[index].tobytes() if inputs is not None else str(index).encode()
        if index in chosen or key in seen or len(chosen) >= count:
            return False
        chosen.append(index)
        seen.add(key)
        return True

    def one_of(group: np.ndarray) -> None:
        for tier in tiers:
            for index in _order(np.flatnonzero(group & tier), top):  # least confident first
                if take(index):
                    return

    for c in range(classes):
        one_of(predicted == c)
    if labels is not None:
        covered = {int(labels[i]) for i in chosen}
        for c in range(classes):
            if c not in covered:
                one_of(labels == c)
    good = np.flatnonzero(tiers[0])
    boundary = (count - len(chosen) + 1) // 2
    for index in _order(good, lead):
        if boundary <= 0:
            break
        boundary -= take(index)
    remaining = [i for i in _order(good, top) if i not in chosen]
    if remaining and len(chosen) < count:
        spots = np.linspace(0, len(remaining) - 1, min(count - len(chosen), len(remaining)))
        for spot in spots:
            take(remaining[int(round(spot))])
    for tier in tiers:
        for index in _order(np.flatnonzero(tier), top):
            take(index)
    picked = np.array(chosen, dtype=np.int64)
    stats = {
        "count": len(picked),
        "predicted_classes": sorted({int(predicted[i]) for i in picked}),
        "true_classes": sorted({int(labels[i]) for i in picked}) if labels is not None else None,
        "max_top_probability": round(float(top[picked].max()), 4) if len(picked) else None,
        "min_top1_margin": round(float(lead[picked].min()), 4) if len(picked) else None,
        "saturated": int((~unsaturated[picked]).sum()),
        "clear_margin": round(float(margin), 4),
        "pool_size": int(n),
    }
    return picked, stats
