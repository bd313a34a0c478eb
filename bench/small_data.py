"""`make bench-small`: does the car default learn at every size, and does the collapse check tell?

    python -m bench.small_data                      # everything; resumes from runs/bench-small/
    python -m bench.small_data --rows c3-n300-bal synthetic --seeds 1

Rows: CIFAR-10 subsets (bench/small_sets.py: 3 and 10 classes; ~300, 1,000, 3,000 training
images; balanced and 1:20) and the synthetic set. Per row:

- the car default (`edgekit train DATA --split S`, no options: car-small with the recipe sized from
  the data), seeds 1-3;
- the ten chapter presets, 5 epochs, batch 32, Adam 0.001, seed 1; "best" = the highest test accuracy;
- a plain Keras script of <= 50 lines (bench/small_plain.py), seeds 1-3.

Accuracy is on each row's test set (up to 2,000 images, the row's class shares). Collapse truth:
edge.metrics.collapse_findings on the test set (big enough to judge); the check under test is
the one every training run makes on its validation set (summary.json "health").

Work is ordered so that partial results are useful: every row's first seed and presets first,
smallest rows first, then the other seeds. Each run's folder (or JSON) is its cache: a rerun
skips what finished, and results are rewritten (from the cache) after every run. Several
workers may run at once (start the command twice): each run is claimed with a lock file holding
the worker's pid, so they share the grid run by run. `--report-only` rewrites the results.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.small_sets import ROOT, build, build_synthetic, family

RUNS = ROOT / "runs" / "bench-small"
RESULTS = ROOT / "bench" / "results"
PRESET_SETTINGS = {"epochs": 5, "batch_size": 32, "optimizer": "adam", "learning_rate": 1e-3}


def rows() -> list[tuple[str, Any]]:
    """(name, SetSpec or None for synthetic), smallest first."""
    specs = sorted(family(), key=lambda s: (s.train, len(s.classes), s.ratio))
    ordered = [(s.name, s) for s in specs if s.train <= 1000] + [("synthetic", None)]
    return ordered + [(s.name, s) for s in specs if s.train > 1000]


def data_for(name: str, spec: Any) -> tuple[Path, Path]:
    folder = RUNS / "data"
    return build_synthetic(folder) if spec is None else build(spec, folder)


def finished(path: Path) -> dict[str, Any] | None:
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return summary if summary.get("status", "completed") in ("completed", "early-stopped") else None


def run_dir(row: str, kind: str, model: str, seed: int) -> Path:
    return RUNS / row / kind / (model if kind == "preset" else "") / f"seed-{seed}"


def plain_path(row: str, seed: int) -> Path:
    return RUNS / row / "plain" / f"seed-{seed}.json"


@contextlib.contextmanager
def claim(target: Path) -> Iterator[bool]:
    """True if this process may do the run at `target` (no live worker holds it): several workers
    (`--workers`) share the grid run by run."""
    lock = target.with_name(target.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            os.kill(int(lock.read_text() or 0), 0)
            yield False  # another live worker has it
            return
        except (ProcessLookupError, ValueError):
            lock.unlink(missing_ok=True)  # a dead worker's lock
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    try:
        yield True
    finally:
        lock.unlink(missing_ok=True)


def train_run(kind: str, row: str, model: str, seed: int, data: Path, split: Path) -> dict[str, Any] | None:
    """One edgekit training run (cached in its run folder); None if another worker is on it."""
    from train.models import PRESETS
    from train.training import TrainConfig, train

    out = run_dir(row, kind, model, seed)
    cached = finished(out / "summary.json")
    if cached:
        return cached
    with claim(out) as mine:
        if not mine:
            return None
        settings = (dict(PRESETS["car-small"]["recipe"]) if kind == "default" else PRESET_SETTINGS)
        config = TrainConfig(dataset=str(data), split_file=str(split), model=model, out=str(out), seed=seed,
                             verbose=0, **settings)
        return train(config).summary


def plain_run(row: str, seed: int, data: Path, split: Path) -> dict[str, Any] | None:
    out = plain_path(row, seed)
    cached = finished(out)
    if cached:
        return cached
    with claim(out) as mine:
        return _plain(out, seed, data, split) if mine else None


def _plain(out: Path, seed: int, data: Path, split: Path) -> dict[str, Any]:
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "bench" / "small_plain.py"), str(data), str(split), str(seed),
                    str(out)], check=True, cwd=ROOT)
    result = json.loads(out.read_text())
    result["training_time_s"] = round(time.perf_counter() - start, 1)
    out.write_text(json.dumps(result))
    return result


def _findings(scores: dict[str, Any], truth: bool = False) -> list[str]:
    """The check's findings; truth=True: the bench's fixed truth rule (0 recall counts from 5 images, however
    often the class is answered; no pooled rule), kept apart from the check under test so that changing the check cannot move the truth."""
    from edge.metrics import MIN_CLASS_IMAGES, collapse_findings, scores_from_confusion

    s = scores_from_confusion(scores["confusion"], scores["class_names"])
    found = (collapse_findings(s, MIN_CLASS_IMAGES, unfound_recall=None, given_up_share=None) if truth
             else collapse_findings(s))
    return [f.kind for f in found]


def collapse_truth(summary: dict[str, Any]) -> bool:
    """Did the run collapse? Judged on its large test set (up to 2,000 images): not clearly above the
    majority class, one class for most answers, a class of >= 5 test images never found, or a class
    found so rarely that its recall's one-sided 95% Wilson upper bound is below 5% (e.g. 2 of 200)."""
    from edge.metrics import MIN_CLASS_IMAGES, wilson

    test = summary["test_scores"]
    rare = any(n >= MIN_CLASS_IMAGES and wilson(round(r * n), n)[1] < 0.05
               for r, n in zip(test["recall"], test["support"], strict=True) if r is not None)
    return rare or bool(_findings(test, truth=True))


def check_fired(summary: dict[str, Any], with_test: bool = True) -> list[str]:
    """The training run's own check with the current rule, recomputed from the stored confusion
    matrices (runs made before a rule change are judged like new ones): on val, and on test as every
    run with a test split also checks (with_test=False: what val alone can tell)."""
    fired = _findings(summary["val_scores"])
    return fired + [f"test:{k}" for k in _findings(summary["test_scores"])] if with_test else fired


def plain_scores(result: dict[str, Any]) -> dict[str, Any]:
    from edge.metrics import scores

    return scores(result["test_labels"], result["test_predicted"], result["class_names"]).to_dict()


def collect(chosen: list[tuple[str, Any]], seeds: list[int], presets: list[str]) -> dict[str, dict[str, Any]]:
    """Every finished run of the grid, read from the cache (whichever worker ran it)."""
    done = {}
    for name, _ in chosen:
        split = RUNS / "data" / f"{name}.split.json"
        counts = json.loads(split.read_text())["info"]["counts"]
        done[name] = {"train_images": int(sum(counts["train"])),
                      "default": [finished(run_dir(name, "default", "car-small", s) / "summary.json") for s in seeds],
                      "presets": {p: finished(run_dir(name, "preset", p, 1) / "summary.json") for p in presets},
                      "plain": [finished(plain_path(name, s)) for s in seeds]}
    return done


KEPT = ("status", "training_time_s", "test_accuracy", "total_params", "epochs_run", "steps", "recipe")


def _slim(runs: Any) -> Any:
    """A run's summary without its history (the json holds what the tables are made of)."""
    def one(summary: Any) -> Any:
        if not isinstance(summary, dict):
            return summary
        kept = {k: summary[k] for k in KEPT if k in summary}
        for key in ("val_scores", "test_scores"):
            if key in summary:
                kept[key] = {k: summary[key][k] for k in ("class_names", "confusion", "accuracy")}
        if "diagnosis" in summary:
            kept["verdict"] = summary["diagnosis"].get("verdict")
        return kept or summary
    if isinstance(runs, list):
        return [one(r) for r in runs]
    if isinstance(runs, dict) and all(isinstance(v, dict | type(None)) for v in runs.values()):
        return {k: one(v) for k, v in runs.items()}
    return runs


def write_results(done: dict[str, dict[str, Any]], seeds: list[int], started: float, out: Path) -> Path:
    """bench/results/small-data.md (+ .json) from every finished run."""
    lines = ["# Small data: the car default against the chapter presets and a plain Keras script", "",
             "`make bench-small` (bench/small_data.py). Test accuracy in percent on each row's test set; "
             f"default = car-small with the data-sized recipe, seeds {seeds}; best preset = the highest test accuracy "
             "of the ten chapter presets (5 epochs, batch 32, seed 1); plain = bench/small_plain.py (seeds as the "
             "default). `gap` = default mean - best preset. Collapse: test-set truth vs the training run's own "
             "validation check.", "",
             "| row | train imgs | majority | default (mean ± sd, n) | best preset | plain (mean ± sd, n) | gap | "
             "default collapsed (check fired) | default time (s) |", "|---" * 9 + "|"]
    outcome = {mode: {"collapsed_fired": 0, "collapsed_not_fired": 0, "healthy_fired": 0, "healthy_quiet": 0}
               for mode in ("val_only", "as_run")}
    missed: dict[str, list[str]] = {mode: [] for mode in outcome}
    false_alarms: dict[str, list[str]] = {mode: [] for mode in outcome}
    for row, entry in done.items():
        default = [s for s in entry["default"] if s]
        presets = {m: s for m, s in entry["presets"].items() if s}
        plain = [p for p in entry["plain"] if p]
        for kind, runs in (("default", {f"seed-{i + 1}": s for i, s in enumerate(entry["default"])}),
                           ("preset", presets)):
            for name, summary in runs.items():
                if not summary:
                    continue
                truth = collapse_truth(summary)
                test = summary["test_scores"]
                label = f"{row} {kind} {name}: test {test['accuracy'] * 100:.1f}%"
                for mode in outcome:
                    fired = check_fired(summary, with_test=mode == "as_run")
                    key = "collapsed" if truth else "healthy"
                    outcome[mode][f"{key}_{'fired' if fired else ('not_fired' if truth else 'quiet')}"] += 1
                    if truth and not fired:
                        missed[mode].append(label)
                    if fired and not truth:
                        low = min((r, c) for r, c in zip(test["recall"], test["class_names"], strict=True)
                                  if r is not None)
                        false_alarms[mode].append(f"{label} - {'; '.join(fired)} (lowest test recall: {low[1]} "
                                                  f"{low[0] * 100:.1f}%)")

        def stat(values: list[float]) -> str:
            if not values:
                return "-"
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            return f"{statistics.fmean(values):.1f} ± {sd:.1f} ({len(values)})"

        d_acc = [s["test_scores"]["accuracy"] * 100 for s in default]
        p_acc = [p["test_accuracy"] * 100 for p in plain]
        best = max(presets.items(), key=lambda kv: kv[1]["test_scores"]["accuracy"]) if presets else None
        best_acc = best[1]["test_scores"]["accuracy"] * 100 if best else None
        gap = (statistics.fmean(d_acc) - best_acc) if d_acc and best_acc is not None else None
        collapsed = sum(collapse_truth(s) for s in default)
        fired = sum(bool(check_fired(s)) for s in default)  # as the run reports it
        first = default[0] if default else (next(iter(presets.values())) if presets else None)
        majority = f"{first['test_scores']['majority_share'] * 100:.1f}" if first else "-"
        lines.append(f"| {row} | {entry['train_images']} | {majority} | {stat(d_acc)} | "
                     + (f"{best_acc:.1f} ({best[0]}, {len(presets)}/10)" if best else "-")
                     + f" | {stat(p_acc)} | {'-' if gap is None else f'{gap:+.1f}'} | {collapsed}/{len(default)} "
                     f"({fired}/{len(default)}) | "
                     + (f"{statistics.fmean(s['training_time_s'] for s in default):.0f}" if default else "-") + " |")
    from edge.metrics import (
        COLLAPSE_CLASS_IMAGES,
        GIVEN_UP_ANSWER_SHARE,
        UNFOUND_P,
        UNFOUND_RECALL,
        ZERO_RECALL_CONCLUSIVE,
    )

    lines += ["", "## The collapse check (every finished default and preset run)", "",
              "Truth: the test set (up to 2,000 images) shows a collapse: accuracy not clearly above the "
              "majority class, one class for most answers, or a class never or almost never found (0 recall on "
              ">= 5 images, or recall's 95% upper bound below 5%). The check: a class needs >= "
              f"{COLLAPSE_CLASS_IMAGES} val images before 0 recall counts alone; smaller classes at 0 recall count "
              f"together once their images are too many to be bad luck at {UNFOUND_RECALL * 100:.0f}% recall "
              f"(p < {UNFOUND_P}, edge.metrics.unfound_p_value); either way a class at 0 recall counts only if it "
              f"is also the answer for fewer than {GIVEN_UP_ANSWER_SHARE:g} x its images (the model gave up on it), or has "
              f">= {ZERO_RECALL_CONCLUSIVE} images. 'val only' = what the validation split alone can tell: "
              "the check's real test. 'as run' = what a run with a test split reports (the check on val and on "
              "test); here the run's test split is the truth's own images, so 'as run' is not independent of the "
              "truth.", "",
              "| check | collapsed, fired | collapsed, silent (missed) | healthy, fired (false alarm) | healthy, silent |",
              "|---|---|---|---|---|"]
    for mode, title in (("as_run", "as run (val + test)"), ("val_only", "val only")):
        c = outcome[mode]
        lines.append(f"| {title} | {c['collapsed_fired']} | {c['collapsed_not_fired']} | {c['healthy_fired']} | "
                     f"{c['healthy_quiet']} |")
    for mode, title in (("as_run", "as run"), ("val_only", "val only")):
        lines += ["", f"{title}:"] + [f"  - missed: {m}" for m in missed[mode]] + [
            f"  - false alarm: {f}" for f in false_alarms[mode]]
    lines += ["", f"Host: {platform.machine()}, Python {platform.python_version()}; wall time of this invocation "
              f"{(time.time() - started) / 60:.0f} min (the machine is shared: times are noisy)."]
    out.mkdir(parents=True, exist_ok=True)
    path = out / "small-data.md"
    table = {"check": outcome, "missed": missed, "false_alarms": false_alarms,
             "rows": {row: {kind: _slim(runs) for kind, runs in entry.items()} for row, entry in done.items()}}
    for target, text in ((path, "\n".join(lines) + "\n"), (out / "small-data.json",
                                                            json.dumps(table, indent=1, default=str) + "\n")):
        partial = target.with_name(f".{target.name}.{os.getpid()}")
        partial.write_text(text)
        os.replace(partial, target)  # several workers write it: never a half-written file
    return path


def main(argv: list[str] | None = None) -> int:
    from train.models import CHAPTER_PRESETS

    parser = argparse.ArgumentParser(prog="python -m bench.small_data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", help="row names (default: all, smallest first)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--presets", nargs="+", default=CHAPTER_PRESETS)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true", help="rewrite the results from finished runs; train nothing")
    args = parser.parse_args(argv)
    chosen = [(n, s) for n, s in rows() if not args.rows or n in args.rows]
    started = time.time()
    data = {name: data_for(name, spec) for name, spec in chosen}  # data first (cheap), so every row is listed

    def report() -> Path:
        return write_results(collect(chosen, args.seeds, args.presets), args.seeds, started, args.results)

    if args.report_only:
        print(f"results: {report()}")
        return 0
    # first seed, plain script and presets of every row first (smallest rows first), then the other seeds;
    # runs another worker holds are skipped (start several workers to share the grid)
    for seeds, with_presets in ((args.seeds[:1], True), (args.seeds[1:], False)):
        for name, _ in chosen:
            path, split = data[name]
            for seed in seeds:
                summary = train_run("default", name, "car-small", seed, path, split)
                if summary:
                    print(f"{name} default seed {seed}: test {summary['test_scores']['accuracy']:.4f}", flush=True)
                report()
                plain_run(name, seed, path, split)
                report()
            if with_presets:
                for preset in args.presets:
                    train_run("preset", name, preset, 1, path, split)
                report()
    print(f"results: {report()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
