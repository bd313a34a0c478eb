"""`edgekit audit`: near-duplicate images across splits (leakage between train and test)."""

from __future__ import annotations

import argparse
from pathlib import Path

from train.commands.dataset import SOURCE_HELP, add_load_arguments

NAME = "audit"
HELP = "find near-duplicate images across splits (dHash + Hamming threshold)"
NEEDS: tuple[str, ...] = ("numpy", "cv2")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help=SOURCE_HELP)
    parser.add_argument("--split", type=Path, help="split file from `edgekit split` (default: the source's own "
                                                   "subsets, e.g. the archive's train/test)")
    parser.add_argument("--threshold", type=int, default=4, help="largest Hamming distance of 64 bits (default 4)")
    parser.add_argument("--pairs", type=Path, help="write every pair as CSV (split pair, source a, source b, distance, label a, label b)")
    parser.add_argument("--show", type=int, default=10, help="pairs to print (default 10)")
    parser.add_argument("--fail-on-leak", action="store_true", help="exit 3 when any pair is found")
    add_load_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import csv
    import time

    import numpy as np

    from edge.errors import UserError
    from train.audit import audit
    from train.commands.dataset import load_from_args
    from train.splits import load_split

    dataset = load_from_args(args.dataset, args)
    if args.split:
        splits = load_split(args.split).indices(dataset)
    else:
        names = sorted({s for s in dataset.subsets.tolist() if s})
        if len(names) < 2:
            raise UserError(f"{args.dataset} has no given subsets to compare: pass --split FILE from `edgekit split`")
        splits = {s: np.flatnonzero(dataset.subsets == s) for s in names}
    start = time.perf_counter()
    # a shard set's index holds every image's dHash: the audit never opens a shard
    report = audit(dataset.images, splits, args.threshold, hashes=getattr(dataset, "dhash", None),
                   labels=dataset.labels)
    print(report.format(dataset.sources, args.show, dataset.class_names))
    print(f"audited {len(dataset)} images in {time.perf_counter() - start:.1f} s")
    if args.pairs:
        args.pairs.parent.mkdir(parents=True, exist_ok=True)
        with open(args.pairs, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["splits", "source_a", "source_b", "distance", "label_a", "label_b"])
            for name, pairs in report.pairs.items():
                for a, b, d in pairs:
                    writer.writerow([name, dataset.sources[a], dataset.sources[b], int(d),
                                     dataset.class_names[dataset.labels[a]], dataset.class_names[dataset.labels[b]]])
        print(f"wrote {report.total} pairs to {args.pairs}")
    return 3 if args.fail_on_leak and report.total else 0
