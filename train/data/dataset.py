"""The one in-memory dataset: uint8 RGB images of one size, labels, groups, sources."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import UserError

FORMAT_VERSION = 1


def _strings(values: Any, n: int) -> np.ndarray:
    array = np.asarray(values if values is not None else [""] * n)
    return array.astype(str) if array.size else np.zeros(n, dtype="<U1")


@dataclass
class Dataset:
    """Images with labels, a group per sample and where each sample came from.

    Args:
        images: (N, H, W, 3) uint8 RGB.
        labels: (N,) int64 indices into class_names.
        class_names: the label names.
        groups: (N,) str; samples of one group (scene, video, session) stay in one split.
        sources: (N,) str, e.g. a file path, "zip:member" or "synthetic:seed/scene/frame".
        subsets: (N,) str, a split given by the source ("train"/"test"), else "".
        name: a short name for summaries.
        info: free JSON-able metadata (reference, size, load report summary).

    Example:
        >>> ds = load_dataset("synthetic:n=200")
        >>> ds.save("ds.npz"); Dataset.load("ds.npz").images.shape
        (200, 32, 32, 3)
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    groups: np.ndarray
    sources: np.ndarray
    subsets: np.ndarray | None = None
    name: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.images)
        self.images = np.asarray(self.images)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.class_names = [str(c) for c in self.class_names]
        self.groups = _strings(self.groups, n)
        self.sources = _strings(self.sources, n)
        self.subsets = _strings(self.subsets if self.subsets is not None and len(self.subsets) else None, n)
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[3] != 3:
            raise UserError(f"dataset images must be uint8 (N, H, W, 3), got {self.images.dtype} {self.images.shape}")
        for label, column in (("labels", self.labels), ("groups", self.groups),
                              ("sources", self.sources), ("subsets", self.subsets)):
            if len(column) != n:
                raise UserError(f"dataset has {n} images but {len(column)} {label}")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise UserError(f"dataset labels must be in 0..{len(self.class_names) - 1}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[1]), int(self.images.shape[2])

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(self.class_names))

    def subset(self, indices: np.ndarray | list[int]) -> Dataset:
        """A new dataset with the samples at `indices` (copied)."""
        idx = np.asarray(indices, dtype=np.int64)
        return Dataset(self.images[idx], self.labels[idx], list(self.class_names), self.groups[idx],
                       self.sources[idx], self.subsets[idx], self.name, dict(self.info))

    def save(self, path: str | Path) -> Path:
        """Write an uncompressed .npz (no pickled objects); returns the path."""
        path = Path(path)
        if path.suffix != ".npz":
            raise UserError(f"save datasets as .npz, got {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, images=self.images, labels=self.labels, class_names=np.asarray(self.class_names, str),
                 groups=self.groups, sources=self.sources, subsets=self.subsets, name=np.asarray(self.name),
                 info=np.asarray(json.dumps(self.info)), format_version=np.asarray(FORMAT_VERSION))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Dataset:
        """Read a dataset .npz written by `save` (allow_pickle=False)."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"dataset file {path} does not exist: build one with `edgekit dataset build`")
        try:
            with np.load(path, allow_pickle=False) as data:
                version = int(data["format_version"]) if "format_version" in data else 0
                if version > FORMAT_VERSION:
                    raise UserError(f"{path} has dataset format {version}; this edgekit reads up to {FORMAT_VERSION}: upgrade edgekit")
                missing = {"images", "labels", "class_names"} - set(data.files)
                if missing:
                    raise UserError(f"{path} is not an edgekit dataset (missing {sorted(missing)})")
                n = len(data["labels"])

                def get(key: str) -> np.ndarray:
                    return data[key] if key in data.files else np.full(n, "", "<U1")

                return cls(
                    images=data["images"], labels=data["labels"], class_names=data["class_names"].tolist(),
                    groups=get("groups"), sources=get("sources"), subsets=get("subsets"),
                    name=str(data["name"]) if "name" in data.files else path.stem,
                    info=json.loads(str(data["info"])) if "info" in data.files else {},
                )
        except UserError:
            raise
        except (ValueError, OSError, KeyError, json.JSONDecodeError) as error:
            raise UserError(f"cannot read dataset {path}: {error}; rebuild it with `edgekit dataset build`") from None

    def summary(self) -> str:
        """A few lines: size, classes with counts, groups, subsets."""
        return describe(self)


def describe(data: Any, storage: str = "", size: tuple[int, int] | None = None) -> str:
    """The summary of a Dataset or a ShardSet: size, classes with counts, groups, subsets
    (`storage` is added to the first line; `size` when it is known without an image)."""
    h, w = size or (data.image_size if len(data) else (0, 0))
    counts = data.class_counts()
    lines = [f"{data.name or 'dataset'}: {len(data)} images {h}x{w}, {len(data.class_names)} classes, "
             f"{len(np.unique(data.groups))} groups{storage}"]
    lines.append("  " + ", ".join(f"{c}={k}" for c, k in zip(data.class_names, counts, strict=True)))
    given = sorted({s for s in data.subsets.tolist() if s})
    if given:
        lines.append("  given subsets: " + ", ".join(f"{s}={int((data.subsets == s).sum())}" for s in given))
    return "\n".join(lines)


def concat(datasets: list[Dataset], name: str = "") -> Dataset:
    """Join datasets with the same image size; class names are merged by name."""
    if not datasets:
        raise UserError("nothing to join: no datasets given")
    sizes = {d.image_size for d in datasets}
    if len(sizes) > 1:
        raise UserError(f"cannot join datasets of different image sizes {sorted(sizes)}: rebuild them with the same --size")
    names: list[str] = []
    for d in datasets:
        names += [c for c in d.class_names if c not in names]
    labels = [np.asarray([names.index(d.class_names[i]) for i in d.labels], np.int64) for d in datasets]
    return Dataset(
        np.concatenate([d.images for d in datasets]), np.concatenate(labels), names,
        np.concatenate([d.groups for d in datasets]), np.concatenate([d.sources for d in datasets]),
        np.concatenate([d.subsets for d in datasets]), name or "+".join(d.name for d in datasets),
    )
