"""Tiny models, datasets and bundles for the converter tests (shared via session fixtures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

CLASS_NAMES = ["red", "green", "blue", "yellow"]
_COLOURS = np.array([[220, 40, 40], [40, 220, 40], [40, 40, 220], [200, 200, 40]])
SIZE = 16


def make_dataset(path: Path, n: int = 480, seed: int = 0) -> Path:
    """A saved dataset .npz: noisy colour patches, one colour per class, train/val/test subsets."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(CLASS_NAMES), n)
    noise = rng.normal(0, 45, (n, SIZE, SIZE, 3))
    images = np.clip(_COLOURS[labels][:, None, None, :] + noise, 0, 255).astype(np.uint8)
    n_train, n_val = int(n * 0.6), int(n * 0.2)
    subsets = np.array(["train"] * n_train + ["val"] * n_val + ["test"] * (n - n_train - n_val))
    np.savez(path, images=images, labels=labels.astype(np.int64), class_names=np.array(CLASS_NAMES),
             subsets=subsets, groups=np.array([f"g{i}" for i in range(n)]),
             sources=np.array([f"synthetic:{i}" for i in range(n)]), name=np.array("colours"))
    return path


def make_model(path: Path, data: Path, rescaling: bool = True, epochs: int = 5) -> Path:
    """Rescaling + small conv + dense, trained a few epochs on the dataset's train subset (5: after 2 it never
    answered "green", which the absolute gate of issue 12 rightly refuses)."""
    import keras

    keras.utils.set_random_seed(0)
    with np.load(data, allow_pickle=False) as d:
        images, labels, subsets = d["images"], d["labels"], d["subsets"]
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Rescaling(1 / 255)(inputs) if rescaling else inputs
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(len(CLASS_NAMES), activation="softmax")(x)
    model = keras.Model(inputs, outputs, name="colours")
    model.compile("adam", "sparse_categorical_crossentropy")
    train = subsets == "train"
    scale = 1.0 if rescaling else 1 / 255
    model.fit(images[train].astype("float32") * scale, labels[train], epochs=epochs, batch_size=32, verbose=0)
    model.save(path)
    return path


@pytest.fixture(scope="session", name="tiny")
def tiny_fixture(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{"model": .keras, "data": .npz, "dir": folder}."""
    folder = tmp_path_factory.mktemp("convert")
    data = make_dataset(folder / "data.npz")
    return {"model": make_model(folder / "model.keras", data), "data": data, "dir": folder}


@pytest.fixture(scope="session", name="bundles")
def bundles_fixture(tiny: dict[str, Path]) -> dict[str, Path]:
    """One converted bundle per mode (+ int8 archive), made once with the Python API."""
    from convert.pipeline import ConvertOptions, convert

    out = tiny["dir"] / "bundles"
    results = convert(ConvertOptions(source=tiny["model"], data=str(tiny["data"]),
                                     modes=["int8", "float16", "dynamic", "float32"], rep_size=100,
                                     out=out, archive=True, latency_runs=20, version="1"))
    assert all(r.ok for r in results), [r.gate_failures for r in results]
    paths = {r.mode: r.bundle for r in results}
    paths["int8_archive"] = results[0].archive
    return paths
