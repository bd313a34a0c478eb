"""Near-duplicates across splits: the leak the chapter warns about (10,000 photos of 100 pets;
the chapter: docs/training.md#the-chapter).

Each image gets a 64-bit difference hash (dHash: grey 9x8, one bit per
left-right brightness step). Pairs from different splits within a Hamming
distance of `threshold` are near-duplicates. The search splits the 64 bits
into threshold+1 bands: by the pigeonhole principle two hashes within the
threshold agree exactly on at least one band, so only pairs that share a band
value are compared (multi-index hashing), with sorted arrays, not Python loops.

Example:
    >>> report = audit(dataset, split.indices(dataset), threshold=4)  # doctest: +SKIP
    >>> print(report.format(dataset))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import combinations

import cv2
import numpy as np

from edge.errors import UserError

DEFAULT_THRESHOLD = 4
SPLIT_ORDER = ("train", "val", "test", "fresh_test")


def ordered_splits(names: list[str]) -> list[str]:
    """Training splits first, held-out ones after (train, val, test, fresh_test, then the rest by name).

    A pair is always named `earlier~later` and counts the *later* split's samples that have a
    near-copy in the earlier one, so the report says the same thing whichever way the splits came.
    """
    known = [name for name in SPLIT_ORDER if name in names]
    return known + sorted(name for name in names if name not in SPLIT_ORDER)


def dhash(images: np.ndarray) -> np.ndarray:
    """64-bit difference hashes (uint64) of uint8 RGB images (N, H, W, 3)."""
    if images.ndim != 4 or images.dtype != np.uint8:
        raise UserError(f"dhash needs uint8 images (N, H, W, 3), got {images.dtype} {images.shape}")
    n = len(images)
    small = np.empty((n, 8, 9), np.float32)
    weights = np.array([0.299, 0.587, 0.114], np.float32)
    for i in range(n):  # cv2.resize per image is ~microseconds; area averaging resists noise
        small[i] = cv2.resize(images[i], (9, 8), interpolation=cv2.INTER_AREA).astype(np.float32) @ weights
    bits = small[:, :, 1:] > small[:, :, :-1]
    return np.packbits(bits.reshape(n, 64), axis=1).view(">u8").reshape(n).astype(np.uint64)


def _bands(threshold: int) -> list[tuple[int, int]]:
    count = threshold + 1
    if count > 32:
        raise UserError(f"threshold {threshold} is too large: use at most 31 (of 64 bits)")
    edges = np.linspace(0, 64, count + 1).round().astype(int)
    return list(zip(edges[:-1], edges[1:], strict=True))


def near_pairs(a: np.ndarray, b: np.ndarray, threshold: int, block: int = 1 << 22) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (i, j) with popcount(a[i] ^ b[j]) <= threshold; returns (i, j, distance) arrays."""
    found_i, found_j = [], []
    for lo, hi in _bands(threshold):
        mask = np.uint64((1 << (hi - lo)) - 1)
        key_a = (a >> np.uint64(64 - hi)) & mask
        key_b = (b >> np.uint64(64 - hi)) & mask
        order = np.argsort(key_b, kind="stable")
        sorted_b = key_b[order]
        start = np.searchsorted(sorted_b, key_a, side="left")
        stop = np.searchsorted(sorted_b, key_a, side="right")
        hits = stop - start
        rows = np.flatnonzero(hits)
        # expand the candidate pairs in blocks to bound memory on degenerate buckets
        cum = np.cumsum(hits[rows])
        begin = 0
        while begin < len(rows):
            end = int(np.searchsorted(cum, (cum[begin - 1] if begin else 0) + block, side="right"))
            end = max(end, begin + 1)
            r = rows[begin:end]
            counts = hits[r]
            i = np.repeat(r, counts)
            offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            j = order[np.repeat(start[r], counts) + offsets]
            close = np.bitwise_count(a[i] ^ b[j]) <= threshold
            found_i.append(i[close])
            found_j.append(j[close])
            begin = end
    if not found_i:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    pair_ids = np.unique(np.concatenate(found_i).astype(np.int64) * len(b) + np.concatenate(found_j))
    i, j = pair_ids // len(b), pair_ids % len(b)
    return i, j, np.bitwise_count(a[i] ^ b[j]).astype(np.int64)


@dataclass
class AuditReport:
    """Near-duplicate pairs across splits.

    pairs maps "train~test" to an (M, 3) int64 array of (dataset index a, dataset index b, distance).
    labels (dataset labels, when given) lets the report count pairs whose two labels differ: a
    near-copy with another label is a labeling question, not only a leak.
    """

    threshold: int
    sizes: dict[str, int]
    pairs: dict[str, np.ndarray] = field(default_factory=dict)
    labels: np.ndarray | None = None

    def cross_label(self, name: str) -> int:
        """Pairs of `name` whose two images carry different labels (0 when labels are unknown)."""
        p = self.pairs.get(name)
        if self.labels is None or p is None or not len(p):
            return 0
        return int((self.labels[p[:, 0]] != self.labels[p[:, 1]]).sum())

    def count(self, name: str) -> int:
        return len(self.pairs.get(name, ()))

    @property
    def total(self) -> int:
        return sum(len(p) for p in self.pairs.values())

    def leaked(self, name: str) -> int:
        """Samples of the second split with a near-duplicate in the first."""
        p = self.pairs.get(name)
        return 0 if p is None or not len(p) else len(np.unique(p[:, 1]))

    def to_dict(self) -> dict:
        data = {"threshold": self.threshold, "sizes": self.sizes,
                "pairs": {k: len(v) for k, v in self.pairs.items()},
                "leaked_samples": {k: self.leaked(k) for k in self.pairs}}
        if self.labels is not None:
            data["cross_label_pairs"] = {k: self.cross_label(k) for k in self.pairs}
        return data

    def format(self, sources: np.ndarray | None = None, limit: int = 10,
               class_names: list[str] | None = None) -> str:
        """One line per split pair (always "N <later split> samples have a near-copy in <earlier>"),
        pairs with different labels counted apart, then the closest pairs with both labels."""
        lines = [f"near-duplicates (dHash, Hamming <= {self.threshold}):"]
        for name, p in self.pairs.items():
            first, second = name.split("~")
            share = self.leaked(name) / max(self.sizes.get(second, 1), 1)
            line = (f"  {name:<16} {len(p):>7} pairs; {self.leaked(name)} of {self.sizes.get(second, 0)} "
                    f"{second} samples ({share:.1%}) have a near-copy in {first}")
            if self.labels is not None and len(p):
                line += f"; {self.cross_label(name)} of the pairs have different labels"
            lines.append(line)

        def label(index: int) -> str:
            if self.labels is None:
                return ""
            value = int(self.labels[index])
            return f" [{class_names[value] if class_names else value}]"

        if sources is not None and limit:
            shown = 0
            for name, p in self.pairs.items():
                for a, b, d in p[np.argsort(p[:, 2], kind="stable")][: max(limit - shown, 0)]:
                    differ = "  (labels differ)" if self.labels is not None and \
                        self.labels[a] != self.labels[b] else ""
                    lines.append(f"    {name} d={d}: {sources[a]}{label(a)}  ~  {sources[b]}{label(b)}{differ}")
                    shown += 1
            if self.total > shown:
                lines.append(f"    ... {self.total - shown} more pairs (write them all with --pairs FILE)")
        return "\n".join(lines)


def audit(images: np.ndarray, splits: Mapping[str, np.ndarray], threshold: int = DEFAULT_THRESHOLD,
          hashes: np.ndarray | None = None, labels: np.ndarray | None = None) -> AuditReport:
    """Find near-duplicate pairs between every two splits.

    Args:
        images: (N, H, W, 3) uint8, e.g. dataset.images.
        splits: split name -> dataset indices (e.g. SplitFile.indices(dataset)); pairs are named
            in `ordered_splits` order whatever the mapping's order.
        threshold: largest Hamming distance (of 64 bits) that counts as a near-duplicate.
        hashes: precomputed dhash(images), to skip hashing.
        labels: dataset labels, to count and show pairs whose labels differ.

    Example:
        >>> report = audit(ds.images, {"train": np.arange(100), "test": np.arange(100, 120)})  # doctest: +SKIP
        >>> report.count("train~test")  # doctest: +SKIP
        0
    """
    if threshold < 0:
        raise UserError(f"threshold must be >= 0, got {threshold}")
    hashes = dhash(images) if hashes is None else hashes
    names = ordered_splits([name for name, idx in splits.items() if len(idx)])
    report = AuditReport(threshold, {name: len(idx) for name, idx in splits.items()},
                         labels=None if labels is None else np.asarray(labels))
    for first, second in combinations(names, 2):
        ia, ib = np.asarray(splits[first]), np.asarray(splits[second])
        i, j, d = near_pairs(hashes[ia], hashes[ib], threshold)
        report.pairs[f"{first}~{second}"] = np.stack([ia[i], ib[j], d], axis=1) if len(i) else np.zeros((0, 3), np.int64)
    return report
