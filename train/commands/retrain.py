"""`edgekit retrain`: fine-tune from production, int8, compare as TFLite, gate, register, report."""

from __future__ import annotations

import argparse

NAME = "retrain"
HELP = "fine-tune a candidate from production, convert to int8, gate it against production, register, report"
NEEDS = ("tensorflow",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="the dataset .npz (after `edgekit ingest`)")
    parser.add_argument("--split", required=True, help="its split file (val and fresh_test are evaluated)")
    parser.add_argument("--registry", default=None, help="registry folder (default ./models)")
    parser.add_argument("--name", help="model name in the registry")
    parser.add_argument("--out", help="run folder (default runs/retrain-TIME)")
    parser.add_argument("--from-scratch", action="store_true", help="train a new model instead of fine-tuning")
    parser.add_argument("--model", default="baseline", help="preset or spec for --from-scratch")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="default 3e-4 when fine-tuning, 1e-3 from scratch")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-drop", type=float, default=1.0,
                        help="gate: largest allowed overall accuracy drop vs production, points")
    parser.add_argument("--max-class-drop", type=float, default=3.0,
                        help="gate: largest allowed drop on any class, points")
    parser.add_argument("--critical", default="", help="classes that may not drop at all, e.g. red")
    parser.add_argument("--no-promote", action="store_true", help="register and report only")


def run(args: argparse.Namespace) -> int:
    from train.gate import GateRules
    from train.retrain import RetrainOptions, retrain

    critical = [c.strip() for c in args.critical.split(",") if c.strip()]
    result = retrain(RetrainOptions(
        data=args.data, split_file=args.split, name=args.name, registry=args.registry, out=args.out,
        from_scratch=args.from_scratch, model=args.model, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, seed=args.seed, promote=not args.no_promote,
        rules=GateRules(max_drop=args.max_drop, max_class_drop=args.max_class_drop, critical=critical),
    ))
    for split, pair in result.evaluations.items():
        prod = pair["production"]["accuracy"] if pair["production"] else None
        print(f"{split}: candidate {pair['candidate']['accuracy']:.2f}%"
              + (f" vs production {prod:.2f}%" if prod is not None else ""))
    verdict = "promoted" if result.promoted else ("passed, not promoted" if result.decision.promote else "rejected")
    print(f"gate: {verdict} ({result.version})")
    for reason in result.decision.reasons:
        print(f"  {reason}")
    print(f"report: {result.report}")
    return 0
