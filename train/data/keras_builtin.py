"""keras.datasets built-ins (mnist, fashion_mnist, cifar10, cifar100), offline-aware."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edge.errors import UserError
from edge.preprocess import PreprocessSpec, preprocess_batch
from train.data.dataset import Dataset

CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "fashion_mnist": ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                      "ankle-boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
    "cifar100": [f"class{i:02d}" for i in range(100)],
}
# Where keras.datasets looks for each file before downloading it (relative to $KERAS_HOME/datasets).
CACHE_FILES = {
    "mnist": ("mnist.npz", "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"),
    "fashion_mnist": ("fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz",
                      "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"),
    "cifar10": ("cifar-10-batches-py-target_archive", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
    "cifar100": ("cifar-100-python-target_archive", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"),
}


def cache_location(name: str) -> Path:
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser()
    return home / "datasets" / CACHE_FILES[name][0]


def load_keras(name: str, image_size: tuple[int, int] | None = None, resize: str = "stretch") -> Dataset:
    """Load a keras.datasets built-in with its train/test split kept in `subsets`.

    Example:
        >>> ds = load_keras("mnist")  # doctest: +SKIP
        >>> ds.images.shape  # doctest: +SKIP
        (70000, 28, 28, 3)
    """
    if name not in CLASS_NAMES:
        raise UserError(f"unknown keras dataset {name!r}: use one of {', '.join(CLASS_NAMES)}")
    try:
        import keras
    except ImportError:
        raise UserError("keras: datasets need Keras, which comes with the host extra: pip install 'edgekit[host]'") from None
    try:
        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    except Exception as error:  # keras raises several kinds when offline (URLError, Exception, OSError)
        target, origin = CACHE_FILES[name]
        raise UserError(
            f"keras.datasets.{name} is not cached and could not be downloaded ({type(error).__name__}): "
            f"download {origin} and save it as {cache_location(name).parent / target}"
            + (", or load ../shared/datasets/cifar10-jpg.zip instead" if name == "cifar10" else "")
        ) from None
    images = np.concatenate([x_train, x_test])
    if images.ndim == 3 or images.shape[-1] == 1:
        images = np.repeat(images.reshape(images.shape[:3])[..., None], 3, axis=-1)
    if image_size and tuple(image_size) != images.shape[1:3]:
        images = preprocess_batch(images, PreprocessSpec(input_size=image_size, resize=resize))
    labels = np.concatenate([y_train, y_test]).reshape(-1).astype(np.int64)
    n_train = len(x_train)
    subsets = np.array(["train"] * n_train + ["test"] * len(x_test))
    ids = np.array([f"keras:{name}/{s}/{i}" for s, i in zip(subsets, np.r_[np.arange(n_train), np.arange(len(x_test))],
                                                            strict=True)])
    return Dataset(images, labels, CLASS_NAMES[name], ids, ids, subsets, name=name)
