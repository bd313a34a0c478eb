"""Predictors for `edgekit predict`: a Keras run's model or a TFLite bundle, same preprocessing as the car."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.errors import UserError
from edge.preprocess import PreprocessSpec, preprocess, to_rgb_uint8


def read_image(path: str | Path) -> np.ndarray:
    """An image file as uint8 RGB (H, W, 3)."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise UserError(f"cannot read image {path}: missing, or not an image OpenCV can decode")
    return to_rgb_uint8(image)


@dataclass
class Predictor:
    """Frame -> probabilities, with the labels and preprocessing the model was trained with."""

    labels: list[str]
    spec: PreprocessSpec
    run_model: Any

    def predict(self, frame: np.ndarray) -> np.ndarray:
        return np.asarray(self.run_model(preprocess(frame, self.spec)), np.float32).reshape(-1)


def _is_bundle(path: Path) -> bool:
    return (path.is_dir() and (path / "manifest.json").exists()) or path.name.endswith((".tar.gz", ".tgz"))


def load_predictor(model: str | Path) -> Predictor:
    """A run folder / model.keras (labels + preprocessing from run.json) or a bundle (verified)."""
    path = Path(model)
    if not path.exists():
        raise UserError(f"model {path} does not exist: give a run folder, a model.keras or a bundle")
    if _is_bundle(path):
        from edge.bundle import open_bundle
        from edge.interpreter import TFLiteModel

        bundle = open_bundle(path, verify=True)
        tflite = TFLiteModel(bundle.model_path)
        return Predictor(list(bundle.labels), bundle.preprocess, tflite.predict)
    keras_path = path / "model.keras" if path.is_dir() else path
    run_json = keras_path.parent / "run.json"
    if not keras_path.is_file() or not run_json.is_file():
        raise UserError(f"{path} is not a run folder (model.keras + run.json) nor a bundle (manifest.json)")
    try:
        run = json.loads(run_json.read_text())
        labels, spec = list(run["class_names"]), PreprocessSpec.from_dict(run["preprocess"])
    except (ValueError, KeyError) as error:
        raise UserError(f"{run_json} is not a valid run description: {error}") from error
    import keras

    try:
        keras_model = keras.models.load_model(keras_path, safe_mode=True)
    except Exception as error:  # Keras raises many types for a bad file
        raise UserError(f"cannot load {keras_path}: {error}") from error
    return Predictor(labels, spec, lambda x: keras_model.predict(x[None], verbose=0)[0])
