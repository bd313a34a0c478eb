"""Leak-free splits: whole groups, stratified by class, assigned by a hash of the group id.

A group (scene, video, session) lands in train, val or test according to
sha256(salt + group id), compared with the cumulative fractions, so adding new
groups never moves an old one and the test set stays a test set across
retrains. Each class's groups are split by the same thresholds (stratified in
expectation); a class left with no group in some split is repaired by moving
its group nearest to that split's range, and the split file pins every
assignment so later updates keep it.

Example:
    >>> from train.data import load_dataset
    >>> ds = load_dataset("synthetic:n=2000")
    >>> split = make_split(ds)
    >>> {k: len(v) for k, v in split.indices(ds).items()}  # doctest: +SKIP
    {'train': 1400, 'val': 300, 'test': 300}
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import UserError
from train.data.dataset import Dataset

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
FRESH_TEST = "fresh_test"
FORMAT_VERSION = 1
IMBALANCE_RATIO = 5.0


def group_hash(groups: Sequence[str] | np.ndarray, salt: str = "edgekit") -> np.ndarray:
    """A number in [0, 1) per group id, from SHA-256 (stable across machines and Python versions)."""
    prefix = salt.encode() + b"\0"
    return np.array([int.from_bytes(hashlib.sha256(prefix + str(g).encode()).digest()[:8], "big")
                     for g in groups], dtype=np.float64) / 2.0**64


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != 3 or min(fractions) < 0 or fractions[0] <= 0:
        raise UserError(f"split fractions {tuple(fractions)} must be three non-negative numbers (train, val, test) "
                        "with train > 0, e.g. 0.7,0.15,0.15")
    total = float(sum(fractions))
    if abs(total - 1.0) > 1e-6:
        raise UserError(f"split fractions {tuple(fractions)} add up to {total:g}, not 1")
    return tuple(float(f) for f in fractions)  # type: ignore[return-value]


def _by_hash(u: np.ndarray, fractions: tuple[float, float, float]) -> np.ndarray:
    edges = np.cumsum(fractions)[:2]
    return np.array(SPLITS, dtype=object)[np.searchsorted(edges, u, side="right")]


@dataclass
class SplitFile:
    """Which split each group belongs to, plus how it was made.

    Args:
        assignments: group id -> "train" | "val" | "test" | "fresh_test".
        fractions: (train, val, test) used for groups assigned by hash.
        salt: mixed into the hash; a different salt gives a different split.
        class_names: the dataset's classes (for printing counts).
        info: how it was made (dataset reference, options, counts, repairs).
    """

    assignments: dict[str, str]
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    salt: str = "edgekit"
    class_names: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def split_of(self, groups: np.ndarray) -> np.ndarray:
        """The split name per sample group; groups not in the file are placed by hash."""
        unique, inverse = np.unique(np.asarray(groups, str), return_inverse=True)
        known = np.array([self.assignments.get(g, "") for g in unique], dtype=object)
        unknown = known == ""
        if unknown.any():
            known[unknown] = _by_hash(group_hash(unique[unknown], self.salt), self.fractions)
        return known[inverse]

    def indices(self, dataset: Dataset) -> dict[str, np.ndarray]:
        """{"train": idx, "val": idx, "test": idx[, "fresh_test": idx]} as int64 arrays."""
        names = self.split_of(dataset.groups)
        result = {s: np.flatnonzero(names == s).astype(np.int64) for s in SPLITS}
        if (names == FRESH_TEST).any():
            result[FRESH_TEST] = np.flatnonzero(names == FRESH_TEST).astype(np.int64)
        return result

    def counts(self, dataset: Dataset) -> dict[str, list[int]]:
        """Samples per split and class."""
        k = len(dataset.class_names)
        return {s: np.bincount(dataset.labels[idx], minlength=k).tolist() for s, idx in self.indices(dataset).items()}

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "fractions": list(self.fractions), "salt": self.salt,
                "class_names": self.class_names, "info": self.info, "assignments": self.assignments}

    def save(self, path: str | Path) -> Path:
        """Write the split file (JSON); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=False), encoding="utf-8")
        tmp.replace(path)
        return path


def load_split(path: str | Path) -> SplitFile:
    """Read a split file written by SplitFile.save."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"split file {path} does not exist: make one with `edgekit split`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if int(data.get("format_version", 0)) > FORMAT_VERSION:
            raise UserError(f"{path} is a newer split file format: upgrade edgekit")
        assignments = {str(k): str(v) for k, v in data["assignments"].items()}
        bad = set(assignments.values()) - {*SPLITS, FRESH_TEST}
        if bad:
            raise UserError(f"{path} assigns groups to unknown splits {sorted(bad)}")
        return SplitFile(assignments, tuple(data["fractions"]), str(data["salt"]), list(data.get("class_names", [])),
                         dict(data.get("info", {})))
    except UserError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise UserError(f"{path} is not a valid split file ({error}): make a new one with `edgekit split`") from None


def _group_table(dataset: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique groups, their majority class, and each sample's group index."""
    groups, inverse = np.unique(dataset.groups, return_inverse=True)
    k = len(dataset.class_names)
    counts = np.bincount(inverse * k + dataset.labels, minlength=len(groups) * k).reshape(len(groups), k)
    return groups, counts.argmax(axis=1), inverse


def newest_groups(dataset: Dataset, previous: SplitFile | None, count: float) -> list[str]:
    """The newest groups not in `previous`, by order of first appearance in the dataset.

    `count` >= 1 is a number of groups, below 1 a fraction of the new groups.
    """
    _, first = np.unique(dataset.groups, return_index=True)
    ordered = [str(dataset.groups[i]) for i in sorted(first)]
    new = [g for g in ordered if previous is None or g not in previous.assignments]
    n = int(count) if count >= 1 else int(round(count * len(new)))
    return new[len(new) - n:] if n > 0 else []


def make_split(
    dataset: Dataset,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    salt: str = "edgekit",
    keep_subsets: bool = False,
    previous: SplitFile | None = None,
    fresh_test: Sequence[str] = (),
    method: str = "hash",
) -> SplitFile:
    """Assign every group of `dataset` to train, val or test.

    Args:
        dataset: the dataset (its groups and labels are used).
        fractions: (train, val, test), adding up to 1.
        salt: mixed into the hash.
        keep_subsets: keep the source's own split: given "test" stays test,
            given "val" stays val, and val is carved from the given "train" by hash.
        previous: an earlier split file: its groups keep their split (only new groups are placed).
        fresh_test: group ids to put in a separate "fresh_test" split (e.g. the newest sessions).
        method: "hash" (each group by its own hash: stable without any file) or "balanced"
            (each class's groups ordered by hash and cut at the fractions of its samples: exact
            stratification; stable across updates only through `previous`).

    Example:
        >>> split = make_split(ds, (0.8, 0.1, 0.1), previous=load_split("split.json"))  # doctest: +SKIP
    """
    fractions = _check_fractions(fractions)
    if len(dataset) == 0:
        raise UserError("the dataset is empty: nothing to split")
    groups, group_class, inverse = _group_table(dataset)
    u = group_hash(groups, salt)
    if method not in ("hash", "balanced"):
        raise UserError(f"unknown split method {method!r}: use hash or balanced")
    assigned = _by_hash(u, fractions) if method == "hash" else _balanced(u, group_class, np.bincount(inverse), fractions)
    free = np.ones(len(groups), bool)  # placed by hash, may be repaired
    if keep_subsets:
        subsets = dataset.subsets[np.unique(inverse, return_index=True)[1]]
        spans = len(np.unique(np.char.add(np.char.add(dataset.groups, "\0"), dataset.subsets))) - len(groups)
        if spans:
            log.warning("warning: %d groups span more than one given subset; each goes where its first sample is",
                        spans)
        given_test, given_val, given_train = subsets == "test", subsets == "val", subsets == "train"
        assigned[given_test], assigned[given_val] = "test", "val"
        if given_train.any():
            train_val = (fractions[0], fractions[1] + (0 if given_test.any() else fractions[2]))
            share = train_val[0] / sum(train_val)
            assigned[given_train] = np.where(u[given_train] < share, "train", "val")
        free &= ~(given_test | given_val)
    fresh = set(map(str, fresh_test))
    if fresh:
        is_fresh = np.isin(groups, list(fresh))
        assigned[is_fresh], free[is_fresh] = FRESH_TEST, False
    if previous is not None:
        old = np.array([previous.assignments.get(g, "") for g in groups], dtype=object)
        pinned = old != ""
        assigned[pinned], free[pinned] = old[pinned], False
    repaired = _repair(assigned, free, group_class, u, fractions, keep_subsets, len(dataset.class_names))
    split = SplitFile(
        {str(g): str(s) for g, s in zip(groups, assigned, strict=True)}, fractions, salt, list(dataset.class_names),
        {"dataset": dataset.info.get("ref", dataset.name), "n_samples": len(dataset), "n_groups": len(groups),
         "method": method, "keep_subsets": keep_subsets, "fresh_test_groups": len(fresh), "repaired": repaired,
         "kept_from_previous": int(previous is not None and sum(g in previous.assignments for g in groups))},
    )
    split.info["counts"] = split.counts(dataset)
    return split


def _balanced(u: np.ndarray, group_class: np.ndarray, sizes: np.ndarray,
              fractions: tuple[float, float, float]) -> np.ndarray:
    """Per class: groups in hash order, cut where the running sample count crosses each fraction."""
    assigned = np.empty(len(u), dtype=object)
    edges = np.cumsum(fractions)[:2]
    for k in np.unique(group_class):
        mine = np.flatnonzero(group_class == k)
        mine = mine[np.argsort(u[mine], kind="stable")]
        running = np.cumsum(sizes[mine]) - sizes[mine] / 2  # the middle of each group
        position = running / sizes[mine].sum()
        assigned[mine] = np.array(SPLITS, dtype=object)[np.searchsorted(edges, position, side="right")]
    return assigned


def _repair(assigned: np.ndarray, free: np.ndarray, group_class: np.ndarray, u: np.ndarray,
            fractions: tuple[float, float, float], keep_subsets: bool, n_classes: int) -> list[str]:
    """Give each class at least one group in every split that should have one, when it has enough groups."""
    wanted = [s for s, f in zip(SPLITS, fractions, strict=True) if f > 0 and not (keep_subsets and s == "test")]
    centre = {s: c for s, c in zip(SPLITS, np.cumsum(fractions) - np.asarray(fractions) / 2, strict=True)}
    notes = []
    for k in range(n_classes):
        mine = np.flatnonzero(group_class == k)
        if len(mine) < len(wanted):
            continue
        for split in wanted:
            if (assigned[mine] == split).any():
                continue
            movable = [i for i in mine if free[i] and (assigned[mine] == assigned[i]).sum() > 1]
            if not movable:
                continue
            pick = min(movable, key=lambda i: abs(u[i] - centre[split]))
            notes.append(f"class {k}: group moved from {assigned[pick]} to {split} (none there)")
            assigned[pick], free[pick] = split, False
    return notes


def class_weights(labels: np.ndarray, n_classes: int) -> dict[int, float]:
    """Balanced weights n / (k * count) per class (0.0 for a class with no samples).

    Example:
        >>> class_weights(np.array([0, 0, 0, 1]), 2)
        {0: 0.6666666666666666, 1: 2.0}
    """
    counts = np.bincount(np.asarray(labels, np.int64), minlength=n_classes)
    present = int((counts > 0).sum())
    return {k: (float(len(labels) / (present * c)) if c else 0.0) for k, c in enumerate(counts.tolist())}


def imbalance_warnings(counts: Sequence[int], class_names: Sequence[str], where: str = "dataset") -> list[str]:
    """A warning for every class with under a fifth of the largest class's samples."""
    largest = max(counts) if len(counts) else 0
    return [f"warning: class {name!r} has {c} samples in the {where}, under 1/{IMBALANCE_RATIO:g} of the largest "
            f"class ({largest}); collect more, augment it, or train with class weights"
            for name, c in zip(class_names, counts, strict=True) if largest and c * IMBALANCE_RATIO < largest]


def format_counts(split: SplitFile, dataset: Dataset) -> str:
    """A table of samples and groups per split and class."""
    counts = split.counts(dataset)
    names = split.split_of(dataset.groups)
    width = max(8, *(len(c) for c in dataset.class_names))
    header = f"{'split':<10} {'groups':>7} {'samples':>8}  " + " ".join(f"{c:>{width}}" for c in dataset.class_names)
    lines = [header]
    for s, per_class in counts.items():
        n_groups = len(np.unique(dataset.groups[names == s]))
        lines.append(f"{s:<10} {n_groups:>7} {sum(per_class):>8}  " + " ".join(f"{c:>{width}}" for c in per_class))
    return "\n".join(lines)
