"""`make bench-train`'s cost figures (issue 17): where an epoch's time goes, the int8 latency of every
preset, a time-budgeted car-resnet8 run (accuracy at 15/30/60 min, float and int8 test accuracy on
two interpreters), and the accuracy-vs-MACs picture. bench/training.py calls these and writes the report.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.paths import shown

BUDGET_PRESET = "car-resnet8"
MARKS_MIN = (15, 30, 60)


def _train_split(dataset: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    subsets = np.asarray(dataset.subsets)
    train, test = subsets == "train", subsets == "test"
    labels = np.asarray(dataset.labels, np.int64)
    return dataset.images[train], labels[train], dataset.images[test], labels[test]


def time_split(dataset: Any, preset: str = BUDGET_PRESET, images: int = 10_000, repeats: int = 2) -> dict[str, Any]:
    """One epoch's time split into input pipeline and compute, on `images` training images.

    pipeline: iterating the augmented training tf.data pipeline alone (no model);
    compute: fit() over the same number of steps on one batch held in memory (no input work);
    epoch: fit() with the real pipeline (prefetch overlaps the two). Medians of `repeats`
    alternated measurements after one warm-up each, so a busy neighbour skews all three alike.
    """
    import keras
    import tensorflow as tf

    from train.augment import AugmentConfig
    from train.models import build_model, load_spec
    from train.training.pipeline import train_dataset
    from train.training.recipe import auto_choices

    x, y, _, _ = _train_split(dataset)
    x, y = x[:images], y[:images]
    choices, _ = auto_choices(50_000, np.bincount(y, minlength=10).tolist(), x.shape[1:3])  # CIFAR-10's recipe
    batch = int(choices["batch_size"])
    augment = AugmentConfig.from_dict(choices["augment"])
    steps = -(-len(x) // batch)
    pipeline = train_dataset(x, y, 10, batch, seed=1, augment=augment)
    model = build_model(load_spec(preset), 10, choices["bn_momentum"])
    model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy")
    first = next(iter(pipeline))
    in_memory = tf.data.Dataset.from_tensors(first).repeat(steps)
    times: dict[str, list[float]] = {"pipeline": [], "compute": [], "epoch": []}

    def pipeline_pass() -> None:
        for _ in pipeline:
            pass

    runs = {"pipeline": pipeline_pass,
            "compute": lambda: model.fit(in_memory, epochs=1, verbose=0),
            "epoch": lambda: model.fit(pipeline, epochs=1, verbose=0)}
    for run in runs.values():  # warm-up: tracing, first allocations
        run()
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(values) for name, values in times.items()}
    return {"preset": preset, "images": len(x), "batch_size": batch, "steps": steps, "augment": choices["augment"],
            "seconds": median, "all_seconds": times,
            "pipeline_over_compute": median["pipeline"] / median["compute"],
            "epoch_over_compute": median["epoch"] / median["compute"],
            "per_50k_epoch_s": {name: value * 50_000 / len(x) for name, value in median.items()}}


def int8_latency(presets: list[str], runs: int = 200, baseline: str = "baseline") -> dict[str, Any]:
    """Per-frame latency of each preset's int8 model on this machine's interpreter (the car's kind),
    1 thread and all cores; the weights are untrained (latency does not depend on their values) and
    calibrated on random images. `baseline` is measured in the same run, and every row's ratio to it
    is given, so a busy machine shifts the ratios less than the milliseconds."""
    from convert.accuracy import latency
    from convert.tflite import convert_keras
    from train.models import build_model, load_spec
    from train.models.params import cost

    order = [baseline] + [name for name in presets if name != baseline]
    rng = np.random.default_rng(0)
    sample = rng.integers(0, 256, (32, 32, 32, 3), dtype=np.uint8)
    rows: dict[str, Any] = {}
    for name in order:
        spec = load_spec(name)
        model = build_model(spec)
        flatbuffer = convert_keras(model, "int8", sample[:16])
        measured = latency(flatbuffer, sample, runs=runs)
        spent = cost(spec)
        rows[name] = {"params": spent.params, "macs": spent.macs, "int8_bytes": spent.int8_bytes,
                      "flatbuffer_bytes": len(flatbuffer), **measured}
        print(f"[bench] int8 latency {name}: {json.dumps(measured)}", flush=True)
    base = rows[baseline]
    for row in rows.values():
        for key in row:
            if key.endswith("_thread") or key.endswith("_threads"):
                row[key]["vs_baseline"] = round(row[key]["p50_ms"] / base[key]["p50_ms"], 3)
    return {"baseline": baseline, "runs": runs, "rows": rows}


def at_minutes(plans: list[dict[str, Any]], marks: tuple[int, ...] = MARKS_MIN) -> dict[str, Any]:
    """The validation accuracy of the last epoch finished by each mark (minutes of fit()).

    Example:
        >>> at_minutes([{"elapsed_s": 500, "val_accuracy": 0.5}, {"elapsed_s": 1000, "val_accuracy": 0.6}], (10, 15))
        {'10': 0.5, '15': 0.6}
    """
    result: dict[str, Any] = {}
    for mark in marks:
        done = [p for p in plans if p["elapsed_s"] <= mark * 60]
        result[str(mark)] = done[-1]["val_accuracy"] if done else None
    return result


def _op_versions(flatbuffer: bytes) -> list[str]:
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    return sorted(f"{names.get(max(op.builtinCode, op.deprecatedBuiltinCode), '?')} v{op.version}"
                  for op in model.operatorCodes)


def _accuracy(predict: Any, images: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(predict(images), axis=1) == labels))


def evaluate_budget_run(run: Path, dataset: Any, calibration: int = 500) -> dict[str, Any]:
    """The finished budget run's figures: plan, accuracy at 15/30/60 min, float and int8 test accuracy
    of the best checkpoint, the int8 model run by the car's interpreter (ai_edge_litert) and by
    TensorFlow's, and the int8 ops with their versions."""
    import keras
    import tensorflow as tf

    from convert.tflite import check_full_integer, convert_keras, size_breakdown
    from edge.interpreter import TFLiteModel

    budget = json.loads((run / "budget.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    x_train, _, x_test, y_test = _train_split(dataset)
    model = keras.models.load_model(run / "model.keras", safe_mode=True)
    float_acc = _accuracy(lambda x: model.predict(x.astype(np.float32), batch_size=256, verbose=0), x_test, y_test)
    pick = np.random.default_rng(0).choice(len(x_train), calibration, replace=False)
    flatbuffer = convert_keras(model, "int8", x_train[pick])
    check_full_integer(flatbuffer)
    (run / "model-int8.tflite").write_bytes(flatbuffer)
    car = TFLiteModel(flatbuffer, num_threads=2)
    car_probs = np.stack([car.predict(image) for image in x_test])
    host = tf.lite.Interpreter(model_content=flatbuffer, num_threads=2)
    host.allocate_tensors()
    inp, out = host.get_input_details()[0], host.get_output_details()[0]
    host_top = []
    for image in x_test:
        host.set_tensor(inp["index"], image[None])
        host.invoke()
        host_top.append(int(np.argmax(host.get_tensor(out["index"])[0])))
    car_top = np.argmax(car_probs, axis=1)
    return {"run": shown(run), "budget": budget, "at_minutes": at_minutes(budget["plans"]),
            "final_val_accuracy": summary.get("final_val_accuracy"), "max_val_accuracy": summary.get("max_val_accuracy"),
            "best_epoch": summary.get("best_epoch"), "training_time_s": summary.get("training_time_s"),
            "float_test_accuracy": float_acc, "int8_test_accuracy": float(np.mean(car_top == y_test)),
            "int8_backend": f"{car.backend} {car.backend_version}",
            "int8_host_tf_accuracy": float(np.mean(np.asarray(host_top) == y_test)),
            "int8_interpreters_agree": float(np.mean(np.asarray(host_top) == car_top)),
            "int8_ops": _op_versions(flatbuffer), "int8_size": size_breakdown(flatbuffer),
            "calibration_images": calibration, "test_images": int(len(y_test))}


def plot_accuracy_vs_macs(points: list[dict[str, Any]], path: Path) -> Path:
    """Accuracy against MACs per frame (log scale), one labelled point per preset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for group, marker in (("chapter (5 epochs, batch 32, Adam; mean of seeds)", "o"),
                          ("car presets (their recipe and time; int8 where measured)", "s")):
        rows = [p for p in points if p["group"] == group]
        ax.scatter([p["macs"] for p in rows], [p["accuracy"] for p in rows], marker=marker, label=group)
        for p in rows:
            ax.annotate(f"{p['preset']} ({p['params'] / 1000:.0f}K)", (p["macs"], p["accuracy"]),
                        textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.axhline(0.85, color="grey", linestyle="--", linewidth=1, label="MLPerf Tiny target 85%")
    ax.set_xscale("log")
    ax.set_xlabel("multiply-accumulates per frame (32x32x3)")
    ax.set_ylabel("CIFAR-10 test accuracy")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("CIFAR-10 accuracy vs cost per frame (edgekit presets)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
