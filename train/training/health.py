"""After training: per-class scores of the kept model on val (and test), the collapse check, and
the training-mode vs inference-mode check, in plain words with the likely cause and the fix.

A collapsed model (edge.metrics.collapse_findings: accuracy not clearly above the majority
class, one class for most answers, a class with enough images never found) is never called a
good fit. If the same weights do clearly better with BatchNorm on batch statistics (training
mode) than on its moving statistics (inference mode), the moving statistics are the cause.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.metrics import Scores, collapse_findings, drop_is_real, scores

MODE_CHECK_IMAGES = 256
MODE_GAP_POINTS = 10.0  # training mode must beat inference mode by more than this (and really)


def predict(model: Any, images: np.ndarray, batch_size: int = 256, training: bool = False) -> np.ndarray:
    """Predicted class per image (float32 0-255 pixels in; the model rescales)."""
    out = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].astype(np.float32)
        out.append(np.asarray(model(batch, training=training)).argmax(axis=1))
    return np.concatenate(out) if out else np.empty(0, np.int64)


def mode_check(model: Any, images: np.ndarray, labels: np.ndarray, class_names: list[str],
               batch_size: int) -> dict[str, Any]:
    """Accuracy of one set of images in inference mode and in training mode (BatchNorm on batch
    statistics, batches of the training batch size). The model's weights are restored afterwards:
    a training-mode call moves BatchNorm's moving statistics."""
    images, labels = images[:MODE_CHECK_IMAGES], labels[:MODE_CHECK_IMAGES]
    weights = model.get_weights()
    try:
        inference = scores(labels, predict(model, images), class_names)
        training = scores(labels, predict(model, images, max(2, batch_size), training=True), class_names)
    finally:
        model.set_weights(weights)
    drop = drop_is_real((training.correct, training.images), (inference.correct, inference.images), MODE_GAP_POINTS)
    return {"images": int(len(labels)), "inference_accuracy": inference.accuracy,
            "training_mode_accuracy": training.accuracy, "gap": drop.to_dict(), "mismatch": drop.rejects}


def advice(val: Scores, findings: list[dict[str, Any]], mode: dict[str, Any], recipe: Any, steps: int) -> str:
    """One paragraph: what happened, the likely cause, the fix."""
    what = "; ".join(f["message"] for f in findings)
    if all(f.get("split") == "test" for f in findings):
        return (f"COLLAPSED ON TEST: {what}, though validation looked healthy "
                f"({val.accuracy * 100:.1f}% on {val.images} images). The validation split does not represent the "
                "test split (other scenes, light or cameras, or a different class mix). Fix: draw val from the same "
                "kinds of scenes as test (`edgekit split` by groups, not by source), add images of the test's "
                "conditions to training, and `edgekit audit` the labels.")
    if mode.get("mismatch"):
        return (f"COLLAPSED: {what}. The same weights are right in training mode "
                f"({mode['training_mode_accuracy'] * 100:.1f}%) but wrong at inference "
                f"({mode['inference_accuracy'] * 100:.1f}%) on {mode['images']} images: BatchNorm's moving statistics "
                f"do not match the weights (only {steps} steps at batch {recipe.batch_size}, BatchNorm momentum "
                f"{recipe.bn_momentum if recipe.bn_momentum is not None else 0.99}). Fix: use the car default "
                "(`edgekit train DATA --split S`, no --batch-size/--epochs: it sizes batch and steps from the data "
                "and uses momentum 0.9), or give a smaller --batch-size and more --epochs.")
    small = val.images < 200 and [f["kind"] for f in findings] == ["not-above-majority"]
    return (f"COLLAPSED: {what}. The model did not learn to tell the classes apart"
            + (f" - or the {val.images} validation images are too few to show it did" if small else "")
            + f". Likely causes: too few steps ({steps} at batch {recipe.batch_size}), a learning rate that is too "
            f"high ({recipe.learning_rate}), too few images of a class, or labels that do not match the images. "
            "Fix: the car default (`edgekit train DATA --split S` with no options) if you chose the recipe yourself, "
            "--class-weights for rare classes, more images (of the classes never found, and for validation), and "
            "`edgekit audit` to check the labels.")


def check_model(model: Any, images: np.ndarray, labels: np.ndarray, indices: dict[str, np.ndarray],
                class_names: list[str], batch_size: int, with_test: bool, recipe: Any, steps: int) -> dict[str, Any]:
    """summary.json's val_scores, test_scores (when asked) and health entries."""
    result: dict[str, Any] = {}
    val_idx = indices["val"]
    val = scores(labels[val_idx], predict(model, images[val_idx]), class_names)
    result["val_scores"] = val.to_dict()
    if with_test:
        test_idx = indices["test"]
        test = scores(labels[test_idx], predict(model, images[test_idx]), class_names)
        result.update(test_scores=test.to_dict(), test_accuracy=test.accuracy)
    findings = [{**f.to_dict(), "split": "val"} for f in collapse_findings(val)]
    if with_test:  # a model that fails the test split failed, however val looked (val may not represent it)
        findings += [{**f.to_dict(), "split": "test", "message": f"on test: {f.message}"}
                     for f in collapse_findings(test)]
    order = np.random.default_rng(0).permutation(len(val_idx))
    mode = mode_check(model, images[val_idx][order], labels[val_idx][order], class_names, batch_size)
    health: dict[str, Any] = {"collapsed": bool(findings), "findings": findings, "mode_check": mode}
    if findings:
        health["advice"] = advice(val, findings, mode, recipe, steps)
    elif mode["mismatch"]:
        health["warning"] = (f"training mode does better than inference ({mode['training_mode_accuracy'] * 100:.1f}% "
                             f"vs {mode['inference_accuracy'] * 100:.1f}%): BatchNorm's moving statistics lag the "
                             "weights; more steps or a lower BatchNorm momentum would help")
    result["health"] = health
    return result
