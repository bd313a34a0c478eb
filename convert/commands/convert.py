"""`edgekit convert RUN_OR_MODEL`: Keras -> checked TFLite bundles (float32, float16, dynamic, int8)."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "convert"
HELP = "convert a trained model to TFLite, check its accuracy against Keras, and write verified bundles"
NEEDS = ("tensorflow", "keras")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path, metavar="RUN_OR_MODEL", help="run folder (with run.json) or a .keras file")
    parser.add_argument("--mode", action="append", choices=["float32", "float16", "dynamic", "int8"],
                        help="conversion mode; repeat for several (default: int8)")
    parser.add_argument("--out", type=Path, help="bundle folder (several modes: one sub-folder per mode); "
                        "default RUN/bundles/MODE or MODEL-MODE")
    parser.add_argument("--archive", action="store_true", help="also write OUT.tar.gz")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bundle")
    parser.add_argument("--name", help="model name in the manifest (default: the dataset's name, e.g. lights for data/lights.npz)")
    parser.add_argument("--version", dest="bundle_version", help="model version in the manifest (default: UTC time)")
    data = parser.add_argument_group("data (taken from run.json for a run folder)")
    data.add_argument("--data", help="dataset reference (as for `edgekit train`)")
    data.add_argument("--split-file", type=Path, help="split file (.json) of the dataset")
    data.add_argument("--labels", help="class names, comma-separated, in output order")
    data.add_argument("--input-scale", type=float, help="for a model without a Rescaling layer: the pixel "
                      "scaling its training used (e.g. 0.00392156862745098); a Rescaling layer is added")
    data.add_argument("--rep-size", type=int, default=300, help="int8 representative images from the training split")
    check = parser.add_argument_group("accuracy check and gates")
    check.add_argument("--split", choices=["val", "test", "train"],
                       help="split to check on (default val; test when the data has no val split)")
    check.add_argument("--max-eval", type=int, help="check on at most this many images (random subset)")
    check.add_argument("--no-check", dest="accuracy_check", action="store_false", help="skip the accuracy check")
    check.add_argument("--max-drop", type=float, default=1.0, help="max overall accuracy drop in points")
    check.add_argument("--max-class-drop", type=float, default=3.0, help="max accuracy drop of any class in points")
    check.add_argument("--no-gate", dest="gate", action="store_false",
                       help="write bundles even when a gate fails (recorded in the manifest)")
    check.add_argument("--force", action="store_true",
                       help="write the bundle even if the absolute gate refuses it (no better than the majority "
                            "class, or a class never found; --no-gate also lets it through); the manifest records it")
    check.add_argument("--min-class-images", type=int, default=5,
                       help="absolute gate: a class with at least this many images may not have 0 recall (default 5)")
    check.add_argument("--check-runtime", action="append", default=[], metavar="PYTHON",
                       help="also load and run the model with this Python (repeatable), e.g. .venv-pi214/bin/python")
    check.add_argument("--report", type=Path, help="write every mode's figures (also failed ones) to this JSON file")
    check.add_argument("--latency-runs", type=int, default=200, help="invocations per latency measurement")


def _print_result(result) -> None:  # noqa: ANN001 - ModeResult, imported lazily
    print(f"== {result.mode}: {result.size_bytes / 1024:.1f} KiB ({result.size_ratio:.3f} of float32)")
    if result.accuracy:
        a = result.accuracy
        print(f"   accuracy on {a['split']} ({a['images']} images): keras {a['keras_accuracy']:.2f}%  "
              f"tflite {a['tflite_accuracy']:.2f}%  drop {a['drop']:+.2f} pt  agreement {a['agreement']:.2f}%  "
              f"mean |dp| {a['mean_abs_prob_diff']:.4f}")
        width = max(len(name) for name in a["per_class"])
        print(f"   {'class':{width}}  images   keras  tflite    drop")
        for name, row in a["per_class"].items():
            if row["drop"] is not None:
                print(f"   {name:{width}}  {row['count']:6d}  {row['keras']:6.2f}  {row['tflite']:6.2f}  {row['drop']:+6.2f}")
        moved = sum(abs(v) for line in a["confusion_diff"] for v in line) // 2
        print(f"   confusion matrices differ in {moved} image(s) (full matrices: manifest 'accuracy' or --report)")
    lat = list(result.latency.values())
    print("   latency: " + ", ".join(f"{v['threads']} thread(s) p50 {v['p50_ms']:.3f} ms p99 {v['p99_ms']:.3f} ms"
                                    for v in lat))
    absolute = (result.accuracy or {}).get("absolute") or {}
    if absolute:
        print(f"   absolute gate: tflite accuracy {absolute['accuracy'] * 100:.2f}% (95% lower bound "
              f"{absolute['accuracy_lower_bound'] * 100:.2f}%) must beat always '{absolute['majority_class']}' "
              f"{absolute['majority_share'] * 100:.2f}%; no class with >= {absolute['min_class_images']} images at 0 recall: "
              + ("passed" if absolute["passed"] else "FORCED past it (--force)" if absolute["forced"] else "refused"))
    for failure in result.gate_failures:
        print(f"   GATE FAILED: {failure}")
    if result.bundle:
        print(f"   bundle: {result.bundle}" + (f" and {result.archive}" if result.archive else ""))
    else:
        print("   no bundle written")


def run(args: argparse.Namespace) -> int:
    from convert.pipeline import ConvertOptions, convert

    options = ConvertOptions(
        source=args.source, modes=args.mode or ["int8"], data=args.data, split_file=args.split_file,
        labels=[s.strip() for s in args.labels.split(",")] if args.labels else None, split=args.split,
        rep_size=args.rep_size, max_eval=args.max_eval, accuracy_check=args.accuracy_check, gate=args.gate,
        max_drop=args.max_drop, max_class_drop=args.max_class_drop, check_runtime=args.check_runtime,
        out=args.out, archive=args.archive, overwrite=args.overwrite, name=args.name,
        version=args.bundle_version, input_scale=args.input_scale, latency_runs=args.latency_runs,
        force=args.force, min_class_images=args.min_class_images,
    )
    results = convert(options)
    for result in results:
        _print_result(result)
    if args.report:
        import json
        from dataclasses import asdict

        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps([asdict(r) for r in results], indent=2, default=str) + "\n")
        print(f"report: {args.report}")
    failed = [r.mode for r in results if not r.ok]
    if failed:
        print(f"edgekit convert: gate failed for {', '.join(failed)}: no bundle written for "
              f"{'it' if len(failed) == 1 else 'them'}")
        return 3
    return 0
