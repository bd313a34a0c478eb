"""`edgekit retrain`: fine-tune from production, int8, compare as TFLite, gate, register, report."""

from __future__ import annotations

import argparse

NAME = "retrain"
HELP = "fine-tune a candidate from production, convert to int8, gate it against production, register, report"
NEEDS = ("tensorflow",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from train.commands._training_args import image_size_argument

    parser.add_argument("--data", required=True, help="the dataset .npz (after `edgekit ingest`)")
    parser.add_argument("--split", required=True, help="its split file (val and fresh_test are evaluated)")
    parser.add_argument("--registry", default=None, help="registry folder (default ./models)")
    parser.add_argument("--name", help="model name in the registry")
    parser.add_argument("--out", help="run folder (default runs/retrain-TIME)")
    parser.add_argument("--from-scratch", action="store_true", help="train a new model instead of fine-tuning")
    parser.add_argument("--seed", type=int, default=1)
    recipe = parser.add_argument_group(
        "recipe (default: production's own training recipe, from its run.json; each option overrides one field; "
        "fine-tuning uses 0.3 x its learning rate)")
    recipe.add_argument("--model", help="preset or spec (used with --from-scratch)")
    recipe.add_argument("--image-size", type=image_size_argument, help="HxW")
    recipe.add_argument("--epochs", type=int)
    recipe.add_argument("--batch-size", type=int)
    recipe.add_argument("--optimizer", choices=["adam", "adamw", "sgd", "rmsprop"])
    recipe.add_argument("--learning-rate", "--lr", dest="learning_rate", type=float)
    recipe.add_argument("--lr-schedule", choices=["constant", "cosine", "onecycle"])
    recipe.add_argument("--weight-decay", type=float)
    recipe.add_argument("--label-smoothing", type=float)
    recipe.add_argument("--class-weights", action=argparse.BooleanOptionalAction, default=None)
    recipe.add_argument("--bn-momentum", type=float)
    recipe.add_argument("--checkpoint", choices=["best", "last"], help="keep the lowest-val-loss epoch or the last")
    recipe.add_argument("--augment", help="augmentation options: JSON object or .json/.toml file; 'none' to disable")
    parser.add_argument("--max-drop", type=float, default=1.0,
                        help="gate: largest allowed overall accuracy drop vs production, points (a drop counts only "
                             "if the images show it is real: one-sided 95%% interval, docs/loop.md)")
    parser.add_argument("--max-class-drop", type=float, default=3.0,
                        help="gate: largest allowed drop on any class, points")
    parser.add_argument("--critical", default="", help="classes that may not drop at all, e.g. red")
    parser.add_argument("--min-class-images", type=int, default=5,
                        help="absolute gate: a class with at least this many images may not have 0 recall")
    parser.add_argument("--force", action="store_true",
                        help="pass the absolute gate (no better than the majority class, a class never found) "
                             "anyway; recorded in the decision and the manifest")
    parser.add_argument("--no-promote", action="store_true", help="register and report only")


def run(args: argparse.Namespace) -> int:
    from train.augment import AugmentConfig
    from train.gate import GateRules
    from train.retrain import RECIPE_FIELDS, RetrainOptions, retrain

    critical = [c.strip() for c in args.critical.split(",") if c.strip()]
    recipe = {key: getattr(args, key) for key in RECIPE_FIELDS if getattr(args, key, None) is not None}
    if "augment" in recipe:
        recipe["augment"] = AugmentConfig.parse(recipe["augment"]).to_dict()
    result = retrain(RetrainOptions(
        data=args.data, split_file=args.split, name=args.name, registry=args.registry, out=args.out,
        from_scratch=args.from_scratch, seed=args.seed, promote=not args.no_promote, **recipe,
        rules=GateRules(max_drop=args.max_drop, max_class_drop=args.max_class_drop, critical=critical,
                        min_class_images=args.min_class_images, force=args.force),
    ))
    for split, pair in result.evaluations.items():
        prod = pair["production"]["accuracy"] if pair["production"] else None
        print(f"{split}: candidate {pair['candidate']['accuracy']:.2f}%"
              + (f" vs production {prod:.2f}%" if prod is not None else ""))
    for split, delta in result.decision.deltas.items():
        absolute = delta.get("absolute") or {}
        if absolute:
            print(f"{split}: absolute gate: accuracy lower bound {absolute['accuracy_lower_bound'] * 100:.2f}% must beat "
                  f"always '{absolute['majority_class']}' {absolute['majority_share'] * 100:.2f}%; no class with >= "
                  f"{absolute['min_class_images']} images at 0 recall"
                  + (" (FORCED past: --force)" if absolute.get("forced") else ""))
    verdict = "promoted" if result.promoted else ("passed, not promoted" if result.decision.promote else "rejected")
    print(f"gate: {verdict} ({result.version})")
    for reason in result.decision.reasons:
        print(f"  {reason}")
    print(f"report: {result.report}")
    return 0
