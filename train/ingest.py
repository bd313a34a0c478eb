"""Labeled field samples -> a host dataset, with session ids as groups.

Frames go through the bundle's preprocessing (ROI crop, resize) so dataset images
are exactly what the car's model saw. Splits stay stable: groups already in the
previous split file keep their split; new sessions are placed by group hash, and
the newest sessions can form a separate "fresh_test" split. New samples that are
near-copies (dHash) of existing images of *another* split are leaks: `check_leaks`
finds them, and ingest refuses them (or drops them when asked).

Example:
    >>> field = store_dataset(open_samples("pulled/car1"), spec, ["green", "none", "red", "yellow"])
    >>> merged = merge(Dataset.load("data/base.npz"), field)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from tqdm import tqdm

from edge.errors import UserError
from edge.preprocess import PreprocessSpec, preprocess
from train.audit import DEFAULT_THRESHOLD, dhash, near_pairs
from train.data.dataset import Dataset, concat
from train.labeling.decisions import LabelDB
from train.labeling.samples import SampleSource

SOURCE_PREFIX = "store:"


def store_dataset(source: SampleSource, spec: PreprocessSpec, class_names: list[str]) -> Dataset:
    """The labeled (not discarded) samples of a store as a Dataset at the model's input size.

    Args:
        source: the sample store.
        spec: the model's preprocessing (from its bundle).
        class_names: the dataset's classes; a label outside them is a UserError.
    """
    labeled = LabelDB(source.labels_db).labeled()
    samples = [s for s in source.samples() if s.sample_id in labeled]
    unknown = sorted({labeled[s.sample_id] for s in samples} - set(class_names))
    if unknown:
        raise UserError(f"labels {unknown} are not classes of the dataset ({', '.join(class_names)}): "
                        "relabel them or add the classes to the base dataset")
    full_frame = replace(spec, roi=(0.0, 0.0, 1.0, 1.0))
    h, w = spec.input_size
    images = np.empty((len(samples), h, w, 3), np.uint8)
    for i, sample in enumerate(tqdm(samples, desc="ingest", unit="img", disable=True if len(samples) < 500 else None)):
        image = source.read_image(sample)
        if sample.roi_only:
            images[i] = preprocess(image, full_frame)
        else:  # crop what the car cropped (its --roi may differ from the bundle's)
            images[i] = preprocess(image, replace(spec, roi=sample.roi) if sample.roi else spec)
    return Dataset(
        images=images,
        labels=np.asarray([class_names.index(labeled[s.sample_id]) for s in samples], np.int64),
        class_names=list(class_names),
        groups=np.asarray([s.session_id for s in samples], str) if samples else np.zeros(0, str),
        sources=np.asarray([f"{SOURCE_PREFIX}{source.root}/{s.sample_id}" for s in samples], str)
        if samples else np.zeros(0, str),
        name=f"field:{source.root.name}",
        info={"store": str(source.root), "samples": len(samples)},
    )


def merge(base: Dataset | None, field: Dataset) -> tuple[Dataset, int]:
    """base + the field samples it does not hold yet (by source); returns (dataset, samples added)."""
    if base is None:
        return field, len(field)
    known = set(base.sources.tolist())
    fresh = np.asarray([s not in known for s in field.sources.tolist()], bool)
    if not fresh.any():
        return base, 0
    added = field.subset(np.flatnonzero(fresh))
    if added.image_size != base.image_size:
        raise UserError(f"field samples are {added.image_size} but the dataset is {base.image_size}: "
                        "use the bundle of a model trained on this dataset")
    merged = concat([base, added], name=base.name or "dataset")
    merged.info = {**base.info, "field_samples": int(base.info.get("field_samples", 0)) + len(added)}
    return merged, len(added)


def per_class_session_counts(dataset: Dataset) -> dict[str, dict[str, int]]:
    """{session: {class: count}} for a report."""
    table: dict[str, dict[str, int]] = {}
    for group, label in zip(dataset.groups.tolist(), dataset.labels.tolist(), strict=True):
        row = table.setdefault(group, {})
        name = dataset.class_names[label]
        row[name] = row.get(name, 0) + 1
    return table


@dataclass
class Leak:
    """A new sample that is a near-copy of an existing image in another split."""

    new: int          # dataset index of the new sample
    old: int          # dataset index of the existing image
    distance: int     # Hamming distance of their dHashes
    new_split: str
    old_split: str


@dataclass
class LeakReport:
    """What the leak check of newly ingested samples found."""

    checked: int
    against: dict[str, int]
    threshold: int
    leaks: list[Leak] = field(default_factory=list)

    @property
    def leaking(self) -> np.ndarray:
        """Dataset indices of the new samples that leak (each once)."""
        return np.unique(np.asarray([leak.new for leak in self.leaks], np.int64))

    def summary(self) -> str:
        against = ", ".join(f"{k} {v}" for k, v in self.against.items())
        head = (f"leak check (dHash, Hamming <= {self.threshold}): {self.checked} new samples against "
                f"{sum(self.against.values())} existing ({against})")
        if not self.leaks:
            return head + ": no near-copies across splits"
        kinds: dict[str, int] = {}
        for leak in self.leaks:
            key = f"{leak.new_split}~{leak.old_split}"
            kinds[key] = kinds.get(key, 0) + 1
        return (head + f": {len(self.leaking)} new samples are near-copies of images in another split ("
                + ", ".join(f"new in {k.split('~')[0]} ~ old in {k.split('~')[1]}: {n} pairs"
                            for k, n in sorted(kinds.items())) + ")")

    def examples(self, dataset: Dataset, limit: int = 5) -> list[str]:
        return [f"  {dataset.sources[leak.new]} ({leak.new_split})  ~  {dataset.sources[leak.old]} "
                f"({leak.old_split}), d={leak.distance}" for leak in self.leaks[:limit]]


def check_leaks(dataset: Dataset, split_indices: dict[str, np.ndarray], first_new: int,
                threshold: int = DEFAULT_THRESHOLD, hashes: np.ndarray | None = None) -> LeakReport:
    """Near-copies between new samples (indices >= first_new) and existing ones in another split.

    A re-encoded copy of a test image that lands in train (or in fresh_test) would let the
    model, or the gate, see the test set twice; the same audit as `edgekit audit`, run on
    just the new samples before anything is written.
    """
    where = np.full(len(dataset), "", dtype=object)
    for name, indices in split_indices.items():
        where[np.asarray(indices, np.int64)] = name
    new = np.arange(first_new, len(dataset))
    old = np.arange(first_new)
    old = old[where[old] != ""]
    against = {name: int((where[old] == name).sum()) for name in split_indices if (where[old] == name).any()}
    report = LeakReport(len(new), against, threshold)
    if not len(new) or not len(old):
        return report
    hashes = dhash(dataset.images) if hashes is None else hashes
    i, j, d = near_pairs(hashes[new], hashes[old], threshold)
    for a, b, distance in zip(new[i].tolist(), old[j].tolist(), d.tolist(), strict=True):
        if where[a] != where[b]:
            report.leaks.append(Leak(a, b, distance, str(where[a]), str(where[b])))
    report.leaks.sort(key=lambda leak: (leak.distance, leak.new, leak.old))
    return report


@dataclass
class CheckedSplit:
    """The dataset and split after the leak check (leaking new samples dropped when asked)."""

    dataset: Dataset
    split: object  # train.splits.SplitFile
    fresh: list[str]
    leaks: LeakReport
    dropped: int
    columns: Any = None  # shard sets: the index plus the new samples (what `split` was made on)
    leak_columns: Any = None  # shard sets: the same before leaking samples were dropped (what `leaks` indexes)


def split_checked(dataset: Dataset, first_new: int, previous, fresh_test: float, drop_leaks: bool,
                  threshold: int = DEFAULT_THRESHOLD) -> CheckedSplit:
    """Extend the split to the merged dataset and check the new samples for leaks.

    With `drop_leaks`, leaking new samples are removed and the split made again without them;
    otherwise they stay and the caller refuses (see `CheckedSplit.leaks`).
    """
    from train.splits import make_split, newest_groups

    def extend(data: Dataset):
        fresh = newest_groups(data, previous, fresh_test) if fresh_test else []
        split = make_split(data, previous.fractions if previous else (0.7, 0.15, 0.15),
                           salt=previous.salt if previous else "edgekit", previous=previous, fresh_test=fresh)
        return split, fresh

    split, fresh = extend(dataset)
    leaks = check_leaks(dataset, split.indices(dataset), first_new, threshold)
    dropped = 0
    if leaks.leaks and drop_leaks:
        dropped = len(leaks.leaking)
        dataset = dataset.subset(np.setdiff1d(np.arange(len(dataset)), leaks.leaking))
        split, fresh = extend(dataset)
    return CheckedSplit(dataset, split, fresh, leaks, dropped)


@dataclass
class Columns:
    """A shard set's index plus new in-memory samples: what splitting and the leak check read."""

    labels: np.ndarray
    groups: np.ndarray
    sources: np.ndarray
    subsets: np.ndarray
    class_names: list[str]
    name: str
    info: dict

    def __len__(self) -> int:
        return len(self.labels)


def split_checked_shards(shards, field: Dataset, previous, fresh_test: float, drop_leaks: bool,
                         threshold: int = DEFAULT_THRESHOLD) -> CheckedSplit:
    """split_checked for a shard set (train.data.shards.ShardSet) and the new samples to append.

    The old images' dHashes come from the index (no shard is read); `CheckedSplit.dataset` holds
    the new samples that may be appended (leaking ones dropped when asked).
    """
    from train.splits import make_split, newest_groups

    def extend(new: Dataset):
        columns = Columns(np.concatenate([shards.labels, new.labels]), np.concatenate([shards.groups, new.groups]),
                          np.concatenate([shards.sources, new.sources]), np.concatenate([shards.subsets, new.subsets]),
                          list(shards.class_names), shards.name, dict(shards.info))
        fresh = newest_groups(columns, previous, fresh_test) if fresh_test else []
        split = make_split(columns, previous.fractions if previous else (0.7, 0.15, 0.15),
                           salt=previous.salt if previous else "edgekit", previous=previous, fresh_test=fresh)
        return columns, split, fresh

    first_new = len(shards)
    columns, split, fresh = extend(field)
    hashes = np.concatenate([shards.dhash, dhash(field.images) if len(field) else np.zeros(0, np.uint64)])
    leaks = check_leaks(columns, split.indices(columns), first_new, threshold, hashes)
    dropped, checked_columns = 0, columns
    if leaks.leaks and drop_leaks:
        dropped = len(leaks.leaking)
        field = field.subset(np.setdiff1d(np.arange(len(field)), leaks.leaking - first_new))
        columns, split, fresh = extend(field)
    return CheckedSplit(field, split, fresh, leaks, dropped, columns, checked_columns)
