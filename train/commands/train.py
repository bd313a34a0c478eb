"""edgekit train: one model (or N seeds of it) -> run folder(s)."""

from __future__ import annotations

import argparse

NAME = "train"
HELP = "train a CNN from a preset or spec and write a run folder (model, history, curves, summary)"
NEEDS = ("tensorflow",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from train.commands._training_args import add_training_arguments

    add_training_arguments(parser)
    parser.add_argument("--model", "--preset", dest="model", default="car-small",
                        help="preset name (`edgekit presets`) or a .json/.toml model spec (default car-small, "
                             "the car default: its recipe is sized from the data, see docs/training.md)")
    parser.add_argument("--init-model", help="fine-tune from this model.keras instead of starting fresh")
    parser.add_argument("--repeat", type=int, default=1,
                        help="train N seeds (seed, seed+1, ...) and report mean ± std")
    parser.add_argument("--out", help="run folder to write, e.g. runs/baseline (default runs/train-TIME)")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from edge.errors import UserError
    from train.commands._training_args import config_kwargs
    from train.training import TrainConfig, train
    from train.training.analysis import run_report, summary_block
    from train.training.sweep import sweep_table

    if args.repeat < 1:
        raise UserError("--repeat must be >= 1")
    kwargs = config_kwargs(args, args.model)
    import time

    out = Path(args.out or f"runs/train-{time.strftime('%Y%m%d-%H%M%S')}")
    results = []
    for index in range(args.repeat):
        seed = args.seed + index
        run_out = out if args.repeat == 1 else out / f"seed-{seed}"
        config = TrainConfig(**{**kwargs, "seed": seed, "out": str(run_out), "init_model": args.init_model})
        result = train(config)
        results.append(result)
        if args.quiet:
            print(summary_block(result.summary))
            print(run_report(result.summary))
        print(f"run folder: {result.out}")
        if result.status in ("nan", "interrupted"):
            print(result.message)
            return 3 if result.status == "nan" else 130
    if args.repeat > 1:
        markdown, table = sweep_table([(args.model, [r.summary for r in results])])
        (out / "repeat.md").write_text(markdown)
        (out / "repeat.json").write_text(json.dumps(table, indent=2) + "\n")
        print(markdown)
    return 0
