"""`edgekit demo`: the whole loop on the embedded synthetic default, one summary line per step.

dataset -> split -> audit -> train -> convert (int8, gated) -> bundle -> register -> deploy to a
folder standing for the car -> field drives through `edgekit run` with the sample log (fog the
first model never saw) -> pull -> label (the drive's truth stands in for a person) -> ingest ->
retrain -> gate -> promote -> deploy under the running runtime (hot swap) -> before/after on
the same frames -> report. Everything goes to one folder (default ./demo), cleared first.

Example:
    edgekit demo               # about 5 minutes on 2 cores
    edgekit demo --quick       # every step with tiny sizes (a smoke test)
    edgekit demo --view 8765   # watch the hot swap in a browser: the address is printed at that step
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from train.demo.context import DemoContext, DemoStop, Step
from train.demo.context import rel as _rel

NAME = "demo"
HELP = "run the whole loop on the synthetic default: train, convert, deploy, drive, label, retrain, hot swap"
NEEDS: tuple[str, ...] = ("tensorflow", "numpy", "cv2", "tqdm")
MARKER = "demo.json"


def step_dataset(ctx: DemoContext) -> str:
    from train.data import load_dataset

    dataset = load_dataset(ctx.args.dataset)
    path = dataset.save(ctx.out / "data" / "dataset.npz")
    ctx.artifacts.update(dataset=dataset, dataset_path=path)
    counts = ", ".join(f"{c}={k}" for c, k in zip(dataset.class_names, dataset.class_counts(), strict=True))
    return f"{len(dataset)} images {dataset.image_size[0]}x{dataset.image_size[1]}, " \
           f"{len(set(dataset.groups.tolist()))} scenes ({counts}) -> {_rel(path)}"


def step_split(ctx: DemoContext) -> str:
    from train.splits import make_split

    dataset = ctx.artifacts["dataset"]
    split = make_split(dataset)
    path = split.save(ctx.out / "data" / "split.json")
    ctx.artifacts.update(split=split, split_path=path)
    sizes = {name: len(idx) for name, idx in split.indices(dataset).items()}
    return "by scene hash: " + ", ".join(f"{k}={v}" for k, v in sizes.items()) + f" -> {_rel(path)}"


def step_audit(ctx: DemoContext) -> str:
    import numpy as np

    from train.audit import audit, dhash

    dataset, split = ctx.artifacts["dataset"], ctx.artifacts["split"]
    hashes = dhash(dataset.images)
    honest = audit(dataset.images, split.indices(dataset), hashes=hashes)
    order = np.random.default_rng(0).permutation(len(dataset))  # the chapter's mistake: shuffle frames
    cut = np.cumsum([int(len(order) * f) for f in split.fractions[:2]])
    shuffled = audit(dataset.images, dict(zip(("train", "val", "test"), np.split(order, cut), strict=True)),
                     hashes=hashes)
    ctx.artifacts.update(audit=honest)
    return (f"near-duplicates across splits: {honest.total} pairs when split by scene, "
            f"{shuffled.total} if frames were shuffled ({shuffled.leaked('train~test')} leaked test images)")


def _steps() -> list[Step]:
    from train.demo import steps as loop

    return [Step("dataset", step_dataset), Step("split", step_split), Step("audit", step_audit),
            Step("train", loop.step_train), Step("convert", loop.step_convert), Step("bundle", loop.step_bundle),
            Step("register", loop.step_register), Step("deploy", loop.step_deploy), Step("drive", loop.step_field),
            Step("pull", loop.step_pull), Step("label", loop.step_label), Step("ingest", loop.step_ingest),
            Step("retrain", loop.step_retrain), Step("gate", loop.step_gate), Step("promote", loop.step_promote),
            Step("hot-swap", loop.step_swap), Step("compare", loop.step_compare), Step("report", loop.step_report)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo"),
                        help="output folder (default ./demo); a previous demo there is removed first")
    parser.add_argument("--dataset", default=None, help="first model's dataset (default: the synthetic default)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one epoch, loose gates: a smoke test")
    parser.add_argument("--model", help="first model's preset or spec file (default: baseline)")
    parser.add_argument("--epochs", type=int, help="first model's epochs")
    parser.add_argument("--retrain-epochs", type=int, help="fine-tuning epochs of the retrain")
    parser.add_argument("--view", metavar="[HOST:]PORT",
                        help="serve the car's live view during the hot-swap step and print its address "
                        "(edgekit run --view; docs/edge.md); the replay slows to 10 fps to be watched")


def _start_clean(out: Path) -> str:
    """Remove a previous demo in `out`; refuse a folder that holds something else."""
    if not out.exists():
        return "new folder"
    if out.is_dir() and not any(out.iterdir()):
        return "empty folder"
    if not (out / MARKER).is_file():
        from edge.errors import UserError

        raise UserError(f"{out} exists and is not a demo folder (no {MARKER}): choose another --out or remove it")
    shutil.rmtree(out)
    return "removed the previous demo run: starting clean"


@contextlib.contextmanager
def _stderr_to(path: Path, redirect: bool) -> Iterator[None]:
    """Send stderr (TensorFlow's C++ messages, progress bars, log lines) to `path`, so stdout holds
    one line per step; restored before an error is reported."""
    if not redirect:
        yield
        return
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.INFO)
    with open(path, "a", encoding="utf-8") as log_file:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(log_file.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            logging.getLogger().setLevel(level)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from train.demo.context import FULL, QUICK
    from train.demo.steps import report_files

    settings = QUICK if args.quick else FULL
    chosen = {"dataset": args.dataset, "model": args.model, "epochs": args.epochs,
              "retrain_epochs": args.retrain_epochs}
    settings = dataclasses.replace(settings, **{k: v for k, v in chosen.items() if v is not None})
    args.dataset = settings.dataset
    how = _start_clean(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / MARKER).write_text(json.dumps({"status": "running", "quick": args.quick}) + "\n")
    ctx = DemoContext(args.out, args, settings)
    steps = _steps()
    details = args.out / "demo.log"
    print(f"edgekit demo{' --quick' if args.quick else ''}: the whole loop in {args.out}/ ({how}); "
          f"details of every step in {details}", flush=True)
    total = time.perf_counter()
    lines, stopped = ctx.artifacts.setdefault("lines", []), None
    with _stderr_to(details, not getattr(args, "verbose", False)):
        for number, step in enumerate(steps, 1):
            start = time.perf_counter()
            try:
                line = step.run(ctx)
            except DemoStop as stop:
                stopped = str(stop)
                print(f"[{number:>2}/{len(steps)}] {step.name:<8} {stopped}", flush=True)
                break
            except BaseException:
                print(f"[{number:>2}/{len(steps)}] {step.name:<8} FAILED (details in {details})", flush=True)
                raise
            text = f"[{number:>2}/{len(steps)}] {step.name:<8} {line} ({time.perf_counter() - start:.1f} s)"
            lines.append(text)
            print(text, flush=True)
    seconds = time.perf_counter() - total
    table = ctx.artifacts.get("table", [])
    if table:
        before, after, _, at = ctx.artifacts["compare"]
        print(f"\nbefore/after on the same {len(after)} frames of {ctx.artifacts['eval']['name']} "
              f"(frames {at}+; before = the field run, after = the same runtime after the hot swap):")
        print("\n".join("  " + row for row in table))
    print(f"\ndemo {'stopped' if stopped else 'done'} in {seconds:.0f} s; reports and pictures in {args.out}/:")
    files = [(f"{_rel(path)}{'/' if path.is_dir() else ''}", what) for path, what in report_files(ctx)]
    width = max((len(name) for name, _ in files), default=0)
    for name, what in files:
        print(f"  {name:<{width}}  {what}")
    (args.out / MARKER).write_text(json.dumps({"status": "stopped" if stopped else "done", "quick": args.quick,
                                               "seconds": round(seconds, 1), "steps": lines,
                                               "table": table}, indent=2) + "\n")
    return 1 if stopped else 0
