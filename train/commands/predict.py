"""edgekit predict: label, confidence and top-k for image files, with the car's preprocessing."""

from __future__ import annotations

import argparse

NAME = "predict"
HELP = "classify image files with a model.keras (run folder) or a TFLite bundle"
NEEDS = ("numpy", "cv2")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model.keras (or its run folder), or a bundle folder / .tar.gz")
    parser.add_argument("images", nargs="+", help="image files")
    parser.add_argument("--top-k", type=int, default=3, help="how many probabilities to show (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per image")


def run(args: argparse.Namespace) -> int:
    import json

    from train.predict import load_predictor, read_image

    predictor = load_predictor(args.model)
    for path in args.images:
        probabilities = predictor.predict(read_image(path))
        order = probabilities.argsort()[::-1][: max(1, args.top_k)]
        top = [(predictor.labels[i], float(probabilities[i])) for i in order]
        if args.json:
            print(json.dumps({"image": path, "label": top[0][0], "confidence": top[0][1],
                              "top_k": [{"label": label, "probability": p} for label, p in top]}))
        else:
            others = ", ".join(f"{label} {p:.3f}" for label, p in top)
            print(f"{path}: {top[0][0]} ({top[0][1]:.3f})  top-{len(top)}: {others}")
    return 0
