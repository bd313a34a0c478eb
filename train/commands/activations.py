"""edgekit activations: activation-map grids of chosen layers for the first k test images."""

from __future__ import annotations

import argparse

NAME = "activations"
HELP = "write activation maps of conv/pooling layers for the first k test images (one PNG per layer)"
NEEDS = ("tensorflow",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="run folder or model.keras")
    parser.add_argument("dataset", help="dataset reference; its test split gives the images")
    parser.add_argument("--split", dest="split_file", help="split file (its test part; default: the dataset's "
                        "'test' subset, else the first images)")
    parser.add_argument("--layers", nargs="+", help="layer names (default: every conv and pooling layer)")
    parser.add_argument("-k", "--count", type=int, default=10, help="number of test images (default 10)")
    parser.add_argument("--out", required=True, help="folder for the PNGs")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import keras
    import numpy as np

    from edge.errors import UserError
    from train.activations import activation_grids, default_layers
    from train.data import load_dataset

    path = Path(args.model)
    model_path = path / "model.keras" if path.is_dir() else path
    if not model_path.is_file():
        raise UserError(f"no model at {model_path}: give a run folder or a model.keras")
    try:
        model = keras.models.load_model(model_path, safe_mode=True)
    except Exception as error:  # Keras raises many types for a bad file
        raise UserError(f"cannot load {model_path}: {error}") from error
    dataset = load_dataset(args.dataset, image_size=tuple(model.input_shape[1:3]))
    if args.split_file:
        from train.splits import load_split

        indices = load_split(args.split_file).indices(dataset)["test"]
    elif "test" in set(np.asarray(dataset.subsets).tolist()):
        indices = np.flatnonzero(np.asarray(dataset.subsets) == "test")
    else:
        indices = np.arange(len(dataset.labels))
    images = np.asarray(dataset.images[indices[: max(1, args.count)]])  # a shard set reads just these
    layers = args.layers or default_layers(model)
    for written in activation_grids(model, images, layers, Path(args.out)):
        print(written)
    return 0
