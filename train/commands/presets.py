"""edgekit presets: the model presets with their cost on the car (train.models.params): parameters,
multiply-accumulates per frame and int8 size, so a user can pick on the accuracy/cost curve."""

from __future__ import annotations

import argparse

NAME = "presets"
HELP = "list model presets with their cost: parameters, MACs per frame, int8 size (--summary: Keras summary)"
NEEDS: tuple[str, ...] = ()  # --summary imports Keras; the table is arithmetic


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", help="presets or spec files to show (default: all presets)")
    parser.add_argument("--summary", action="store_true", help="print each model's Keras summary")
    parser.add_argument("--classes", type=int, default=10, help="number of classes (default 10)")
    parser.add_argument("--input-shape", default="32x32x3", help="HxWxC input (default 32x32x3)")


def run(args: argparse.Namespace) -> int:
    from edge.errors import UserError
    from train.models import CHAPTER_PARAMS, PRESETS, load_spec
    from train.models.params import cost

    try:
        shape = tuple(int(v) for v in args.input_shape.lower().split("x"))
        assert len(shape) == 3
    except (ValueError, AssertionError):
        raise UserError(f"--input-shape must look like 32x32x3, got {args.input_shape!r}") from None
    print(f"{'preset':<16} {'params':>11} {'chapter':>11} {'MACs/frame':>12} {'int8 KB':>8}  description")
    for name in args.names or list(PRESETS):
        try:
            spec = load_spec(name, input_shape=shape)  # type: ignore[arg-type]
        except UserError as error:
            if args.names:
                raise
            print(f"{name:<16} {'-':>11} {'':>11} {'':>12} {'':>8}  does not fit {args.input_shape}: {error}")
            continue
        chapter = CHAPTER_PARAMS.get(name)
        chapter_text = f"{chapter:,}" if chapter and shape == (32, 32, 3) and args.classes == 10 else ""
        spent = cost(spec, args.classes)
        print(f"{spec.name:<16} {spent.params:>11,} {chapter_text:>11} {spent.macs:>12,} {spent.int8_bytes / 1000:>8.1f}"
              f"  {spec.description}")
        if args.summary:  # the only case that needs Keras (and so TensorFlow)
            from train.models import build_model

            build_model(spec, args.classes).summary(print_fn=lambda line, **_: print(line))
    return 0
