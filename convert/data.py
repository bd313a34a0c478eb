"""The images the converter needs: a representative set and an evaluation split.

Datasets and split files are read with train.data / train.splits. The split
comes from the split file when there is one, else from the dataset's own
subsets (e.g. the CIFAR archive's train/test) .

Example:
    >>> data = load_split_data("synthetic:n=600", None, ["green", "none", "red", "yellow"])
    >>> rep = representative_sample(data.images("train"), data.labels("train"), size=300)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import UserError
from edge.preprocess import PreprocessSpec, preprocess_batch

STREAM_BATCH = 512  # a shard set's split is read and preprocessed this many images at a time


def _load_dataset(ref: str) -> Any:
    from train.data import load_dataset

    return load_dataset(ref)


def _split_indices(dataset: Any, split_file: Path | None) -> dict[str, np.ndarray]:
    if split_file is not None:
        if not Path(split_file).is_file():
            raise UserError(f"split file {split_file} does not exist: check the path (or omit --split-file)")
        from train.splits import load_split

        return {k: np.asarray(v, np.int64) for k, v in load_split(split_file).indices(dataset).items()}
    subsets = np.asarray(getattr(dataset, "subsets", np.array([], str)))
    if subsets.size == len(dataset.labels) and subsets.size:
        return {name: np.flatnonzero(subsets == name) for name in np.unique(subsets) if name}
    raise UserError("no split file and the dataset has no train/val/test subsets: pass --split-file")


class SplitImages:
    """A shard set's split as model inputs, streamed: iterating, slicing and `len` work as on the array
    it stands for (read and preprocessed STREAM_BATCH images at a time); `x[int_array]` is another
    SplitImages; `np.asarray(x)` loads it all."""

    def __init__(self, images: Any, spec: PreprocessSpec) -> None:
        self._images, self._spec = images, spec  # images: train.data.shards.ShardImages

    def __len__(self) -> int:
        return len(self._images)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self._images), *self._spec.input_shape)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            return preprocess_batch(self._images[key], self._spec)
        if isinstance(key, (int, np.integer)):
            return self[int(key):int(key) + 1][0]
        return SplitImages(self._images[key], self._spec)

    def __iter__(self) -> Any:
        for start in range(0, len(self), STREAM_BATCH):
            yield from self[start:start + STREAM_BATCH]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = preprocess_batch(np.asarray(self._images), self._spec)
        return array if dtype is None else array.astype(dtype)


@dataclass
class SplitData:
    """A dataset with its split indices; images are preprocessed on request."""

    dataset: Any
    indices: dict[str, np.ndarray]
    class_names: list[str]

    def _idx(self, split: str) -> np.ndarray:
        if split not in self.indices or len(self.indices[split]) == 0:
            have = ", ".join(f"{k} ({len(v)})" for k, v in self.indices.items()) or "none"
            raise UserError(f"the dataset has no {split!r} split (splits: {have}): choose another with --split")
        return self.indices[split]

    def labels(self, split: str) -> np.ndarray:
        return np.asarray(self.dataset.labels)[self._idx(split)].astype(np.int64)

    def images(self, split: str, spec: PreprocessSpec, subset: np.ndarray | None = None) -> np.ndarray | SplitImages:
        """Model inputs of a split (optionally positions `subset` within it), through edge.preprocess.

        A shard set's split is not loaded: a SplitImages reads and preprocesses it a batch at a time.
        """
        idx = self._idx(split)
        if subset is not None:
            idx = idx[subset]
        images = self.dataset.images
        if isinstance(images, np.ndarray):
            return preprocess_batch(images[idx], spec)
        return SplitImages(images[idx], spec)

    def distribution(self, split: str = "train") -> dict[str, float]:
        """Class -> fraction of the split (the manifest's training_distribution)."""
        labels = self.labels(split) if split in self.indices else np.asarray([], np.int64)
        counts = np.bincount(labels, minlength=len(self.class_names)).astype(float)
        total = counts.sum() or 1.0
        return {name: round(float(c / total), 6) for name, c in zip(self.class_names, counts, strict=True)}


def load_split_data(ref: str | None, split_file: Path | None, class_names: list[str] | None) -> SplitData:
    """Load the dataset named `ref` and its splits; checks the class names agree."""
    if not ref:
        raise UserError("no dataset: a bare .keras model needs --data (and --split-file or a dataset with subsets)")
    dataset = _load_dataset(ref)
    names = list(class_names or dataset.class_names)
    dataset_names = list(getattr(dataset, "class_names", names))
    if class_names and dataset_names and dataset_names != names:
        raise UserError(
            f"the model's classes {names} differ from dataset {ref!r}'s {dataset_names}: "
            "convert with the dataset the model was trained on"
        )
    return SplitData(dataset=dataset, indices=_split_indices(dataset, split_file), class_names=names)


def representative_positions(labels: np.ndarray, size: int, n_classes: int, seed: int = 0) -> np.ndarray:
    """Positions of `size` samples stratified by class (proportional, at least one per present class).

    Raises UserError when there are fewer samples than asked for.
    """
    if size < 1:
        raise UserError(f"the representative set size must be at least 1, got {size}")
    if len(labels) < size:
        raise UserError(
            f"the training split has only {len(labels)} images but the representative set needs {size}: "
            "lower --rep-size or give more training data"
        )
    rng = np.random.default_rng(seed)
    counts = np.bincount(labels, minlength=n_classes)
    present = np.flatnonzero(counts)
    quota = np.maximum(1, np.floor(counts[present] / counts.sum() * size)).astype(int)
    while quota.sum() > size:  # more classes than slots after the minimum of one
        quota[np.argmax(quota)] -= 1
    remainder = size - quota.sum()
    order = np.argsort(-(counts[present] / counts.sum() * size - quota))
    for i in order[:remainder]:
        quota[i] += 1
    chosen = [rng.choice(np.flatnonzero(labels == c), size=min(q, counts[c]), replace=False)
              for c, q in zip(present, quota, strict=True)]
    return np.sort(np.concatenate(chosen))
