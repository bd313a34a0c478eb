"""Tiny int8 bundles for the runtime tests, made with TensorFlow in the test process only.

The .tflite is converted once and cached in pytest's cache folder, so later
runs (and the second xdist worker) skip TensorFlow entirely.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

LABELS = ["green", "none", "red", "yellow"]
INPUT_SIZE = (16, 16)
ROI = (0.55, 0.05, 0.3, 0.5)  # edge.synthetic.DRIVE_ROI


def _convert(seed: int) -> bytes:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((*INPUT_SIZE, 3)),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(len(LABELS), activation="softmax"),
    ])
    rng = np.random.default_rng(seed)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [rng.integers(0, 256, (1, *INPUT_SIZE, 3)).astype(np.float32)] for _ in range(16)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
    return converter.convert()


def tiny_int8_tflite(cache_dir: Path, seed: int = 0) -> bytes:
    """A uint8-in, uint8-out classifier; cached by the hash of this file."""
    key = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    path = Path(cache_dir) / f"tiny-int8-{seed}-{key}.tflite"
    if not path.exists():
        data = _convert(seed)
        partial = path.with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(data)
        os.replace(partial, path)
    return path.read_bytes()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_bundle(folder: Path, flatbuffer: bytes, version: str = "v0001", name: str = "lights") -> Path:
    """A complete bundle folder per DESIGN.md that edge.bundle.verify_bundle accepts."""
    from edge.interpreter import TFLiteModel

    folder.mkdir(parents=True)
    (folder / "model.tflite").write_bytes(flatbuffer)
    model = TFLiteModel(folder / "model.tflite", num_threads=1)
    inputs = np.random.default_rng(1).integers(0, 256, (4, *INPUT_SIZE, 3), dtype=np.uint8)
    outputs = np.stack([model.raw_invoke(x) for x in inputs])
    np.savez(folder / "golden.npz", inputs=inputs, outputs=outputs)
    manifest = {
        "format_version": 1, "name": name, "version": version, "labels": LABELS,
        "preprocess": {"input_size": list(INPUT_SIZE), "roi": list(ROI), "resize": "stretch",
                       "interpolation": "area", "color": "rgb"},
        "model": {"file": "model.tflite",
                  "input": {"dtype": "uint8", "shape": [1, *INPUT_SIZE, 3]},
                  "output": {"dtype": "uint8", "shape": [1, len(LABELS)]}},
        "golden": {"file": "golden.npz"},
        "files": {"model.tflite": _sha(folder / "model.tflite"), "golden.npz": _sha(folder / "golden.npz")},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder


def corrupt_model(folder: Path) -> Path:
    """Flip one byte of model.tflite: the checksum no longer matches."""
    path = folder / "model.tflite"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return folder


def wrong_golden(folder: Path) -> Path:
    """Golden outputs the model does not give, with checksums re-done: only the self-test catches it."""
    with np.load(folder / "golden.npz") as data:
        inputs, outputs = data["inputs"], data["outputs"]
    np.savez(folder / "golden.npz", inputs=inputs, outputs=(outputs.astype(np.int32) + 7).astype(outputs.dtype))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["golden.npz"] = _sha(folder / "golden.npz")
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder


def point(link: Path, target: Path) -> None:
    """Switch a `current` symlink atomically (what deploy does)."""
    temporary = link.with_name(f".{link.name}.new")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(target)
    os.replace(temporary, link)
