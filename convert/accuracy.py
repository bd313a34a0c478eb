"""The accuracy check: a converted model against its Keras original, on the same images.

Example:
    >>> report = compare(keras_probs, tflite_probs, labels, class_names)
    >>> failures = gate_failures(report, max_drop=1.0, max_class_drop=3.0)
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
from tqdm import tqdm

from edge.interpreter import TFLiteModel


def keras_probabilities(model: Any, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Keras model outputs for uint8 model inputs (N, h, w, c), with a progress bar."""
    out = []
    for start in tqdm(range(0, len(images), batch_size), desc="accuracy check: keras", unit="batch", leave=False):
        batch = images[start : start + batch_size].astype(np.float32)
        out.append(np.asarray(model.predict_on_batch(batch), np.float32))
    return np.concatenate(out) if out else np.empty((0, 0), np.float32)


def tflite_probabilities(model: TFLiteModel, images: np.ndarray, desc: str) -> np.ndarray:
    """Dequantized TFLite outputs for uint8 model inputs, with a progress bar."""
    rows = [model.predict(x) for x in tqdm(images, desc=f"accuracy check: {desc}", unit="img", leave=False)]
    return np.stack(rows) if rows else np.empty((0, model.output_size), np.float32)


def confusion(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion matrix, rows = true class, columns = predicted class."""
    matrix = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def _per_class(matrix: np.ndarray) -> np.ndarray:
    totals = matrix.sum(axis=1)
    return np.where(totals > 0, np.diag(matrix) / np.maximum(totals, 1), np.nan)


def compare(keras_probs: np.ndarray, tflite_probs: np.ndarray, labels: np.ndarray,
            class_names: list[str]) -> dict[str, Any]:
    """Overall and per-class accuracy of both, agreement, probability difference, confusion matrices.

    Accuracies are in percent; drops in percentage points (Keras minus TFLite).
    """
    n = len(class_names)
    keras_pred, tflite_pred = keras_probs.argmax(1), tflite_probs.argmax(1)
    keras_cm, tflite_cm = confusion(labels, keras_pred, n), confusion(labels, tflite_pred, n)
    keras_class, tflite_class = _per_class(keras_cm) * 100, _per_class(tflite_cm) * 100
    keras_acc = float((keras_pred == labels).mean() * 100)
    tflite_acc = float((tflite_pred == labels).mean() * 100)
    per_class = {
        name: {"keras": _num(k), "tflite": _num(t), "drop": _num(k - t), "count": int(keras_cm[i].sum())}
        for i, (name, k, t) in enumerate(zip(class_names, keras_class, tflite_class, strict=True))
    }
    return {
        "images": int(len(labels)),
        "keras_accuracy": round(keras_acc, 4),
        "tflite_accuracy": round(tflite_acc, 4),
        "drop": round(keras_acc - tflite_acc, 4),
        "agreement": round(float((keras_pred == tflite_pred).mean() * 100), 4),
        "mean_abs_prob_diff": float(np.abs(keras_probs - tflite_probs).mean()),
        "per_class": per_class,
        "confusion_keras": keras_cm.tolist(),
        "confusion_tflite": tflite_cm.tolist(),
        "confusion_diff": (tflite_cm - keras_cm).tolist(),
    }


def _num(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 4)


def gate_failures(report: dict[str, Any], max_drop: float, max_class_drop: float) -> list[str]:
    """Human-readable reasons the gates fail (empty when they pass)."""
    failures = []
    if report["drop"] > max_drop:
        failures.append(
            f"overall accuracy dropped {report['drop']:.2f} pt "
            f"({report['keras_accuracy']:.2f}% -> {report['tflite_accuracy']:.2f}%), "
            f"over --max-drop {max_drop:g} by {report['drop'] - max_drop:.2f} pt"
        )
    for name, row in report["per_class"].items():
        if row["drop"] is not None and row["drop"] > max_class_drop:
            failures.append(
                f"class {name!r} dropped {row['drop']:.2f} pt ({row['keras']:.2f}% -> {row['tflite']:.2f}%, "
                f"{row['count']} images), over --max-class-drop {max_class_drop:g} by "
                f"{row['drop'] - max_class_drop:.2f} pt"
            )
    return failures


def absolute_gate(report: dict[str, Any], min_class_images: int, force: bool) -> dict[str, Any]:
    """The absolute gate on the converted model (what ships): better than always answering the
    majority class, no class with >= min_class_images images at 0 recall (edge.metrics).
    `refused` holds the failures that stop the bundle (none when forced)."""
    from edge.metrics import absolute_failures, absolute_thresholds, scores_from_confusion

    names = list(report["per_class"])
    shipped = scores_from_confusion(report["confusion_tflite"], names)
    failures = absolute_failures(shipped, min_class_images)
    return {**absolute_thresholds(shipped, min_class_images), "accuracy": round(shipped.accuracy, 6),
            "passed": not failures, "failures": failures, "forced": bool(force and failures),
            "refused": [] if force else [f"absolute gate: {f} (--force writes the bundle anyway)" for f in failures]}


def latency(flatbuffer: bytes, sample: np.ndarray, runs: int = 200) -> dict[str, Any]:
    """Per-frame latency (ms) p50/p99 with 1 thread and with all cores, same interpreter as the car."""
    result: dict[str, Any] = {}
    cores = os.cpu_count() or 1
    for label, threads in (("1_thread", 1), (f"{cores}_threads", cores)):
        model = TFLiteModel(flatbuffer, num_threads=threads)
        for x in sample[:5]:
            model.raw_invoke(x)
        times = []
        for i in range(runs):
            x = sample[i % len(sample)]
            start = time.perf_counter()
            model.raw_invoke(x)
            times.append((time.perf_counter() - start) * 1000)
        result[label] = {"threads": threads, "p50_ms": round(float(np.percentile(times, 50)), 4),
                         "p99_ms": round(float(np.percentile(times, 99)), 4), "runs": runs}
    return result
