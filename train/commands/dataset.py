"""`edgekit dataset build|info`: load any dataset source into one .npz and describe it."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "dataset"
HELP = "build a dataset (.npz, or a shard set for data beyond memory) from a folder, zip, keras:NAME or synthetic; show one"
NEEDS: tuple[str, ...] = ("numpy", "cv2", "tqdm")  # shard sets also need tensorflow

SOURCE_HELP = ("an image folder (one subfolder per class), a .zip of one, a dataset .npz, a shard set folder, "
               "keras:mnist|fashion_mnist|cifar10|cifar100, or synthetic[:n=6000,size=32x32,seed=0,frames=20,"
               "conditions=default]")


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that loads a dataset reference."""
    parser.add_argument("--size", help="resize images to HxW (through the shared preprocessing), e.g. 32x32")
    parser.add_argument("--resize", default="stretch", choices=("stretch", "center-crop", "letterbox"),
                        help="how to resize (default stretch)")
    parser.add_argument("--group", help="group id of folder/zip images: level:N (N-th folder below the class "
                                        "folder) or regex:PATTERN on the file name (default: each file alone)")
    parser.add_argument("--min-size", type=int, default=8, help="skip images smaller than this many pixels a side")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="load a source and save it as a dataset .npz or a shard set",
                           description="Load a source and save it as a dataset .npz (in memory) or a shard set "
                                       "(TFRecord shards + an index, streamed; docs/datasets.md); prints a summary "
                                       "and a report of skipped inputs.")
    build.add_argument("--source", default="synthetic", help=SOURCE_HELP + " (default synthetic)")
    build.add_argument("--out", type=Path, required=True,
                       help="output: a .npz file, or a new folder for a shard set")
    build.add_argument("--format", choices=("auto", "npz", "shards"), default="auto",
                       help="npz (all images in memory) or shards (beyond memory); auto: npz when --out ends "
                            "in .npz, else shards")
    build.add_argument("--encoding", default="png",
                       help="shards: how images that are not kept as they were stored are encoded: png "
                            "(lossless, default) or jpeg[:QUALITY]")
    build.add_argument("--records-per-shard", type=int, default=2048, help="shards: records per file (default 2048)")
    build.add_argument("--bad-list", type=Path, help="write every skipped input with its reason to this file")
    add_load_arguments(build)
    info = sub.add_parser("info", help="describe a dataset (.npz or any source)")
    info.add_argument("source", help=SOURCE_HELP)
    add_load_arguments(info)


def load_from_args(ref: str, args: argparse.Namespace, report=None):
    """Load `ref` with the shared options; returns the Dataset."""
    from edge.sizes import parse_size_hxw
    from train.data import load_dataset

    return load_dataset(ref, parse_size_hxw(args.size), group=args.group, resize=args.resize,
                        min_size=args.min_size, report=report)


def run(args: argparse.Namespace) -> int:
    from edge.errors import UserError
    from train.data import LoadReport, file_sha256

    report = LoadReport()
    if args.action == "build":
        fmt = args.format if args.format != "auto" else ("npz" if args.out.suffix == ".npz" else "shards")
        if fmt == "npz" and args.out.suffix != ".npz":
            raise UserError(f"--out must end in .npz for --format npz, got {args.out}")
        if fmt == "shards" and args.out.suffix == ".npz":
            raise UserError(f"a shard set is a folder: give --out a folder name (e.g. data/set.shards), not {args.out}")
        if fmt == "shards":
            from edge.sizes import parse_size_hxw
            from train.data.shard_build import build_shards
            from train.data.shards import INDEX_NAME, parse_encoding

            encoding, quality = parse_encoding(args.encoding)
            shards = build_shards(args.source, args.out, parse_size_hxw(args.size), group=args.group,
                                  resize=args.resize, min_size=args.min_size, encoding=encoding, quality=quality,
                                  records_per_shard=args.records_per_shard, report=report)
            print(shards.summary())
            print(f"saved {args.out} (index sha256 {file_sha256(args.out / INDEX_NAME)[:16]}...)")
        else:
            dataset = load_from_args(args.source, args, report)
            if not hasattr(dataset, "save"):  # a shard set, into memory (refused when too large)
                dataset = dataset.load()
            path = dataset.save(args.out)
            print(dataset.summary())
            print(f"saved {path} (sha256 {file_sha256(path)[:16]}...)")
    else:
        dataset = load_from_args(args.source, args, report)
        print(dataset.summary())
        if dataset.info.get("ref"):
            print(f"  from {dataset.info['ref']}")
    if report.seen:
        print(report.format())
        bad_list = getattr(args, "bad_list", None)
        if bad_list and report.skipped:
            print(f"full list of skipped inputs: {report.write(bad_list)}")
    return 0
