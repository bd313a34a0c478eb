"""The issue-17 sections of bench/results/train-cifar10.md (figures from bench/train_cost.py)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from bench.paths import shown

PICTURE = "pictures/accuracy-vs-macs.png"
TARGET = 0.85


def cost_lines(cost: dict[str, Any], results: dict[str, list[dict[str, Any]]], car: dict[str, Any] | None,
               results_dir: Path) -> list[str]:
    lines = ["## A car model at MLPerf Tiny's target (issue 17)", ""]
    if cost.get("budget_run"):
        lines += _budget_lines(cost["budget_run"])
    if cost.get("time_split"):
        lines += _split_lines(cost["time_split"])
    if cost.get("int8_latency"):
        lines += _latency_lines(cost["int8_latency"])
    points = _points(cost, results, car)
    if points:
        from bench.train_cost import plot_accuracy_vs_macs

        path = plot_accuracy_vs_macs(points, results_dir / PICTURE)
        car_epochs = car.get("epochs") if car else "-"
        budget_epochs = cost["budget_run"]["budget"]["epochs_run"] if cost.get("budget_run") else "-"
        lines += ["### Accuracy vs MACs", "", f"![accuracy vs MACs]({PICTURE}) (`{shown(path)}`): chapter presets "
                  f"(5 epochs, their mean best test accuracy over seeds), car-small (its recipe, {car_epochs} epochs, "
                  f"final float model), car-resnet8 (the budget run's int8 model, {budget_epochs} epochs). The "
                  "training time differs between points: compare costs across, not accuracies. MACs by `edgekit presets`.", ""]
    return lines


def _budget_lines(run: dict[str, Any]) -> list[str]:
    from train.models import load_spec
    from train.models.params import cost

    budget = run["budget"]
    spent = cost(load_spec("car-resnet8"))
    marks = ", ".join(f"{minutes} min: {_pct(acc)}" for minutes, acc in run["at_minutes"].items())
    met = run["int8_test_accuracy"] >= TARGET and budget["fit_s"] <= budget["budget_min"] * 60
    return [
        f"### car-resnet8 trained from scratch with `--time-budget {budget['budget_min']:g}`", "",
        f"- model: {spent.params:,} parameters, {spent.macs:,} MACs per frame, int8 tensor data "
        f"{spent.int8_bytes / 1000:.1f} KB (flatbuffer {run['int8_size']['total'] / 1000:.1f} KB)",
        f"- int8 ops (op version): {', '.join(run['int8_ops'])}",
        f"- budget plan: first epoch {budget['first_epoch_s']:.0f} s (includes tracing), later epochs "
        f"{_num(budget['later_epoch_mean_s'])} s on average; {budget['epochs_run']} epochs run of "
        f"{budget['epochs_planned']} planned; fit() took {budget['fit_s'] / 60:.1f} min",
        f"- test accuracy (the archive's test split, which also validated, as the chapter does) reached by "
        f"wall time of fit(): {marks}",
        f"- best checkpoint (epoch {run['best_epoch']}): float {_pct(run['float_test_accuracy'])}, "
        f"int8 {_pct(run['int8_test_accuracy'])} on {run['int8_backend']}; the same int8 model on TensorFlow's "
        f"interpreter {_pct(run['int8_host_tf_accuracy'])}, top-1 agreement {_pct(run['int8_interpreters_agree'])} "
        f"({run['test_images']:,} images; calibrated on {run['calibration_images']} training images)",
        *_load_line(budget["plans"]),
        f"- goal: >= 85% int8 within {budget['budget_min']:g} min -> **{'met' if met else 'NOT met'}**",
        f"- run folder: `{run['run']}` (budget.json, model-int8.tflite)", ""]


def _load_line(plans: list[dict[str, Any]]) -> list[str]:
    loads = [p["load_1min"] for p in plans if p.get("load_1min") is not None]
    if not loads:
        return []
    return [f"- machine load during the run (1-min load average at each epoch's end, 2 cores): "
            f"{min(loads):.1f}-{max(loads):.1f}, median {statistics.median(loads):.1f}; above 2 the run shared "
            "the CPU, so its time figures are pessimistic for a machine of its own"]


def _split_lines(split: dict[str, Any]) -> list[str]:
    seconds, per_50k = split["seconds"], split["per_50k_epoch_s"]
    return [
        "### Where an epoch's time goes", "",
        f"{split['preset']} on {split['images']:,} training images (batch {split['batch_size']}, {split['steps']} "
        f"steps, augmentation `{json.dumps(split['augment'])}`), medians of alternated measurements:", "",
        "| part | seconds | per 50,000-image epoch |", "|---|---|---|",
        f"| input pipeline alone (augmented tf.data, no model) | {seconds['pipeline']:.1f} | {per_50k['pipeline']:.0f} |",
        f"| compute alone (fit on one batch held in memory) | {seconds['compute']:.1f} | {per_50k['compute']:.0f} |",
        f"| a real epoch (both, prefetch overlaps them) | {seconds['epoch']:.1f} | {per_50k['epoch']:.0f} |", "",
        f"Input pipeline : compute = **{split['pipeline_over_compute']:.2f}**; real epoch : compute = "
        f"{split['epoch_over_compute']:.2f} (the pipeline is not the bottleneck when the first is well below 1 "
        "and the second close to 1).", ""]


def _latency_lines(latency: dict[str, Any]) -> list[str]:
    rows = latency["rows"]
    threads = [key for key in next(iter(rows.values())) if key.endswith("_thread") or key.endswith("_threads")]
    header = " | ".join(f"p50 ms {rows[latency['baseline']][key]['threads']} thr (x {latency['baseline']})"
                        for key in threads)
    lines = ["### int8 interpreter latency per preset", "",
             f"Untrained weights (latency does not depend on their values), int8, {latency['runs']} frames each, "
             f"`{latency['baseline']}` measured first in the same run as the reference.", "",
             f"| preset | params | MACs/frame | int8 KB | {header} |", "|---|---|---|---|" + "---|" * len(threads)]
    for name, row in rows.items():
        cells = " | ".join(f"{row[key]['p50_ms']:.3f} (x{row[key]['vs_baseline']:.2f})" for key in threads)
        lines.append(f"| {name} | {row['params']:,} | {row['macs']:,} | {row['int8_bytes'] / 1000:.1f} | {cells} |")
    return lines + [""]


def _points(cost: dict[str, Any], results: dict[str, list[dict[str, Any]]], car: dict[str, Any] | None) -> list[dict[str, Any]]:
    from train.models import load_spec
    from train.models.params import cost as spec_cost

    points = []
    chapter = "chapter (5 epochs, batch 32, Adam; mean of seeds)"
    ours = "car presets (their recipe and time; int8 where measured)"
    for preset, summaries in results.items():
        values = [s["max_val_accuracy"] for s in summaries if s.get("max_val_accuracy") is not None]
        if values:
            points.append({"preset": preset, "accuracy": statistics.mean(values), "group": chapter})
    if car and car.get("test_accuracy") is not None:
        points.append({"preset": "car-small", "accuracy": car["test_accuracy"], "group": ours})
    if cost.get("budget_run"):
        points.append({"preset": "car-resnet8", "accuracy": cost["budget_run"]["int8_test_accuracy"], "group": ours})
    for point in points:
        spent = spec_cost(load_spec(point["preset"]))
        point.update(macs=spent.macs, params=spent.params)
    return points


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
