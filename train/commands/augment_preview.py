"""edgekit augment-preview: one row per transform on the same images, plus all combined."""

from __future__ import annotations

import argparse

NAME = "augment-preview"
HELP = "write a PNG showing each augmentation (one row per transform) and all combined, like Figs 5.1-5.3"
NEEDS = ("tensorflow",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="dataset reference; images spread over it are shown")
    source.add_argument("--images", nargs="+", help="image files")
    parser.add_argument("--augment", help="options (JSON or .json/.toml); default: the chapter's example values")
    parser.add_argument("-n", "--count", type=int, default=6, help="images per row (default 6)")
    parser.add_argument("--size", type=int, default=128, help="show images at SIZExSIZE (default 128)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="augment-preview.png", help="PNG to write")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from edge.preprocess import PreprocessSpec, preprocess
    from train.augment import CHAPTER_COMBINED, CHAPTER_EXAMPLE, AugmentConfig
    from train.augment_preview import preview

    if args.dataset:
        from train.data import load_dataset

        all_images = load_dataset(args.dataset).images
        picked = np.linspace(0, len(all_images) - 1, max(1, args.count)).astype(int)  # spread over the dataset
        frames = list(all_images[picked])
    else:
        from train.predict import read_image

        frames = [read_image(path) for path in args.images[: max(1, args.count)]]
    spec = PreprocessSpec(input_size=(args.size, args.size))
    images = np.stack([preprocess(frame, spec) for frame in frames])
    config = AugmentConfig.parse(args.augment) if args.augment else CHAPTER_EXAMPLE
    combined = config if args.augment else CHAPTER_COMBINED
    path = preview(images, config, combined, Path(args.out), seed=args.seed)
    print(path)
    return 0
