"""`make bench-convert ARGS="RUN [RUN ...]"`: every conversion mode on trained CIFAR-10 runs.

For each run folder: float32 (the baseline, measured in the same run),
float16, dynamic and int8 on the test split; a table of size, Keras and TFLite
accuracy, drop, agreement and latency, the runtime check against the
environments found (.venv-pi214 = tflite-runtime 2.14, .venv-device =
ai-edge-litert), and the goals: int8 drop <= 0.5 pt, int8 size <= 0.27 x float32.

    python -m bench.convert_modes runs/baseline runs/default --out bench/results/convert-cifar10.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

from bench.paths import REPO, RESULTS, shown, shown_command
from edge.errors import UserError

DEFAULT_PYTHONS = [REPO / ".venv-pi214" / "bin" / "python", REPO / ".venv-device" / "bin" / "python"]
MAX_DROP_GOAL, SIZE_RATIO_GOAL = 0.5, 0.27


def _runtime_cell(result, python: Path) -> str:  # noqa: ANN001 - ModeResult
    rows = [r for r in result.runtime if r["python"] == str(python)]
    if not rows:
        return "-"
    return "; ".join(
        f"{r['interpreter']} {r['version']}: " + ("OK" if r["loads"] and r["outputs_match"]
                                                 else _differ(r) if r["loads"]
                                                 else "does not load")
        for r in rows)


def _differ(row: dict) -> str:
    text = f"loads, outputs differ (max {row.get('max_abs_diff', float('nan')):g}"
    if row.get("top1_agreement") is not None:
        text += f", top-1 {row['top1_agreement']:.0%} same"
    return text + ")"


def _errors(results) -> list[str]:  # noqa: ANN001
    seen = []
    for result in results:
        for r in result.runtime:
            if r["error"]:
                line = f"- {result.mode} in `{shown(r['python'])}` ({r['interpreter']} {r['version']}): {r['error'][:220]}"
                if line not in seen:
                    seen.append(line)
    return seen


def bench_run(run: Path, modes: list[str], split: str, max_eval: int | None, pythons: list[Path],
              rep_size: int, work: Path) -> tuple[list[str], list[str]]:
    """Markdown lines for one run folder, and goal failures."""
    from convert.pipeline import ConvertOptions, convert

    ordered = ["float32"] + [m for m in modes if m != "float32"]
    results = convert(ConvertOptions(source=run, modes=ordered, split=split, max_eval=max_eval, gate=False,
                                     rep_size=rep_size, check_runtime=[str(p) for p in pythons],
                                     out=work / run.name, overwrite=True, latency_runs=300))
    base = results[0]
    base_p50 = base.latency["1_thread"]["p50_ms"]
    cores_key = [k for k in base.latency if k != "1_thread"][0]
    header = ("| mode | size KiB | x float32 | Keras acc % | TFLite acc % | drop pt | agreement % | "
              f"p50 ms 1 thread | speed x float32 | p50 ms {cores_key.replace('_', ' ')} | "
              + " | ".join(f"runtime `{p.parent.parent.name}`" for p in pythons) + " |")
    dataset = json.loads((run / "run.json").read_text(encoding="utf-8")).get("dataset")
    lines = [f"### {run}", "", f"{base.accuracy['images']} {split} images of `{shown(dataset)}`", "", header, "|" + "---|" * (header.count("|") - 1)]
    failures = []
    for r in results:
        a = r.accuracy
        p50 = r.latency["1_thread"]["p50_ms"]
        lines.append(
            f"| {r.mode} | {r.size_bytes / 1024:.1f} | {r.size_ratio:.3f} | {a['keras_accuracy']:.2f} | "
            f"{a['tflite_accuracy']:.2f} | {a['drop']:+.2f} | {a['agreement']:.2f} | {p50:.3f} | "
            f"{base_p50 / p50:.2f} | {r.latency[cores_key]['p50_ms']:.3f} | "
            + " | ".join(_runtime_cell(r, p) for p in pythons) + " |")
        if r.mode == "int8":
            worst = max(a["per_class"].items(), key=lambda kv: kv[1]["drop"])
            ok_drop, ok_size = a["drop"] <= MAX_DROP_GOAL, r.size_ratio <= SIZE_RATIO_GOAL
            lines += ["", f"int8 goals: drop {a['drop']:+.2f} pt (goal <= {MAX_DROP_GOAL}) "
                      f"{'PASS' if ok_drop else 'FAIL'}; size {r.size_ratio:.3f} x float32 "
                      f"(goal <= {SIZE_RATIO_GOAL}) {'PASS' if ok_size else 'FAIL'}; "
                      f"largest class drop {worst[0]} {worst[1]['drop']:+.2f} pt; "
                      f"mean |dp| {a['mean_abs_prob_diff']:.4f}"]
            failures += [] if ok_drop else [f"{run}: int8 drop {a['drop']:.2f} > {MAX_DROP_GOAL}"]
            failures += [] if ok_size else [f"{run}: int8 size ratio {r.size_ratio:.3f} > {SIZE_RATIO_GOAL}"]
    lines += _bytes_table(results)
    errors = _errors(results)
    if errors:
        lines += ["", "Runtime check errors:", "", *errors]
    return lines + [""], failures


def _bytes_table(results) -> list[str]:  # noqa: ANN001 - list[ModeResult]
    """Where each model's bytes go (convert.tflite.size_breakdown), float32 first."""
    from convert.tflite import size_breakdown

    parts = {r.mode: size_breakdown((r.bundle / "model.tflite").read_bytes()) for r in results if r.bundle}
    if "float32" not in parts:
        return []
    base = parts["float32"]
    lines = ["", "Where the bytes go (KiB; quantization = scales and zero points, per-channel for int8):", "",
             "| mode | total | tensor data | x float32 data | quantization | per-channel scales | names | other |",
             "|---|---|---|---|---|---|---|---|"]
    for mode, b in parts.items():
        lines.append(f"| {mode} | {b['total'] / 1024:.1f} | {b['tensor_data'] / 1024:.1f} "
                     f"| {b['tensor_data'] / base['tensor_data']:.3f} | {b['quantization'] / 1024:.1f} "
                     f"| {b['per_channel_scales']} | {b['names'] / 1024:.1f} | {b['other'] / 1024:.1f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.convert_modes", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders from `edgekit train` (CIFAR-10)")
    parser.add_argument("--modes", default="float16,dynamic,int8", help="modes besides float32")
    parser.add_argument("--split", default="test", help="split to measure on (default test: 10,000 images)")
    parser.add_argument("--max-eval", type=int, help="at most this many images (quick tries)")
    parser.add_argument("--rep-size", type=int, default=300)
    parser.add_argument("--python", action="append", type=Path, help="environments for the runtime check "
                        "(default: .venv-pi214 and .venv-device when present)")
    parser.add_argument("--out", type=Path, default=RESULTS / "convert-cifar10.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    pythons = args.python or [p for p in DEFAULT_PYTHONS if p.exists()]
    lines = ["# Conversion benchmark: CIFAR-10", "",
             f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}, {os.cpu_count()} cores, command: "
             f"`{shown_command('bench.convert_modes', sys.argv[1:] if argv is None else argv)}`", "",
             "float32 is the baseline measured in the same run; latency is per frame with the converter's "
             "interpreter (ai-edge-litert) on this machine; runtime columns load each bundle in another "
             "environment and replay the golden inputs (integer models: top-1 equal and within 16 steps of another interpreter's golden outputs, see docs/convert.md; an int8 "
             "'max' difference is in output quantization steps of 1/256).", ""]
    failures: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="edgekit-bench-convert-") as work:
            for run in args.runs:
                run_lines, run_failures = bench_run(run, [m for m in args.modes.split(",") if m], args.split,
                                                    args.max_eval, pythons, args.rep_size, Path(work))
                lines += run_lines
                failures += run_failures
    except UserError as error:
        print(f"bench-convert: error: {error}", file=sys.stderr)
        return 1
    lines += ["## Goals", "", *(f"- FAIL {f}" for f in failures)] if failures else ["## Goals", "", "- all met"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(f"written to {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
