"""Real, tiny bundles for the sample-log tests: different seeds give models that disagree.

TensorFlow is imported only here, once per seed per test session.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np

LABELS = ["green", "none", "red", "yellow"]
INPUT_SIZE = (8, 8)
TRAINING_DISTRIBUTION = {"green": 0.3, "none": 0.2, "red": 0.3, "yellow": 0.2}


@functools.lru_cache(maxsize=4)
def tiny_tflite(seed: int) -> bytes:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((*INPUT_SIZE, 3)),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Flatten(),
        keras.layers.Dense(len(LABELS), activation="softmax"),
    ])
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_bundle(folder: Path, seed: int = 0, version: str = "v0001") -> Path:
    """A complete bundle folder (checksums, golden outputs, training distribution)."""
    from edge.interpreter import TFLiteModel

    folder.mkdir(parents=True)
    (folder / "model.tflite").write_bytes(tiny_tflite(seed))
    model = TFLiteModel(folder / "model.tflite")
    inputs = np.random.default_rng(0).integers(0, 256, (3, *INPUT_SIZE, 3), dtype=np.uint8)
    np.savez(folder / "golden.npz", inputs=inputs, outputs=np.stack([model.raw_invoke(x) for x in inputs]))
    manifest = {
        "format_version": 1, "name": f"lights{seed}", "version": version, "labels": LABELS,
        "preprocess": {"input_size": list(INPUT_SIZE), "roi": [0.25, 0, 0.5, 0.5], "resize": "stretch",
                       "interpolation": "area", "color": "rgb"},
        "model": {"file": "model.tflite",
                  "input": {"dtype": "float32", "shape": [1, *INPUT_SIZE, 3]},
                  "output": {"dtype": "float32", "shape": [1, len(LABELS)]}},
        "golden": {"file": "golden.npz", "atol": 1e-4},
        "training_distribution": TRAINING_DISTRIBUTION,
        "files": {"model.tflite": _sha(folder / "model.tflite"), "golden.npz": _sha(folder / "golden.npz")},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder
