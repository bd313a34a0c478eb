"""edgekit sweep: several presets/specs x N seeds -> Markdown + JSON table (mean ± std)."""

from __future__ import annotations

import argparse

NAME = "sweep"
HELP = "train several presets/specs with N seeds each and tabulate the chapter's figures as mean ± std"
NEEDS = ("tensorflow",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from train.commands._training_args import add_training_arguments

    add_training_arguments(parser)
    parser.add_argument("--models", nargs="+", required=True, help="presets and/or spec files; the first is the reference")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per model: seed, seed+1, ... (default 3)")
    parser.add_argument("--out", required=True, help="sweep folder (run folders + sweep.md + sweep.json)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edge.errors import UserError
    from train.commands._training_args import config_kwargs
    from train.models import load_spec
    from train.training.sweep import run_sweep, write_sweep

    if args.seeds < 1:
        raise UserError("--seeds must be >= 1")
    for model in args.models:
        load_spec(model)  # every spec error before any training
    out = Path(args.out)
    base = config_kwargs(args, args.models[0])
    base.pop("model")
    base.pop("seed")
    base.pop("out", None)
    seeds = [args.seed + i for i in range(args.seeds)]
    results = run_sweep(args.models, seeds, base, out)
    markdown_path, json_path = write_sweep(results, out)
    print(markdown_path.read_text())
    print(f"written: {markdown_path} and {json_path}")
    return 0
