"""The chapter's summary block, the fit diagnosis and the loss/accuracy curves."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

SUMMARY_LABELS = [("training_time_s", "Training time"), ("min_loss", "Min Loss"),
                  ("min_val_loss", "Min Validation Loss"), ("max_accuracy", "Max Accuracy"),
                  ("max_val_accuracy", "Max Validation Accuracy")]


def _finite(values: list[float]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def summarize(history: dict[str, list[float]], training_time_s: float, total_params: int,
              checkpoint: str = "best") -> dict[str, Any]:
    """The chapter's five figures plus params, the best epoch (1-based, by val loss) and the epoch the
    run kept (`checkpoint`: "best", or "last": the last epoch with a finite val loss)."""
    def best(key: str, fn: Any) -> float | None:
        values = _finite(history.get(key, []))
        return float(fn(values)) if values else None

    val_loss = history.get("val_loss", [])
    finite = [(v, i) for i, v in enumerate(val_loss) if v is not None and math.isfinite(v)]
    return {
        "training_time_s": round(float(training_time_s), 3),
        "min_loss": best("loss", min), "min_val_loss": best("val_loss", min),
        "max_accuracy": best("accuracy", max), "max_val_accuracy": best("val_accuracy", max),
        "total_params": int(total_params),
        "epochs_run": len(history.get("loss", [])),
        "best_epoch": (min(finite)[1] + 1) if finite else None,
        "checkpoint": checkpoint,
        "kept_epoch": (max(finite, key=lambda vi: vi[1]) if checkpoint == "last" else min(finite))[1] + 1
        if finite else None,
    }


def summary_block(summary: dict[str, Any]) -> str:
    """The block the chapter prints after each run."""
    lines = [f"Total params: {summary['total_params']:,}"]
    for key, label in SUMMARY_LABELS:
        value = summary.get(key)
        lines.append(f"{label}: {value:.4f}" if isinstance(value, float) else f"{label}: {value}")
    return "\n".join(lines)


def diagnose(history: dict[str, list[float]], num_classes: int = 10, low_accuracy: float | None = None,
             rise_tolerance: float = 0.02, health: dict[str, Any] | None = None) -> dict[str, Any]:
    """Collapsed, underfitting, overfitting or good fit, from a Keras history and the collapse check.

    - collapsed: `health` (train.training.health.check_model) found the model no better than the
      majority class, answering one class, or never finding a class: the curves say nothing
      then (a collapsed model's training loss still falls), so no other verdict is given;

    - underfitting: training accuracy stays low (below `low_accuracy`, default halfway between
      chance and 1) - "flat" if it gained less than 2 points over the last half of the epochs;
    - overfitting: validation loss bottomed at epoch k before the last epoch and rose by more than
      `rise_tolerance` (relative) afterwards while training loss kept falling;
    - good fit: neither.

    Example:
        >>> diagnose({"loss": [2, 1, .5, .2], "val_loss": [1.5, 1.0, 1.2, 1.6],
        ...           "accuracy": [.4, .7, .9, .95], "val_accuracy": [.5, .6, .6, .58]})["verdict"]
        'overfitting'
    """
    accuracy = _finite(history.get("accuracy", []))
    val_loss = history.get("val_loss", [])
    loss = history.get("loss", [])
    chance = 1.0 / max(num_classes, 1)
    threshold = low_accuracy if low_accuracy is not None else chance + (1 - chance) / 2
    finite_val = [(v, i) for i, v in enumerate(val_loss) if v is not None and math.isfinite(v)]
    best_epoch = (min(finite_val)[1] + 1) if finite_val else None
    result: dict[str, Any] = {"best_epoch": best_epoch}
    if health and health.get("collapsed"):
        result.update(verdict="collapsed", detail=health.get("advice") or "; ".join(
            f["message"] for f in health.get("findings", [])))
        return result
    if accuracy and max(accuracy) < threshold:
        half = accuracy[len(accuracy) // 2:]
        gain = half[-1] - half[0] if len(half) > 1 else 0.0
        flat = gain < 0.02
        result.update(verdict="underfitting", detail=(
            f"training accuracy stays low (max {max(accuracy):.3f} < {threshold:.3f}"
            + (", flat" if flat else f", still rising {gain:+.3f}") + "): "
            + ("give the model more capacity (filters, neurons, layers)" if flat else "train longer or add capacity")))
        return result
    if finite_val and best_epoch is not None and best_epoch < len(val_loss):
        min_val = finite_val and min(finite_val)[0]
        last_val = finite_val[-1][0]
        train_after = _finite(loss[best_epoch - 1:])
        if last_val > min_val * (1 + rise_tolerance) and len(train_after) > 1 and train_after[-1] < train_after[0]:
            result.update(verdict="overfitting", detail=(
                f"validation loss bottomed at epoch {best_epoch} ({min_val:.4f}) and rose to {last_val:.4f} "
                f"by epoch {len(val_loss)} while training loss kept falling: stop at epoch {best_epoch} "
                "(early stopping), add augmentation/dropout or use a smaller model"))
            return result
    result.update(verdict="good fit", detail=(
        f"training accuracy reached {max(accuracy):.3f}; validation loss best at epoch {best_epoch}"
        if accuracy else "no history"))
    return result


def _save_figure(fig: Any, title: str, path: Path) -> Path:
    """Title, lay out, write (100 dpi) and close a figure; the folder is made if needed."""
    import matplotlib.pyplot as plt

    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_curves(history: dict[str, list[float]], path: Path, title: str = "", kept_epoch: int | None = None,
                kept_why: str = "lowest val loss") -> Path:
    """Loss and accuracy, training against validation, like the chapter's Figures 5.5 and 5.6; a dotted line
    marks the epoch whose model the run kept."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, label in ((axes[0], "loss", "loss"), (axes[1], "accuracy", "accuracy")):
        for prefix, style, name in (("", "-o", "training"), ("val_", "-s", "validation")):
            values = history.get(prefix + key)
            if values:
                ax.plot(range(1, len(values) + 1), values, style, markersize=3, label=f"{name} {label}")
        if kept_epoch:
            ax.axvline(kept_epoch, color="gray", linestyle=":", label=f"kept: epoch {kept_epoch} ({kept_why})")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    return _save_figure(fig, title, path)


def run_report(summary: dict[str, Any]) -> str:
    """What every run prints after its summary block: per-class scores (val, test) and the verdict."""
    from edge.metrics import scores_from_confusion

    lines = []
    for key, title in (("val_scores", "validation"), ("test_scores", "test")):
        if summary.get(key):
            table = scores_from_confusion(summary[key]["confusion"], summary[key]["class_names"]).table()
            lines += [f"Per class on {title}:", table]
    diagnosis = summary.get("diagnosis") or {}
    lines.append(f"Fit: {diagnosis.get('verdict')} - {diagnosis.get('detail')}")
    warning = (summary.get("health") or {}).get("warning")
    if warning:
        lines.append(f"Warning: {warning}")
    return "\n".join(lines)


def plot_confusion(val: dict[str, Any], path: Path, test: dict[str, Any] | None = None, title: str = "") -> Path:
    """Confusion matrices (rows = truth) of val and test, counts in each cell, recall on the diagonal's row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    panels = [("validation", val)] + ([("test", test)] if test else [])
    names = list(val["class_names"])
    size = max(4.0, 0.55 * len(names) + 2.5)
    fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size), squeeze=False)
    for ax, (name, scores) in zip(axes[0], panels, strict=True):
        matrix = np.asarray(scores["confusion"])
        shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                    color="white" if shares[i, j] > 0.6 else "black")
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_yticks(range(len(names)), [f"{n} ({'-' if r is None else f'{r * 100:.0f}%'})"
                                          for n, r in zip(names, scores["recall"], strict=True)])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true (recall)")
        ax.set_title(f"{name}: accuracy {scores['accuracy'] * 100:.1f}% "
                     f"(majority {scores['majority_share'] * 100:.1f}%)")
    return _save_figure(fig, title, path)
