"""Real, tiny bundles for the tests, converted and written by edgekit's own code.

The models are tiny Keras classifiers converted with `convert.tflite.convert_keras`
(TensorFlow is imported only when a model is first needed); the bundle folder is
written by `convert.bundle_writer.write_files`, the code path `edgekit convert` uses,
so checksums and golden outputs are exactly what a real bundle has.

Example:
    >>> write_bundle(tmp_path / "v0001", float_tflite(), name="signals", version="v0001")
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

LABELS = ["green", "none", "red", "yellow"]
FLOAT_INPUT_SIZE = (8, 8)
INT8_INPUT_SIZE = (16, 16)
GOLDEN_COUNT = 4
FLOAT_ATOL = 1e-4


def _keras_model(seed: int, input_size: tuple[int, int], conv: bool) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    body = ([keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.GlobalAveragePooling2D()] if conv
            else [keras.layers.Flatten()])
    return keras.Sequential([keras.Input((*input_size, 3)), keras.layers.Rescaling(1 / 255), *body,
                             keras.layers.Dense(len(LABELS), activation="softmax")])


@functools.lru_cache(maxsize=4)
def float_tflite(seed: int = 0) -> bytes:
    """An 8x8 float32 classifier; different seeds give models that disagree."""
    from convert.tflite import convert_keras

    return convert_keras(_keras_model(seed, FLOAT_INPUT_SIZE, conv=False), "float32")


def int8_tflite(cache_dir: Path, seed: int = 0) -> bytes:
    """A 16x16 uint8-in, uint8-out classifier, cached in `cache_dir` by the hash of this file.

    Later runs (and the second xdist worker) skip TensorFlow entirely.
    """
    key = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    path = Path(cache_dir) / f"tiny-int8-{seed}-{key}.tflite"
    if not path.exists():
        from convert.tflite import convert_keras

        representative = np.random.default_rng(seed).integers(0, 256, (16, *INT8_INPUT_SIZE, 3), dtype=np.uint8)
        data = convert_keras(_keras_model(seed, INT8_INPUT_SIZE, conv=True), "int8", representative)
        partial = path.with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(data)
        os.replace(partial, path)
    return path.read_bytes()


def write_bundle(folder: Path, flatbuffer: bytes, name: str = "lights", version: str = "v0001",
                 roi: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0), **extra: Any) -> Path:
    """A complete bundle folder (checksums, golden outputs) that `edgekit bundle verify` accepts.

    Args:
        extra: more manifest keys, e.g. training_distribution={"red": 0.5, ...}.
    """
    from convert.bundle_writer import write_files
    from edge.bundle import FORMAT_VERSION, GOLDEN_FILE, MODEL_FILE
    from edge.interpreter import TFLiteModel

    model = TFLiteModel(flatbuffer, num_threads=1)
    description = model.describe()
    input_size = description["input"]["shape"][1:3]
    inputs = np.random.default_rng(0).integers(0, 256, (GOLDEN_COUNT, *input_size, 3), dtype=np.uint8)
    manifest = {
        "format_version": FORMAT_VERSION, "name": name, "version": version, "labels": LABELS,
        "preprocess": {"input_size": input_size, "roi": list(roi), "resize": "stretch",
                       "interpolation": "area", "color": "rgb"},
        "model": {"file": MODEL_FILE, "input": description["input"], "output": description["output"]},
        "golden": {"file": GOLDEN_FILE, "count": GOLDEN_COUNT, "atol": 0.0 if model.is_integer else FLOAT_ATOL},
        **extra,
    }
    folder.mkdir(parents=True)
    write_files(folder, flatbuffer, manifest, inputs, np.stack([model.raw_invoke(x) for x in inputs]))
    return folder


def rewrite_golden(folder: Path, change: Callable[[np.ndarray], np.ndarray],
                   edit: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """Golden outputs changed by `change` (and the manifest by `edit`), checksums re-done by the bundle
    writer: only the self-test can catch it."""
    from convert.bundle_writer import write_files
    from edge.bundle import GOLDEN_FILE, MODEL_FILE, read_manifest

    manifest = read_manifest(folder)
    if edit is not None:
        edit(manifest)
    with np.load(folder / GOLDEN_FILE, allow_pickle=False) as data:
        inputs, outputs = data["inputs"], data["outputs"].copy()
    write_files(folder, (folder / MODEL_FILE).read_bytes(), manifest, inputs, change(outputs))
    return folder


def wrong_golden(folder: Path) -> Path:
    """Golden outputs the model does not give (every value +7), with checksums re-done."""
    return rewrite_golden(folder, lambda outputs: (outputs.astype(np.int32) + 7).astype(outputs.dtype))


def corrupt_model(folder: Path) -> Path:
    """Flip one byte of model.tflite: the checksum no longer matches."""
    path = folder / "model.tflite"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return folder


def point(link: Path, target: Path) -> None:
    """Switch a `current` symlink atomically (what deploy does)."""
    temporary = link.with_name(f".{link.name}.new")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(target)
    os.replace(temporary, link)
