"""`edgekit demo`: the main job on the embedded synthetic default, one summary line per step.

The demo is a list of steps; each takes the shared context and returns its
summary line. Later parts add steps (train, convert, deploy, run, retrain) by
appending to STEPS.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NAME = "demo"
HELP = "run the whole job on the embedded synthetic default (dataset, split, audit, ...)"
NEEDS: tuple[str, ...] = ("numpy", "cv2", "tqdm")


@dataclass
class DemoContext:
    """What steps share: the output folder, the options, and what earlier steps made."""

    out: Path
    args: argparse.Namespace
    artifacts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[DemoContext], str]


def step_dataset(ctx: DemoContext) -> str:
    from train.data import load_dataset

    dataset = load_dataset(ctx.args.dataset)
    path = dataset.save(ctx.out / "dataset.npz")
    ctx.artifacts.update(dataset=dataset, dataset_path=path)
    counts = ", ".join(f"{c}={k}" for c, k in zip(dataset.class_names, dataset.class_counts(), strict=True))
    return f"{len(dataset)} images {dataset.image_size[0]}x{dataset.image_size[1]}, " \
           f"{len(set(dataset.groups.tolist()))} scenes ({counts}) -> {path}"


def step_split(ctx: DemoContext) -> str:
    from train.splits import make_split

    dataset = ctx.artifacts["dataset"]
    split = make_split(dataset)
    path = split.save(ctx.out / "split.json")
    ctx.artifacts.update(split=split, split_path=path)
    sizes = {name: len(idx) for name, idx in split.indices(dataset).items()}
    return "by scene hash: " + ", ".join(f"{k}={v}" for k, v in sizes.items()) + f" -> {path}"


def step_audit(ctx: DemoContext) -> str:
    import numpy as np

    from train.audit import audit, dhash

    dataset, split = ctx.artifacts["dataset"], ctx.artifacts["split"]
    hashes = dhash(dataset.images)
    honest = audit(dataset.images, split.indices(dataset), hashes=hashes)
    order = np.random.default_rng(0).permutation(len(dataset))  # the chapter's mistake: shuffle frames
    cut = np.cumsum([int(len(order) * f) for f in split.fractions[:2]])
    shuffled = audit(dataset.images, dict(zip(("train", "val", "test"), np.split(order, cut), strict=True)),
                     hashes=hashes)
    ctx.artifacts.update(audit=honest)
    return (f"near-duplicates across splits: {honest.total} pairs when split by scene, "
            f"{shuffled.total} if frames were shuffled ({shuffled.leaked('train~test')} leaked test images)")


STEPS: list[Step] = [Step("dataset", step_dataset), Step("split", step_split), Step("audit", step_audit)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo"), help="output folder (default ./demo)")
    parser.add_argument("--dataset", default="synthetic", help="dataset reference (default: the synthetic default)")


def run(args: argparse.Namespace) -> int:
    ctx = DemoContext(args.out, args)
    args.out.mkdir(parents=True, exist_ok=True)
    total = time.perf_counter()
    for number, step in enumerate(STEPS, 1):
        start = time.perf_counter()
        line = step.run(ctx)
        print(f"[{number}/{len(STEPS)}] {step.name:<8} {line} ({time.perf_counter() - start:.1f} s)", flush=True)
    print(f"demo done in {time.perf_counter() - total:.1f} s; outputs in {args.out}/")
    return 0
