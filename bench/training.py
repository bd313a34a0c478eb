"""`make bench-train`: the chapter's (docs/training.md#the-chapter) CIFAR-10 table, edgekit's car default,
augmentation overhead, and the cost figures of issue 17 (bench/train_cost.py): a time-budgeted
car-resnet8 run, epoch time split into input pipeline and compute, int8 latency per preset,
accuracy vs MACs (bench/results/pictures/accuracy-vs-macs.png).

    python -m bench.training                             # everything (hours on 2 cores)
    python -m bench.training --presets baseline --seeds 1 --limit 2000 --no-car --no-overhead
    python -m bench.training --no-table --no-car --no-overhead --no-budget-run   # cost figures only

Chapter settings: the archive's test split validates (as the chapter does), 5 epochs, batch 32,
Adam (lr 0.001), seeds 1-3. Each (preset, seed) run folder lands in runs/bench-train-cifar10/
as soon as it finishes; a rerun skips finished ones. Results: bench/results/train-cifar10.md/.json
(only when the table or the car default ran) and augment-overhead-<N>.md/.json (N training images).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from bench.paths import REPO, RESULTS, shown, shown_command
from edge.errors import UserError

CIFAR_ZIP = REPO.parent / "shared" / "datasets" / "cifar10-jpg.zip"
RUNS = REPO / "runs" / "bench-train-cifar10"
FIGURES = [("training_time_s", "time (s)", 1), ("min_loss", "min loss", 4), ("min_val_loss", "min val loss", 4),
           ("max_accuracy", "max acc", 4), ("max_val_accuracy", "max val acc", 4)]
# flips + whole-pixel shifts + brightness (gather/reverse, no resampling), and the same with rotation
OVERHEAD_AUGMENTS = {
    "flip+shift+brightness": {"brightness_range": [0.5, 1.5], "width_shift_range": [-4, -2, 2, 4],
                              "height_shift_range": [-4, -2, 2, 4], "horizontal_flip": True},
    "+rotation (resampled)": {"brightness_range": [0.5, 1.5], "rotation_range": 15, "width_shift_range": [-4, -2, 2, 4],
                              "height_shift_range": [-4, -2, 2, 4], "horizontal_flip": True},
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from train.models import CHAPTER_PRESETS

    parser = argparse.ArgumentParser(prog="python -m bench.training", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=str(CIFAR_ZIP), help="CIFAR-10 archive (default: shared copy)")
    parser.add_argument("--presets", nargs="+", default=CHAPTER_PRESETS, help="chapter presets to run (default all ten)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3], help="seeds (default 1 2 3)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, help="use at most N training and N validation images (quick check)")
    parser.add_argument("--table", action=argparse.BooleanOptionalAction, default=True,
                        help="train the chapter presets (--no-table: only the car default / overhead)")
    parser.add_argument("--car", action=argparse.BooleanOptionalAction, default=True, help="train the car default")
    parser.add_argument("--car-epochs", type=int, help="epochs for the car default (default: its recipe)")
    parser.add_argument("--overhead", action=argparse.BooleanOptionalAction, default=True,
                        help="measure the augmentation overhead")
    parser.add_argument("--overhead-limit", type=int, default=50000,
                        help="training images in the overhead runs (default 50000: all of CIFAR-10's)")
    parser.add_argument("--budget", type=float, default=60.0,
                        help="minutes for the time-budgeted car-resnet8 run (default 60, issue 17)")
    parser.add_argument("--budget-run", action=argparse.BooleanOptionalAction, default=True,
                        help="train car-resnet8 with --time-budget (reused when finished) and evaluate it in int8")
    parser.add_argument("--split-time", action=argparse.BooleanOptionalAction, default=True,
                        help="time an epoch's input pipeline against its compute")
    parser.add_argument("--split-images", type=int, default=10_000, help="training images timed (default 10000)")
    parser.add_argument("--latency", action=argparse.BooleanOptionalAction, default=True,
                        help="int8 interpreter latency of every preset (against the baseline preset)")
    parser.add_argument("--runs", default=str(RUNS), help="folder for the run folders")
    parser.add_argument("--results", default=str(RESULTS), help="folder for train-cifar10.md/.json")
    args = parser.parse_args(argv)
    if not (args.table or args.car or args.overhead or args.budget_run or args.split_time or args.latency):
        raise UserError("nothing to run: drop one of --no-table, --no-car, --no-overhead, --no-budget-run, "
                        "--no-split-time, --no-latency")
    unknown = [p for p in args.presets if p not in CHAPTER_PRESETS]
    if unknown:
        raise UserError(f"unknown preset(s) {unknown}: choose from {', '.join(CHAPTER_PRESETS)}")
    return args


def _tag(args: argparse.Namespace) -> str:
    """Runs with other settings go to their own folder, so results never mix."""
    tag = f"e{args.epochs}-b{args.batch_size}"
    return tag + (f"-limit{args.limit}" if args.limit else "")


def chapter_table(args: argparse.Namespace, dataset: Any) -> dict[str, list[dict[str, Any]]]:
    from train.training.sweep import run_sweep

    base = dict(dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size, optimizer="adam",
                learning_rate=1e-3, validation="test", limit=args.limit, verbose=2)

    def report(model: str, seed: int, summary: dict[str, Any]) -> None:
        print(f"[bench] {model} seed {seed}: val acc {summary['max_val_accuracy']:.4f} "
              f"time {summary['training_time_s']:.1f}s", flush=True)

    return run_sweep(args.presets, args.seeds, base, Path(args.runs) / _tag(args), dataset=dataset, on_result=report)


def car_default(args: argparse.Namespace, dataset: Any) -> dict[str, Any]:
    from train.models import PRESETS, count_params, load_spec
    from train.training import TrainConfig, train
    from train.training.sweep import finished_summary

    recipe = dict(PRESETS["car-small"]["recipe"])
    if args.car_epochs:
        recipe["epochs"] = args.car_epochs
    # open recipe fields are sized from the data (train.training.recipe): 15 epochs on CIFAR-10's 50,000
    out = Path(args.runs) / (f"car-small-e{recipe['epochs'] or 15}" + (f"-limit{args.limit}" if args.limit else ""))
    summary = finished_summary(out)
    if summary is None:
        # the archive's test split is the test set: report the final model's accuracy on it
        config = TrainConfig(dataset=args.dataset, model="car-small", out=str(out), validation="test",
                             limit=args.limit, seed=1, verbose=2, **recipe)
        summary = train(config, dataset=dataset).summary
    run_info = json.loads((out / "run.json").read_text()) if (out / "run.json").is_file() else {}
    recipe = {**recipe, **((run_info.get("recipe") or {}).get("chosen") or {})}
    return {"preset": "car-small", "params": count_params(load_spec("car-small")), "recipe": recipe,
            "test_accuracy": summary.get("final_val_accuracy"), "best_test_accuracy": summary.get("max_val_accuracy"),
            "epochs": summary["epochs_run"], "wall_time_s": summary["training_time_s"], "run": str(out)}  # shown() when written


def budget_run(args: argparse.Namespace, dataset: Any) -> dict[str, Any]:
    """car-resnet8 trained from scratch with --time-budget (its recipe, sized from the data), then
    evaluated in float and int8 (bench.train_cost.evaluate_budget_run); a finished run is reused."""
    from bench.train_cost import BUDGET_PRESET, evaluate_budget_run
    from train.models import PRESETS
    from train.training import TrainConfig, train
    from train.training.sweep import finished_summary

    out = Path(args.runs) / (f"{BUDGET_PRESET}-budget{args.budget:g}" + (f"-limit{args.limit}" if args.limit else ""))
    if finished_summary(out) is None or not (out / "budget.json").is_file():
        recipe = dict(PRESETS[BUDGET_PRESET]["recipe"])
        train(TrainConfig(dataset=args.dataset, model=BUDGET_PRESET, out=str(out), limit=args.limit, seed=1,
                          verbose=2, time_budget=args.budget, **recipe), dataset=dataset)
    return evaluate_budget_run(out, dataset)


def augmentation_overhead(args: argparse.Namespace, dataset: Any) -> dict[str, Any]:
    """The same short run without and with augmentation, in this process.

    Runs alternate (plain, each augmentation, plain, ...) twice; each epoch after the first is
    timed, and the ratio compares median epoch times, so a busy neighbour skews both sides alike.
    """
    import statistics
    import tempfile

    import keras

    from train.training import TrainConfig, train

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if epoch:  # the first epoch includes tracing
                self.times.append(time.perf_counter() - self.start)

    configs = {"plain": {}, **OVERHEAD_AUGMENTS}
    times: dict[str, list[float]] = {name: [] for name in configs}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(2):
            for index, (name, augment) in enumerate(configs.items()):
                timer = EpochTimer()
                config = TrainConfig(dataset=args.dataset, model="baseline", out=f"{scratch}/{index}", epochs=4,
                                     batch_size=args.batch_size, validation="test", limit=args.overhead_limit,
                                     augment=augment, verbose=0)
                train(config, dataset=dataset, callbacks=[timer])
                times[name] += timer.times
                print(f"[bench] overhead run {name}: epochs {[round(t, 2) for t in timer.times]} s", flush=True)
    plain = statistics.median(times["plain"])
    return {"model": "baseline", "epochs_timed": len(times["plain"]), "train_images": args.overhead_limit,
            "batch_size": args.batch_size, "plain_s": plain, "epoch_times_s": times,
            "augmented": {name: {"augment": OVERHEAD_AUGMENTS[name], "seconds": statistics.median(times[name]),
                                 "ratio": statistics.median(times[name]) / plain} for name in OVERHEAD_AUGMENTS}}


def _earlier(results_dir: Path) -> dict[str, Any]:
    """The last invocation's JSON: parts this invocation did not run are kept from it (and say so)."""
    path = results_dir / "train-cifar10.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        return {}


def write_report(args: argparse.Namespace, results: dict[str, list[dict[str, Any]]], car: dict[str, Any] | None,
                 overhead: dict[str, Any] | None, wall_s: float, cost: dict[str, Any] | None = None) -> Path:
    from train.models import CHAPTER_PARAMS, CHAPTER_RESULTS
    from train.training.stats import aggregate, fmt

    results_dir = Path(args.results)
    results_dir.mkdir(parents=True, exist_ok=True)
    earlier = _earlier(results_dir)
    kept = [title for value, key, title in ((results, "runs", "chapter table"), (car, "car_default", "car default"),
                                            (overhead, "augmentation_overhead", "augmentation overhead"))
            if not value and earlier.get(key)]
    results = results or earlier.get("runs") or {}
    car = car or earlier.get("car_default")
    overhead = overhead or earlier.get("augmentation_overhead")
    cost = dict(cost or {})
    for key, title in (("budget_run", "budget run"), ("time_split", "time split"), ("int8_latency", "int8 latency")):
        if not cost.get(key) and (earlier.get("cost") or {}).get(key):
            cost[key] = earlier["cost"][key]
            kept.append(title)
    lines = ["# Training benchmark: the chapter's CIFAR-10 table", "",
             f"CIFAR-10 from `{Path(args.dataset).name}`; validation = the archive's test split (as the chapter); "
             f"{args.epochs} epochs, batch {args.batch_size}, Adam lr 0.001; seeds {args.seeds}"
             + (f"; **limited to {args.limit} train/val images**" if args.limit else "") + ".",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPU(s), shared with other jobs; "
             f"this invocation took {wall_s / 60:.1f} min (runs reused from earlier invocations not counted); "
             f"1/5/15-min load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}. "
             f"Training time of all runs in this report: {_total_training_min(results, car):.0f} min.", "",
             *([f"Kept from an earlier invocation (not rerun in this one): {', '.join(kept)}.", ""] if kept else []),
             "Each cell: edgekit mean ± std over seeds / the chapter's single run.", "",
             "| preset | params (edgekit / chapter) | " + " | ".join(title for _, title, _ in FIGURES) + " |",
             "|---|---|" + "---|" * len(FIGURES)]
    if not results:
        lines.append("| (chapter table not run in this invocation: see --presets/--seeds, or drop --no-table) | | | | | | |")
    for preset, summaries in results.items():
        stats = aggregate(summaries)
        chapter = CHAPTER_RESULTS.get(preset, {})
        params = f"{int(stats['total_params']['mean']):,} / {CHAPTER_PARAMS.get(preset, 0):,}"
        cells = [f"{fmt(stats[key], digits)} / {chapter.get(key, float('nan')):.{digits}f}" for key, _, digits in FIGURES]
        lines.append(f"| {preset} | {params} | " + " | ".join(cells) + " |")
    lines += ["", f"Curves: `{shown(Path(args.runs) / _tag(args))}/<preset>/seed-<n>/curves.png`.", ""]
    if car:
        lines += ["## edgekit's car default (car-small)", "",
                  f"- params: {car['params']:,} (int8-friendly: conv / depthwise-separable conv, batch-norm, ReLU, "
                  "pooling, dense, softmax)",
                  f"- recipe: {json.dumps(car['recipe'])}",
                  f"- test accuracy (final model, archive test split): {car['test_accuracy']:.4f} "
                  f"(best epoch {car['best_test_accuracy']:.4f})",
                  f"- epochs: {car['epochs']}, wall time: {car['wall_time_s'] / 60:.1f} min on this machine",
                  f"- goal: >= 0.80 within 30 min -> {'met' if car['test_accuracy'] >= 0.8 and car['wall_time_s'] <= 1800 else 'NOT met'}",
                  f"- run folder: `{shown(car['run'])}`", ""]
    if overhead:
        lines += overhead_lines(overhead)
        if "augmentation overhead" not in kept:
            write_overhead(args, overhead, results_dir)
    if cost:
        from bench.train_cost_report import cost_lines

        lines += cost_lines(cost, results, car, results_dir)
    path = results_dir / "train-cifar10.md"
    path.write_text("\n".join(lines) + "\n")
    (results_dir / "train-cifar10.json").write_text(json.dumps(
        {"settings": {k: shown(v) if k in ("dataset", "runs", "results") and v else v for k, v in vars(args).items()},
         "runs": {k: [{**r, "run": shown(r["run"])} if r.get("run") else r for r in rows] for k, rows in results.items()},
         "car_default": car and {**car, "run": shown(car["run"])},
         "augmentation_overhead": overhead, "cost": cost, "wall_time_s": wall_s}, indent=2, default=str) + "\n")
    return path


def _total_training_min(results: dict[str, list[dict[str, Any]]], car: dict[str, Any] | None) -> float:
    table = sum(summary["training_time_s"] for summaries in results.values() for summary in summaries)
    return (table + (car["wall_time_s"] if car else 0.0)) / 60


def overhead_lines(overhead: dict[str, Any]) -> list[str]:
    lines = ["## Augmentation overhead", "",
             f"Same run ({overhead['model']}, {overhead['train_images']} images, batch {overhead['batch_size']}) "
             "without and with augmentation, same process, runs alternated; median epoch time of "
             f"{overhead['epochs_timed']} timed epochs each (goal: ratio <= 1.15). "
             f"Without: {overhead['plain_s']:.2f} s/epoch.", ""]
    for name, row in overhead["augmented"].items():
        lines.append(f"- {name} `{json.dumps(row['augment'])}`: {row['seconds']:.2f} s/epoch, **ratio {row['ratio']:.3f}**")
    if "epoch_times_s" in overhead:
        spread = "; ".join(f"{name} {min(t):.2f}-{max(t):.2f}" for name, t in overhead["epoch_times_s"].items())
        lines += ["", f"Spread of the timed epochs (s): {spread}."]
    return lines + [""]


def _overhead_name(args: argparse.Namespace) -> str:
    n = args.overhead_limit
    return f"augment-overhead-{n // 1000}k.md" if n % 1000 == 0 else f"augment-overhead-{n}.md"


def write_overhead(args: argparse.Namespace, overhead: dict[str, Any], results_dir: Path) -> Path:
    """The overhead measurement in its own file (an overhead-only run leaves train-cifar10.md alone)."""
    path = results_dir / _overhead_name(args)
    command = shown_command("bench.training", sys.argv[1:])
    path.write_text("\n".join([f"# Augmentation overhead on {overhead['train_images']:,} CIFAR-10 training images", "",
                               f"Command: `{command.strip()}`. Machine: {platform.machine()}, {os.cpu_count()} CPU(s); "
                               f"1/5/15-min load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}.",
                               "", *overhead_lines(overhead)[2:]]))
    path.with_suffix(".json").write_text(json.dumps(overhead, indent=2) + "\n")
    return path


def issue17_costs(args: argparse.Namespace, dataset: Any) -> dict[str, Any]:
    """The figures of issue 17 this invocation runs (bench/train_cost.py)."""
    from bench.train_cost import int8_latency, time_split
    from train.models import PRESETS

    cost: dict[str, Any] = {}
    if args.budget_run:
        cost["budget_run"] = budget_run(args, dataset)
    if args.split_time:
        cost["time_split"] = time_split(dataset, images=args.split_images)
    if args.latency:
        cost["int8_latency"] = int8_latency(list(PRESETS))
    return cost


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        args = parse_args(argv)
        if not Path(args.dataset).exists():
            raise UserError(f"CIFAR-10 archive not found at {args.dataset}: pass --dataset")
        from train.data import load_dataset

        start = time.perf_counter()
        dataset = load_dataset(args.dataset)
        results = chapter_table(args, dataset) if args.table else {}
        overhead = augmentation_overhead(args, dataset) if args.overhead else None
        car = car_default(args, dataset) if args.car else None
        cost = issue17_costs(args, dataset)
        path = write_report(args, results, car, overhead, time.perf_counter() - start, cost)
    except UserError as error:
        print(f"bench-train: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench-train: interrupted; finished runs are kept and a rerun resumes", file=sys.stderr)
        return 130
    print(path.read_text())
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
