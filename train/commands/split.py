"""`edgekit split`: train/val/test by group hash, stratified by class; writes a split file."""

from __future__ import annotations

import argparse
from pathlib import Path

from train.commands.dataset import SOURCE_HELP, add_load_arguments

NAME = "split"
HELP = "assign whole groups to train/val/test by hash (stable as data grows); write a split file"
NEEDS: tuple[str, ...] = ("numpy", "cv2")


def parse_fractions(text: str) -> tuple[float, float, float]:
    from edge.errors import UserError

    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise UserError(f"--fractions {text!r}: give three numbers like 0.7,0.15,0.15") from None
    if len(values) != 3:
        raise UserError(f"--fractions {text!r}: give three numbers (train,val,test) like 0.7,0.15,0.15")
    return values[0], values[1], values[2]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help=SOURCE_HELP)
    parser.add_argument("--out", type=Path, required=True, help="split file to write (.json)")
    parser.add_argument("--fractions", default="0.7,0.15,0.15", help="train,val,test (default 0.7,0.15,0.15)")
    parser.add_argument("--salt", default="edgekit", help="mixed into the group hash (default edgekit)")
    parser.add_argument("--method", default="hash", choices=("hash", "balanced"),
                        help="hash: each group by its own hash (stable without any file); balanced: exact "
                             "per-class fractions (stable only through --update)")
    parser.add_argument("--keep-subsets", action="store_true",
                        help="keep the source's own train/test (e.g. the CIFAR archive); val carved from train")
    parser.add_argument("--update", type=Path, metavar="OLD.json",
                        help="an earlier split file: its groups keep their split, only new groups are placed")
    parser.add_argument("--fresh-test", type=float, default=0, metavar="N",
                        help="put the N newest new groups (or this fraction of them, if < 1) in a fresh_test split")
    add_load_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from train.commands.dataset import load_from_args
    from train.data import LoadReport
    from train.data.refs import fingerprint
    from train.splits import (
        class_weights,
        format_counts,
        imbalance_warnings,
        load_split,
        make_split,
        newest_groups,
    )

    report = LoadReport()
    dataset = load_from_args(args.dataset, args, report)
    previous = load_split(args.update) if args.update else None
    fresh = newest_groups(dataset, previous, args.fresh_test) if args.fresh_test else []
    split = make_split(dataset, parse_fractions(args.fractions), args.salt, args.keep_subsets, previous, fresh,
                       args.method)
    if fingerprint(args.dataset):
        split.info["dataset_sha256"] = fingerprint(args.dataset)
    indices = split.indices(dataset)
    weights = class_weights(dataset.labels[indices["train"]], len(dataset.class_names))
    split.info["class_weights"] = {dataset.class_names[k]: round(w, 4) for k, w in weights.items()}
    path = split.save(args.out)
    print(f"{dataset.name}: {len(dataset)} samples, {len(np.unique(dataset.groups))} groups -> {path}")
    print(format_counts(split, dataset))
    for note in split.info["repaired"]:
        print(f"note: {note}")
    if previous is not None:
        print(f"kept {split.info['kept_from_previous']} groups where {args.update} had them")
    for warning in imbalance_warnings(dataset.class_counts().tolist(), dataset.class_names):
        print(warning)
    print("class weights (train): " + ", ".join(f"{c}={w}" for c, w in split.info["class_weights"].items()))
    if report.skipped:
        print(report.format())
    return 0
