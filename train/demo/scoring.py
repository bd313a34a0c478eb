"""Scoring the runtime's JSON lines against the drive's truth, per condition, before vs after.

Example:
    >>> score(records, conditions)["fog"]
    Score(frames=412, correct=198)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Score:
    frames: int
    correct: int

    @property
    def accuracy(self) -> float | None:
        return 100.0 * self.correct / self.frames if self.frames else None

    def text(self) -> str:
        return "-" if self.accuracy is None else f"{self.accuracy:.1f}%"


def score(records: list[dict[str, Any]], conditions: list[str], critical: str | None = None) -> dict[str, Score]:
    """Accuracy overall, per drive condition (day/night/fog...) and on frames whose truth is `critical`.

    Args:
        records: the runtime's JSON lines (with "frame", "label", "truth").
        conditions: the condition of each frame index of the drive (edge.synthetic.drive_conditions).
        critical: a class to score on its own (e.g. "red").
    """
    groups: dict[str, list[bool]] = {"overall": []}
    for record in records:
        ok = record["label"] == record["truth"]
        groups["overall"].append(ok)
        groups.setdefault(conditions[int(record["frame"])], []).append(ok)
        if critical is not None and record["truth"] == critical:
            groups.setdefault(f"{critical} light", []).append(ok)
    order = ["overall", *sorted(k for k in groups if k != "overall" and not k.endswith(" light")),
             *(k for k in groups if k.endswith(" light"))]
    return {key: Score(len(groups[key]), int(sum(groups[key]))) for key in order}


def condition_summary(scores: dict[str, Score]) -> str:
    """"71.2% (day 85.0%, fog 51.3%)"."""
    parts = [f"{k} {s.text()}" for k, s in scores.items() if k != "overall"]
    return f"{scores['overall'].text()} ({', '.join(parts)})"


def before_after_table(before: dict[str, Score], after: dict[str, Score], old: str, new: str) -> list[str]:
    """Plain-text table rows: what, frames, accuracy before, after, change."""
    rows = [f"{'':<12}{'frames':>8}{old:>10}{new:>10}{'change':>10}"]
    for key, was in before.items():
        now = after.get(key)
        if now is None or was.accuracy is None or now.accuracy is None:
            continue
        rows.append(f"{key:<12}{was.frames:>8}{was.text():>10}{now.text():>10}"
                    f"{now.accuracy - was.accuracy:>+9.1f}pt")
    return rows


def confusion(records: list[dict[str, Any]], class_names: list[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(class_names)}
    matrix = np.zeros((len(class_names), len(class_names)), int)
    for record in records:
        matrix[index[record["truth"]], index[record["label"]]] += 1
    return matrix


def plot_drive(path: Path, before: list[dict[str, Any]], after: list[dict[str, Any]],
               scores: tuple[dict[str, Score], dict[str, Score]], names: tuple[str, str],
               class_names: list[str], title: str) -> Path:
    """Both confusion matrices on the same frames and accuracy per condition, before vs after."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, records, name, result in zip(axes[:2], (before, after), names, scores, strict=True):
        matrix = confusion(records, class_names)
        ax.imshow(matrix, cmap="Blues")
        ax.set_title(f"{name}: {result['overall'].text()}")
        ax.set_xticks(range(len(class_names)), class_names, rotation=45)
        ax.set_yticks(range(len(class_names)), class_names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, str(value), ha="center", va="center", fontsize=8)
    keys = [k for k in scores[0] if scores[0][k].accuracy is not None and k in scores[1]]
    x = np.arange(len(keys))
    for offset, result, name in ((-0.2, scores[0], names[0]), (0.2, scores[1], names[1])):
        axes[2].bar(x + offset, [result[k].accuracy for k in keys], width=0.4, label=name)
    axes[2].set_xticks(x, keys)
    axes[2].set_ylim(0, 100)
    axes[2].set_ylabel("accuracy (%)")
    axes[2].legend()
    axes[2].set_title("same frames, per condition")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
