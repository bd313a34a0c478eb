"""Convert a Keras model you trained yourself into a checked int8 bundle the car can run.

    python examples/convert_own_model.py OUT_FOLDER      # needs the host extra (TensorFlow)
"""

import sys
from pathlib import Path

import keras
import numpy as np

from convert.pipeline import ConvertOptions, convert

LABELS = ["red", "green", "blue"]


def colour_patches(n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """16x16 noisy patches, one colour per class: a stand-in for your own data."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, len(LABELS), n)
    images = np.clip(np.eye(3)[labels][:, None, None, :] * 200 + rng.normal(30, 30, (n, 16, 16, 3)), 0, 255)
    return images.astype(np.uint8), labels


def main(out: str) -> None:
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = colour_patches()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Rescaling(1 / 255),  # the bundle feeds 0-255
                              keras.layers.Conv2D(8, 3, activation="relu"), keras.layers.MaxPooling2D(), keras.layers.Flatten(),
                              keras.layers.Dense(len(LABELS), activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(images[:200].astype("float32"), labels[:200], epochs=10, verbose=0)
    model.save(folder / "model.keras")
    subsets = np.array(["train"] * 200 + ["val"] * 100)  # the converter measures accuracy on "val"
    np.savez(folder / "data.npz", images=images, labels=labels, class_names=np.array(LABELS), subsets=subsets)
    results = convert(ConvertOptions(source=folder / "model.keras", data=str(folder / "data.npz"),
                                     modes=["int8"], out=folder / "bundle", rep_size=100))
    for result in results:
        acc = result.accuracy
        print(f"{result.mode}: {result.bundle}, accuracy {acc['keras_accuracy']:.1f}% (Keras) "
              f"{acc['tflite_accuracy']:.1f}% (int8)")


if __name__ == "__main__":
    main(*sys.argv[1:])
