"""train(TrainConfig) -> RunResult: one training run, written to a run folder.

Run folder (see docs/training.md): model.keras (best by validation loss), spec.json,
history.json, history.csv, summary.json (with per-class scores and the collapse check),
curves.png, confusion.png, run.json (with the recipe: what was chosen and why).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.errors import UserError
from edge.preprocess import PreprocessSpec
from edge.verbosity import keras_verbosity
from train.augment import AugmentConfig
from train.models import PRESETS, ModelSpec, build_model, load_spec
from train.training.analysis import (
    diagnose,
    plot_confusion,
    plot_curves,
    run_report,
    summarize,
    summary_block,
)
from train.training.config import RunResult, TrainConfig
from train.training.health import check_model
from train.training.keras_internals import prepare_multi_worker
from train.training.pipeline import eval_dataset, train_dataset
from train.training.recipe import resolve as resolve_recipe

if TYPE_CHECKING:
    from train.training.callbacks import EpochRecorder

log = logging.getLogger(__name__)
MAX_BUDGET_EPOCHS = 10_000  # --time-budget: the budget, not an epoch count, ends training


def make_strategy(name: str) -> Any:
    """tf.distribute strategy for "default", "mirrored" or "multi-worker" (reads TF_CONFIG)."""
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        if not os.environ.get("TF_CONFIG"):
            raise UserError("--strategy multi-worker needs the TF_CONFIG environment variable "
                            "(cluster and task): see docs/training.md")
        try:
            json.loads(os.environ["TF_CONFIG"])
        except ValueError as error:
            raise UserError(f"TF_CONFIG is not valid JSON: {error}") from error
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief(strategy: Any) -> bool:
    """True unless this process is a non-chief worker of a multi-worker cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_type is None:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def seed_everything(seed: int, deterministic: bool) -> None:
    """Python, NumPy and TensorFlow seeds; deterministic ops on CPU (see docs for GPUs)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def resolve_split(data: Any, config: TrainConfig, out: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Train/val/test indices, and how they were chosen (for run.json)."""
    from train.data import file_sha256

    subsets = np.asarray(getattr(data, "subsets", np.array([""] * len(data.labels))))
    if config.split_file:
        from train.splits import load_split

        split = load_split(config.split_file)
        indices = split.indices(data)
        info = {"split_file": str(config.split_file), "split_sha256": file_sha256(config.split_file)}
    elif {"train", "test"} <= set(subsets.tolist()):
        train_idx, test_idx = np.flatnonzero(subsets == "train"), np.flatnonzero(subsets == "test")
        indices = {"train": train_idx, "val": test_idx, "test": test_idx}
        info = {"split_file": None, "split_sha256": None,
                "split_note": "dataset's own subsets: train on 'train', validate on 'test' (as the chapter does)"}
    else:
        from train.splits import make_split

        split = make_split(data)
        split_path = out / "split.json"
        out.mkdir(parents=True, exist_ok=True)
        split.save(split_path)
        indices = split.indices(data)
        info = {"split_file": str(split_path), "split_sha256": file_sha256(split_path),
                "split_note": "no split file given: made one (group hash, 70/15/15) and saved it in the run folder"}
    indices = {k: np.asarray(v, np.int64) for k, v in indices.items()}
    if config.validation == "test":
        indices["val"] = indices["test"]
    if config.limit:
        rng = np.random.default_rng(0)
        indices = {k: np.sort(rng.permutation(v)[: config.limit]) for k, v in indices.items()}
    for key in ("train", "val"):
        if len(indices.get(key, [])) == 0:
            raise UserError(f"the {key} split is empty: use a bigger dataset or another split file")
    return indices, info


def _optimizer(config: TrainConfig, steps_per_epoch: int) -> Any:
    import keras

    lr: Any = config.learning_rate
    total = max(1, steps_per_epoch * config.epochs)
    # under --time-budget, train.training.time_budget.TimeBudget sets the rate every step
    schedule = "constant" if config.time_budget else config.lr_schedule
    if schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=total, alpha=0.01)
    elif schedule == "onecycle":  # linear warm-up for 30% of the steps, then cosine to ~0
        warmup = max(1, int(0.3 * total))
        lr = keras.optimizers.schedules.CosineDecay(
            config.learning_rate / 25, decay_steps=max(1, total - warmup), alpha=1e-3,
            warmup_target=config.learning_rate, warmup_steps=warmup)
    kwargs: dict[str, Any] = {"learning_rate": lr}
    if config.weight_decay and config.optimizer != "adam":
        kwargs["weight_decay"] = config.weight_decay
    return {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
            "sgd": lambda **kw: keras.optimizers.SGD(momentum=0.9, nesterov=True, **kw),
            "rmsprop": keras.optimizers.RMSprop}[config.optimizer](**kwargs)


def _spec_for(config: TrainConfig) -> ModelSpec:
    if config.init_model:
        sibling = Path(config.init_model).parent / "spec.json"
        if sibling.exists():
            return load_spec(sibling)
    return load_spec(config.model)


def _class_weight(kind: bool | str | None, train_labels: np.ndarray, num_classes: int) -> dict[int, float] | None:
    """None, balanced (n / (k * count)) or their square roots rescaled to average 1 per image."""
    if not kind:
        return None
    from train.splits import class_weights

    weights = class_weights(train_labels, num_classes)
    if kind == "sqrt":
        counts = np.bincount(train_labels, minlength=num_classes)
        root = {k: float(np.sqrt(w)) for k, w in weights.items()}
        scale = len(train_labels) / max(1e-9, sum(root[k] * counts[k] for k in root))
        weights = {k: w * scale for k, w in root.items()}
    return weights


def _load_init_model(path: str, num_classes: int, input_shape: tuple[int, ...],
                     bn_momentum: float | None = None) -> Any:
    import keras

    if not Path(path).is_file():
        raise UserError(f"init model {path} does not exist: give a model.keras from an earlier run")
    try:
        model = keras.models.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises many types for a bad file
        raise UserError(f"cannot load init model {path}: {error}") from error
    if int(model.output_shape[-1]) != num_classes:
        raise UserError(f"init model {path} has {model.output_shape[-1]} outputs but the dataset has "
                        f"{num_classes} classes: fine-tuning needs the same classes")
    if tuple(model.input_shape[1:]) != tuple(input_shape):
        raise UserError(f"init model {path} takes {list(model.input_shape[1:])} images but the dataset has "
                        f"{list(input_shape)}: load it at the model's size (--image-size)")
    if bn_momentum is not None:
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = float(bn_momentum)
    return model


def train(config: TrainConfig, dataset: Any = None, callbacks: list[Any] | None = None) -> RunResult:
    """Train one model and write its run folder.

    Args:
        config: what to train (TrainConfig).
        dataset: an already loaded train.data.Dataset (else config.dataset is loaded).
        callbacks: extra Keras callbacks.

    Example:
        >>> result = train(TrainConfig(dataset="synthetic:n=400", model="baseline", epochs=2, out="runs/x"))
        >>> result.summary["max_val_accuracy"]  # doctest: +SKIP
    """
    strategy = make_strategy(config.strategy)  # first: multi-worker must start before other TF work
    seed_everything(config.seed, config.deterministic)
    chief = is_chief(strategy)
    out = Path(config.out) if chief else Path(tempfile.mkdtemp(prefix="edgekit-worker-"))
    spec = _spec_for(config)
    dataset, images, labels = _load_images(config, spec, dataset)
    class_names = list(dataset.class_names)
    spec = spec.with_input_shape(tuple(images.shape[1:]))
    indices, split_info = resolve_split(dataset, config, out)
    out.mkdir(parents=True, exist_ok=True)
    config, recipe_record = resolve_recipe(config, len(indices["train"]),
                                           np.bincount(labels[indices["train"]], minlength=len(class_names)).tolist(),
                                           tuple(images.shape[1:3]), len(indices["val"]))
    if chief and config.verbose and recipe_record["chosen"]:
        print("recipe: " + "; ".join(f"{k} {v}" for k, v in recipe_record["chosen"].items() if k != "augment"))
    train_ds, val_ds, steps = _datasets(config, images, labels, indices, len(class_names))
    model = _compiled_model(config, spec, strategy, images.shape[1:], len(class_names), steps)
    if chief and config.verbose:
        model.summary(print_fn=lambda line, **_: print(line))

    model_path = out / "model.keras"
    if model_path.exists():
        model_path.unlink()  # never leave an older run's model next to this run's history
    if config.strategy == "multi-worker":
        prepare_multi_worker(model, strategy, train_ds)
    budget = _time_budget(config, steps)
    recorder, status, message, training_time = _fit(config, strategy, model, train_ds, val_ds, model_path,
                                                    list(callbacks or []) + ([budget] if budget else []))
    history = recorder.history
    if budget and status == "early-stopped" and len(history.get("loss", [])) >= budget.planned_epochs:
        status = "completed"  # the budget's last planned epoch, not early stopping
    summary = _summary(config, model, history, training_time, status, steps, len(class_names))
    if chief and status != "interrupted" and model_path.exists():
        summary.update(_best_model_checks(config, model_path, images, labels, indices, class_names, summary))
        summary["diagnosis"] = diagnose(history, len(class_names), health=summary["health"])

    if chief:
        _write_run_folder(out, config, spec, history, summary, dataset, class_names, split_info, indices,
                          recipe_record, budget.plan if budget else None)
        if config.verbose:
            print(summary_block(summary))
            print(run_report(summary))
            if message:
                print(message)
    if not chief:  # a non-chief worker's copy of the run is not needed
        import shutil

        shutil.rmtree(out, ignore_errors=True)
    return RunResult(out=out, status=status, summary=summary, history=history, message=message)


def _time_budget(config: TrainConfig, steps: int) -> Any:
    """The TimeBudget callback of a --time-budget run (else None); it sizes epochs and the schedule."""
    if not config.time_budget:
        return None
    from train.training.time_budget import TimeBudget  # imports Keras

    return TimeBudget(config.time_budget, config.learning_rate, steps, config.lr_schedule,
                      first_guess_epochs=config.epochs or 15)


def _load_images(config: TrainConfig, spec: ModelSpec, dataset: Any) -> tuple[Any, np.ndarray, np.ndarray]:
    """(dataset, uint8 images (N, H, W, C), int64 labels), loading config.dataset when none is given."""
    if dataset is None:
        from train.data import load_dataset

        dataset = load_dataset(config.dataset, image_size=config.image_size or spec.image_size)
    images, labels = dataset.images, np.asarray(dataset.labels, np.int64)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise UserError(f"dataset images must be uint8 (N, H, W, C), got {images.dtype} {images.shape}")
    return dataset, images, labels


def _datasets(config: TrainConfig, images: np.ndarray, labels: np.ndarray, indices: dict[str, np.ndarray],
              num_classes: int) -> tuple[Any, Any, int]:
    """(augmented, weighted training tf.data, validation tf.data, steps per epoch)."""
    augment = AugmentConfig.from_dict(config.augment or {})
    class_weight = _class_weight(config.class_weights, labels[indices["train"]], num_classes)
    train_ds = train_dataset(images[indices["train"]], labels[indices["train"]], num_classes,
                             config.batch_size, config.seed, augment, class_weight)
    val_ds = eval_dataset(images[indices["val"]], labels[indices["val"]], num_classes, config.batch_size)
    return train_ds, val_ds, math.ceil(len(indices["train"]) / config.batch_size)


def _compiled_model(config: TrainConfig, spec: ModelSpec, strategy: Any, input_shape: tuple[int, ...],
                    num_classes: int, steps: int) -> Any:
    """The model to train (built from the spec, or the init model to fine-tune), compiled under the strategy."""
    import keras

    with strategy.scope():
        model = (_load_init_model(config.init_model, num_classes, input_shape, config.bn_momentum)
                 if config.init_model else build_model(spec, num_classes, config.bn_momentum))
        model.compile(optimizer=_optimizer(config, steps),
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
                      metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
    return model


def _fit(config: TrainConfig, strategy: Any, model: Any, train_ds: Any, val_ds: Any, model_path: Path,
         extra_callbacks: list[Any]) -> tuple[EpochRecorder, str, str, float]:
    """Run fit(); (recorder, status, message for the user, seconds). Ctrl-C and a NaN loss end it cleanly."""
    import keras

    from train.training.callbacks import Checkpoint, EpochRecorder  # imports Keras

    recorder = EpochRecorder()
    fit_callbacks = [recorder, Checkpoint(model_path, config.checkpoint)]
    if config.patience:
        fit_callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.patience, restore_best_weights=config.restore_best))
    fit_callbacks += extra_callbacks
    status, message = "completed", ""
    start = time.perf_counter()
    try:
        with strategy.scope():
            model.fit(train_ds, validation_data=val_ds, epochs=MAX_BUDGET_EPOCHS if config.time_budget else config.epochs,
                      callbacks=fit_callbacks,
                      shuffle=False, verbose=keras_verbosity(config.verbose))
    except KeyboardInterrupt:
        status = "interrupted"
        message = (f"stopped by Ctrl-C after {len(recorder.history.get('loss', []))} finished epoch(s); "
                   + (f"{'last' if config.checkpoint == 'last' else 'best'} model so far kept in {model_path}"
                      if model_path.exists()
                      else "no epoch finished, so no model was saved"))
    training_time = time.perf_counter() - start
    if recorder.nan_at:
        epoch, batch = recorder.nan_at
        status = "nan"
        message = (f"loss became NaN at epoch {epoch}, batch {batch}: training stopped. "
                   + (f"{model_path} keeps the last good checkpoint (best validation loss before it). "
                      if model_path.exists() else "No epoch had finished, so no model was saved. ")
                   + "Lower the learning rate (--lr) or check the data.")
    elif status == "completed" and len(recorder.history.get("loss", [])) < config.epochs:
        status = "early-stopped"
    return recorder, status, message, training_time


def _summary(config: TrainConfig, model: Any, history: dict[str, list[float]], training_time: float, status: str,
             steps: int, num_classes: int) -> dict[str, Any]:
    """The curves' figures and the diagnosis, before the kept model is checked."""
    summary = summarize(history, training_time, model.count_params(), config.checkpoint)
    summary["diagnosis"] = diagnose(history, num_classes)
    summary["status"] = status
    summary["steps"] = steps * len(history.get("loss", []))
    for key in ("val_loss", "val_accuracy"):
        if history.get(key):
            summary[f"final_{key}"] = history[key][-1]
    return summary


def _best_model_checks(config: TrainConfig, model_path: Path, images: np.ndarray, labels: np.ndarray,
                       indices: dict[str, np.ndarray], class_names: list[str], summary: dict[str, Any]) -> dict[str, Any]:
    """Per-class scores and the collapse check of the saved (kept) model (train.training.health)."""
    import keras

    best = keras.models.load_model(model_path, safe_mode=True)
    with_test = (config.validation == "val" and len(indices.get("test", []))
                 and not np.array_equal(indices["test"], indices["val"]))
    return check_model(best, images, labels, indices, class_names, config.batch_size,
                       with_test=bool(with_test), recipe=config, steps=summary["steps"])


def _write_run_folder(out: Path, config: TrainConfig, spec: ModelSpec, history: dict[str, list[float]],
                      summary: dict[str, Any], dataset: Any, class_names: list[str],
                      split_info: dict[str, Any], indices: dict[str, np.ndarray],
                      recipe_record: dict[str, Any], budget: dict[str, Any] | None = None) -> None:
    import keras
    import tensorflow as tf

    from train.data.refs import fingerprint

    (out / "spec.json").write_text(json.dumps(spec.to_dict(), indent=2) + "\n")
    (out / "history.json").write_text(json.dumps(history, indent=2) + "\n")
    with open(out / "history.csv", "w", newline="") as handle:
        keys = list(history)
        writer = csv.writer(handle)
        writer.writerow(["epoch", *keys])
        for epoch in range(len(history.get("loss", []))):
            writer.writerow([epoch + 1, *(history[k][epoch] if epoch < len(history[k]) else "" for k in keys)])
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if history.get("loss"):
        plot_curves(history, out / "curves.png", kept_epoch=summary.get("kept_epoch"),
                    kept_why="last" if config.checkpoint == "last" else "lowest val loss",
                    title=f"{spec.name}: {summary['diagnosis']['verdict']}")
    if summary.get("val_scores"):
        plot_confusion(summary["val_scores"], out / "confusion.png",
                       test=summary.get("test_scores"), title=f"{spec.name}: {summary['diagnosis']['verdict']}")
    ref_path = Path(config.dataset) if config.dataset else None
    preprocess = getattr(dataset, "preprocess", None) or PreprocessSpec(
        input_size=spec.input_shape[:2], color="rgb" if spec.input_shape[2] == 3 else "gray")
    labels = np.asarray(dataset.labels)
    run = {
        "dataset": config.dataset,
        "dataset_sha256": fingerprint(ref_path) if ref_path else None,  # a shard set: its index's
        **split_info,
        "split_sizes": {k: int(len(v)) for k, v in indices.items()},
        "class_names": class_names,
        "training_distribution": {name: float(np.mean(labels[indices["train"]] == i))
                                  for i, name in enumerate(class_names)},
        "preprocess": preprocess.to_dict(),
        "model_name": spec.name,
        "preset": config.model if config.model in PRESETS and not config.init_model else None,
        "seed": config.seed, "epochs": config.epochs, "batch_size": config.batch_size,
        "recipe": recipe_record,
        "budget": budget,
        "parent_model": config.init_model,
        "status": summary["status"],
        "config": config.to_dict(),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                     "python": platform.python_version(), "machine": platform.machine()},
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (out / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    if budget:
        (out / "budget.json").write_text(json.dumps(budget, indent=2) + "\n")
