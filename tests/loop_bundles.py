"""Real, tiny bundles for the loop tests (registry, deploy): a TFLite model and its golden outputs.

The model is converted once per test session (TensorFlow is imported only here);
each bundle differs in its manifest version, so releases are distinct files.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np

LABELS = ["green", "none", "red", "yellow"]
INPUT_SIZE = (8, 8)


@functools.lru_cache(maxsize=1)
def tiny_tflite() -> bytes:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((*INPUT_SIZE, 3)),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Flatten(),
        keras.layers.Dense(len(LABELS), activation="softmax"),
    ])
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_bundle(folder: Path, version: str = "v0001", name: str = "signals") -> Path:
    """A complete bundle folder that `edgekit bundle verify` accepts."""
    from edge.interpreter import TFLiteModel

    folder.mkdir(parents=True)
    (folder / "model.tflite").write_bytes(tiny_tflite())
    model = TFLiteModel(folder / "model.tflite")
    inputs = np.random.default_rng(0).integers(0, 256, (3, *INPUT_SIZE, 3), dtype=np.uint8)
    outputs = np.stack([model.raw_invoke(x) for x in inputs])
    np.savez(folder / "golden.npz", inputs=inputs, outputs=outputs)
    manifest = {
        "format_version": 1, "name": name, "version": version, "labels": LABELS,
        "preprocess": {"input_size": list(INPUT_SIZE), "roi": [0, 0, 1, 1], "resize": "stretch",
                       "interpolation": "area", "color": "rgb"},
        "model": {"file": "model.tflite",
                  "input": {"dtype": "float32", "shape": [1, *INPUT_SIZE, 3]},
                  "output": {"dtype": "float32", "shape": [1, len(LABELS)]}},
        "golden": {"file": "golden.npz", "atol": 1e-4},
        "files": {"model.tflite": _sha(folder / "model.tflite"), "golden.npz": _sha(folder / "golden.npz")},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder
