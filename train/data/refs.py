"""`load_dataset(ref)`: one entry point for every dataset source."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge import synthetic
from edge.errors import UserError
from edge.keyvalue import parse_key_values
from edge.sizes import parse_size_hxw
from train.data.dataset import Dataset
from train.data.images import load_image_folder, load_zip
from train.data.report import LoadReport
from train.data.shards import ShardSet, is_shard_set

SYNTHETIC_DEFAULTS = {"n": "6000", "size": "32x32", "seed": "0", "frames": "20", "conditions": "default"}
DEFAULT_REF = "synthetic"


def parse_options(text: str, defaults: dict[str, str]) -> dict[str, str]:
    """"n=100,size=32x32" -> dict, checked against the known keys."""
    return {**defaults, **parse_key_values(text, "synthetic option", "synthetic:n=100", known=defaults)}


def load_synthetic(options: str = "", image_size: tuple[int, int] | None = None) -> Dataset:
    """The generated traffic-light dataset, e.g. options "n=2000,seed=3,conditions=night".

    Conditions may be a preset or key=value pairs joined with ';' (e.g. "night=0.5;shadow=0.4").
    """
    opts = parse_options(options, SYNTHETIC_DEFAULTS)
    size = image_size or parse_size_hxw(opts["size"])
    try:
        n, seed, frames = int(opts["n"]), int(opts["seed"]), int(opts["frames"])
    except ValueError:
        raise UserError(f"synthetic options n, seed and frames must be integers, got {options!r}") from None
    conditions = synthetic.Conditions.parse(opts["conditions"])
    images, labels, scenes = synthetic.generate(n, size=size, seed=seed, conditions=conditions, frames_per_scene=frames)
    frame_in_scene = np.arange(n) % frames
    sources = np.char.add(np.char.add(f"synthetic:{seed}/", scenes), np.char.add("/", frame_in_scene.astype(str)))
    ref = "synthetic:" + ",".join(f"{k}={v}" for k, v in opts.items())
    return Dataset(images, labels, list(synthetic.CLASS_NAMES), scenes, sources, None, name="synthetic",
                   info={"ref": ref, "conditions": conditions.to_dict()})


def load_dataset(ref: str, image_size: tuple[int, int] | None = None, *, group: str | None = None,
                 resize: str = "stretch", min_size: int = 8, progress: bool = True,
                 report: LoadReport | None = None) -> Dataset | ShardSet:
    """Load a dataset from a reference.

    Args:
        ref: a saved `.npz`; a shard set folder (opened through its index, read on demand); an image folder; a `.zip` of one; `keras:mnist|fashion_mnist|cifar10|cifar100`;
            `synthetic[:n=6000,size=32x32,seed=0,frames=20,conditions=default]`.
        image_size: (h, w) to resize to (through edge.preprocess); None keeps the source's size.
        group: for folders/zips, `level:N` or `regex:PATTERN` (see train.data.images.parse_group_rule).
        resize: "stretch", "center-crop" or "letterbox".
        min_size: skip images with a side shorter than this.
        report: collects skipped inputs of folders and zips.

    Example:
        >>> ds = load_dataset("synthetic:n=400,seed=1")
        >>> len(ds), ds.class_names[2]
        (400, 'red')
    """
    ref = str(ref)
    if ref == "synthetic" or ref.startswith("synthetic:"):
        dataset = load_synthetic(ref.partition(":")[2], image_size)
    elif ref.startswith("keras:"):
        from train.data.keras_builtin import load_keras

        dataset = load_keras(ref.partition(":")[2], image_size, resize)
    else:
        path = Path(ref).expanduser()
        if not path.exists():
            raise UserError(f"dataset {ref!r} not found: give an image folder, a .zip, a .npz, "
                            "keras:NAME or synthetic[:n=...]")
        if path.is_dir() and is_shard_set(path):
            dataset = ShardSet.open(path)
            if image_size and dataset.image_size != tuple(image_size):
                raise UserError(f"shard set {ref} holds {dataset.image_size[0]}x{dataset.image_size[1]} images, not "
                                f"{image_size[0]}x{image_size[1]}: rebuild it with --size, or train at its size "
                                "(--image-size)")
        elif path.is_dir():
            dataset = load_image_folder(path, image_size, group, resize, min_size, progress, report)
        elif path.suffix.lower() == ".zip":
            dataset = load_zip(path, image_size, group, resize, min_size, progress, report)
        elif path.suffix.lower() == ".npz":
            dataset = Dataset.load(path)
            if image_size and dataset.image_size != tuple(image_size):
                from edge.preprocess import PreprocessSpec, preprocess_batch

                dataset.images = preprocess_batch(dataset.images, PreprocessSpec(input_size=image_size, resize=resize))
        else:
            raise UserError(f"cannot load {ref!r}: expected a folder, a .zip or a .npz")
    dataset.info.setdefault("ref", ref)
    return dataset


def fingerprint(ref: str | Path) -> str | None:
    """SHA-256 naming a dataset's content: a file's (.npz, .zip), or a shard set's index (which holds
    every shard's SHA-256); None for other sources (folders, keras:, synthetic)."""
    from edge.digest import file_sha256
    from train.data.shards import INDEX_NAME

    path = Path(str(ref)).expanduser()
    if path.is_file():
        return file_sha256(path)
    if path.is_dir() and is_shard_set(path):
        return file_sha256(path / INDEX_NAME)
    return None
