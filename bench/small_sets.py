"""The small-data family for `make bench-small`: CIFAR-10 subsets (3 and 10 classes; ~300, 1,000 and
3,000 training images; balanced and 1:20) built from the shared JPEG archive, plus the synthetic set.

Training images come from the archive's train/ folder; validation (30% of the training count,
same class shares, as a user's own split would give) and a larger test set (same shares, up to
2,000 images, so that one point is more than one image) from its test/ folder. Each set is
saved once as an edgekit .npz with a split file, and reused.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CIFAR_ZIP = ROOT.parent / "shared" / "datasets" / "cifar10-jpg.zip"
CLASSES_10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CLASSES_3 = ["airplane", "ship", "truck"]  # the classes of issue 12's reproduction


@dataclass(frozen=True)
class SetSpec:
    name: str
    classes: tuple[str, ...]
    train: int  # training images in all
    ratio: int  # most common : rarest (1 = balanced)

    def shares(self) -> np.ndarray:
        """Class shares: geometric from 1 down to 1/ratio."""
        k = len(self.classes)
        weights = np.array([self.ratio ** (-i / (k - 1)) for i in range(k)]) if k > 1 else np.ones(1)
        return weights / weights.sum()


def family() -> list[SetSpec]:
    sets = []
    for classes in (CLASSES_3, CLASSES_10):
        for size in (300, 1000, 3000):
            for ratio in (1, 20):
                sets.append(SetSpec(f"c{len(classes)}-n{size}-{'bal' if ratio == 1 else f'1to{ratio}'}",
                                    tuple(classes), size, ratio))
    return sets


def _counts(total: int, shares: np.ndarray, cap: int) -> list[int]:
    return [int(min(cap, max(1, round(total * s)))) for s in shares]


def build(spec: SetSpec, folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write folder/<name>.npz and folder/<name>.split.json (once); returns both paths."""
    import cv2

    from train.data.dataset import Dataset
    from train.splits import SplitFile

    data, split = folder / f"{spec.name}.npz", folder / f"{spec.name}.split.json"
    if data.is_file() and split.is_file():
        return data, split
    shares = spec.shares()
    train_n = _counts(spec.train, shares, 5000)
    val_n = _counts(int(spec.train * 0.3), shares, 500)
    test_total = min(2000, int(1000 / shares.max()))
    test_n = [min(1000 - v, c) for v, c in zip(val_n, _counts(test_total, shares, 1000), strict=True)]
    rng = np.random.default_rng(seed)
    images, labels, groups, subsets = [], [], [], []
    with zipfile.ZipFile(CIFAR_ZIP) as archive:
        names = archive.namelist()
        for label, cls in enumerate(spec.classes):
            for part, wanted in (("train", {"train": train_n[label]}),
                                 ("test", {"val": val_n[label], "test": test_n[label]})):
                members = sorted(n for n in names if n.startswith(f"cifar10/{part}/{cls}/") and n.endswith(".jpg"))
                picked = rng.permutation(len(members))
                start = 0
                for subset, count in wanted.items():
                    for index in picked[start:start + count]:
                        raw = np.frombuffer(archive.read(members[index]), np.uint8)
                        images.append(cv2.cvtColor(cv2.imdecode(raw, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
                        labels.append(label)
                        groups.append(members[index])
                        subsets.append(subset)
                    start += count
    dataset = Dataset(np.stack(images), np.asarray(labels, np.int64), list(spec.classes), np.asarray(groups),
                      np.asarray([f"zip:{g}" for g in groups]), np.asarray(subsets), spec.name,
                      {"ref": spec.name, "ratio": spec.ratio})
    folder.mkdir(parents=True, exist_ok=True)
    dataset.save(data)
    SplitFile({g: s for g, s in zip(groups, subsets, strict=True)}, class_names=list(spec.classes),
              info={"dataset": spec.name, "counts": {"train": train_n, "val": val_n, "test": test_n}}).save(split)
    return data, split


def build_synthetic(folder: Path, n: int = 3000) -> tuple[Path, Path]:
    """The embedded synthetic set with its own group-hash split."""
    from train.data import load_dataset
    from train.splits import make_split

    data, split = folder / "synthetic.npz", folder / "synthetic.split.json"
    if not (data.is_file() and split.is_file()):
        dataset = load_dataset(f"synthetic:n={n}")
        folder.mkdir(parents=True, exist_ok=True)
        dataset.save(data)
        make_split(dataset).save(split)
    return data, split
