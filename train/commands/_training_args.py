"""Options shared by `edgekit train` and `edgekit sweep` -> TrainConfig."""

from __future__ import annotations

import argparse
from typing import Any

from edge.errors import UserError
from edge.sizes import parse_size_hxw

# option -> TrainConfig default when neither the user nor the preset's recipe sets it
DEFAULTS: dict[str, Any] = {"epochs": 5, "batch_size": 32, "optimizer": "adam", "learning_rate": 1e-3,
                            "lr_schedule": "constant", "label_smoothing": 0.0, "weight_decay": 0.0,
                            "augment": None, "class_weights": False, "bn_momentum": None,
                            "checkpoint": "best"}


def image_size_argument(text: str) -> tuple[int, int] | None:
    """argparse's type for --image-size: edge.sizes.parse_size_hxw, its error shown as a usage error."""
    try:
        return parse_size_hxw(text)
    except UserError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="dataset: .npz, image folder, .zip, keras:NAME or synthetic[:n=...]")
    parser.add_argument("--split", dest="split_file", help="split file from `edgekit split` (default: see docs)")
    parser.add_argument("--validation", choices=["val", "test"], default="val",
                        help="split used for validation during training (default val)")
    parser.add_argument("--image-size", type=image_size_argument, help="load images at HxW (default: the spec's input_shape, else the dataset's size)")
    group = parser.add_argument_group("optimisation (defaults: chapter settings, or the preset's recipe)")
    group.add_argument("--epochs", type=int)
    group.add_argument("--batch-size", type=int)
    group.add_argument("--optimizer", choices=["adam", "adamw", "sgd", "rmsprop"])
    group.add_argument("--lr", dest="learning_rate", type=float, help="learning rate (default 0.001)")
    group.add_argument("--lr-schedule", choices=["constant", "cosine", "onecycle"])
    group.add_argument("--label-smoothing", type=float)
    group.add_argument("--weight-decay", type=float)
    group.add_argument("--augment", help="augmentation options: JSON object or .json/.toml file; 'none' to disable")
    group.add_argument("--class-weights", action=argparse.BooleanOptionalAction, default=None,
                       help="weight classes by inverse frequency (default: off, or the preset's recipe)")
    group.add_argument("--bn-momentum", type=float,
                       help="BatchNorm momentum (default: Keras' 0.99; the car default uses 0.9)")
    group.add_argument("--time-budget", type=float, metavar="MINUTES",
                       help="train for this many minutes: epochs and the --lr-schedule are sized to the measured "
                            "epoch time, the best checkpoint is kept (run folder: budget.json)")
    group.add_argument("--patience", type=int, help="early stopping: epochs without val-loss improvement")
    group.add_argument("--checkpoint", choices=["best", "last"],
                       help="the epoch whose model the run keeps: lowest validation loss, or the last "
                            "(default best; the car default picks last when validation has < 200 images)")
    group.add_argument("--no-restore-best", dest="restore_best", action="store_false",
                       help="with early stopping, keep the last weights in memory instead of the best")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--strategy", choices=["default", "mirrored", "multi-worker"], default="default",
                        help="tf.distribute strategy; multi-worker reads TF_CONFIG")
    parser.add_argument("--limit", type=int, help="use at most N training and N validation samples")
    parser.add_argument("--no-deterministic", dest="deterministic", action="store_false",
                        help="skip tf.config.experimental.enable_op_determinism (a little faster)")
    parser.add_argument("--quiet", action="store_true", help="no Keras progress bar or model summary")


def config_kwargs(args: argparse.Namespace, model: str) -> dict[str, Any]:
    """TrainConfig keyword arguments: user's options > preset recipe > chapter defaults."""
    from train.augment import AugmentConfig
    from train.models import PRESETS

    recipe = PRESETS.get(model, {}).get("recipe", {})
    values: dict[str, Any] = {}
    for key, default in DEFAULTS.items():
        given = getattr(args, key, None)
        values[key] = given if given is not None else recipe.get(key, default)
    if isinstance(values["augment"], str):
        values["augment"] = AugmentConfig.parse(values["augment"]).to_dict()
    if values["augment"] is not None or "augment" not in recipe:  # a recipe's None: sized from the data
        values["augment"] = AugmentConfig.from_dict(values["augment"]).to_dict() if values["augment"] else {}
    if values["epochs"] is not None and values["epochs"] < 1:
        raise UserError("--epochs must be >= 1")
    return dict(dataset=args.dataset, model=model, split_file=args.split_file, validation=args.validation,
                image_size=args.image_size, patience=args.patience, time_budget=getattr(args, "time_budget", None),
                restore_best=args.restore_best, seed=args.seed, strategy=args.strategy, limit=args.limit,
                deterministic=args.deterministic, verbose=0 if args.quiet else 1, **values)
