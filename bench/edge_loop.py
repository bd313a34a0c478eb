"""`make bench-edge`: edgekit run against a naive camera loop on the same video, and the ceilings.

    python -m bench.edge_loop --bundle BUNDLE [--bundle BUNDLE2] [--frames 600] [--threads N ...]

For every bundle, on one generated 640x480, 30 fps video (edge.synthetic.drive
written with cv2.VideoWriter), with the same thread budget (each variant tries
1 and all cores' interpreter threads and keeps its best):

  (a) naive: the picamera2 TFLite examples' loop, sequential: read, preprocess,
      set_tensor + invoke, print the result, write every 10th frame as a JPEG;
  (b) `edgekit run` on the video with the same logging load (JSON line per
      frame, every 10th frame written as JPEG by a part in its own thread);
  (c) ceilings: decode alone (read) and invoke alone (pre-made inputs).

Prints frames/s and ratios, checks the goals, writes bench/results/edge.md.
No TensorFlow: bundles come from `edgekit convert` (see docs/edge.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from bench.paths import RESULTS as RESULTS_DIR
from bench.paths import shown_command, write_result
from edge.errors import UserError

RESULTS = RESULTS_DIR / "edge.md"
GOALS = {"b_over_a": 1.5, "b_over_ceiling": 0.8, "first_result_s": 1.5, "peak_rss_mb": 150.0}


# fourcc -> (file suffix, what it stands for)
CODECS = {"mp4v": (".mp4", "MPEG-4 part 2, a recorded drive"),
          "MJPG": (".avi", "Motion JPEG, what a USB webcam sends")}


def make_video(path: Path, frames: int, size=(640, 480), fps: int = 30, seed: int = 7, codec: str = "mp4v") -> Path:
    """A synthetic drive written as a video with this fourcc (see CODECS)."""
    from edge.synthetic import drive

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, size)
    if not writer.isOpened():
        raise UserError(f"OpenCV cannot write {path} (no {codec} encoder?)")
    for image, _ in drive(frame_size=(size[1], size[0]), seed=seed, fps=fps, n_frames=frames):
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def naive_loop(bundle_path: Path, video: Path, threads: int, jpeg_dir: Path) -> None:
    """(a) The examples' way: one thread, one frame at a time, everything in sequence."""
    from edge.bundle import open_bundle
    from edge.interpreter import TFLiteModel
    from edge.preprocess import preprocess
    from edge.runtime.stats import peak_rss_mb

    bundle = open_bundle(bundle_path)
    model = TFLiteModel(bundle.model_path, num_threads=threads)
    spec, labels = bundle.preprocess, bundle.labels
    capture = cv2.VideoCapture(str(video))
    index = 0
    started = time.monotonic()
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        captured = time.monotonic()
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        probabilities = model.predict(preprocess(rgb, spec))  # set_tensor, invoke, get_tensor
        best = int(np.argmax(probabilities))
        print(json.dumps({"frame": index, "label": labels[best], "confidence": float(probabilities[best]),
                          "latency_ms": (time.monotonic() - captured) * 1000}), flush=True)
        if index % 10 == 0:
            cv2.imwrite(str(jpeg_dir / f"{index:08d}.jpg"), bgr)
        index += 1
    elapsed = time.monotonic() - started
    print(f"stats frames={index} uptime_s={elapsed:.4f} peak_rss_mb={peak_rss_mb()}", file=sys.stderr)


def decode_alone(video: Path, decoder_threads: int = 0) -> float:
    """(c) frames/s of reading the video, nothing else (decoder_threads 0: OpenCV's default)."""
    capture = cv2.VideoCapture(str(video), cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, decoder_threads] if decoder_threads else [])
    count, started = 0, time.perf_counter()
    while capture.read()[0]:
        count += 1
    return count / (time.perf_counter() - started)


def invoke_alone(bundle_path: Path, threads: int, count: int) -> float:
    """(c) frames/s of set_tensor + invoke on pre-made inputs."""
    from edge.bundle import open_bundle
    from edge.interpreter import TFLiteModel

    model = TFLiteModel(open_bundle(bundle_path).model_path, num_threads=threads)
    inputs = np.random.default_rng(0).integers(0, 256, (16, *model.input_shape), dtype=np.uint8)
    for x in inputs:
        model.raw_invoke(x)
    started = time.perf_counter()
    for i in range(count):
        model.raw_invoke(inputs[i % len(inputs)])
    return count / (time.perf_counter() - started)


def _fps(result: dict) -> float:
    stats = result["stats"]
    return stats["frames"] / stats["uptime_s"]


def _logging_args(logging: str, folder: Path) -> list[str]:
    """(b)'s logging load: the sample log keeping ~1 frame in 10, or a plain JPEG part (every 10th)."""
    if logging == "samplelog":
        return ["--log-dir", str(folder), "--log-random", "0.1", "--log-seed", "1"]
    return ["--part", f"jpeg:folder={folder},every=10"]


def _count_images(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.suffix in (".jpg", ".png"))


def bench_bundle(bundle: Path, video: Path, frames: int, threads: list[int], work: Path, rounds: int,
                 logging: str = "samplelog") -> dict:
    """All variants for one bundle, interleaved `rounds` times; each figure is the best round.

    Every variant that runs the interpreter (naive, edgekit run, invoke alone) is tried with
    each interpreter thread count in `threads` and keeps its best; decode alone is tried with
    OpenCV's default decoder threads and with one.
    """
    from edge.bundle import open_bundle
    from edge.measure import run_and_measure, time_to_first_result

    opened = open_bundle(bundle)
    name = f"{opened.name}:{opened.version}, {video.suffix[1:]} video"
    naive_dir, run_dir = work / "naive", work / "run"
    common = ["--bundle", str(bundle), "--source", str(video)]
    load_before = os.getloadavg()[0]
    best: dict[str, list] = {"naive": [], "run": [], "decode": [], "invoke": [], "first": [], "startup": []}
    paired: list[tuple[float, float]] = []  # each round's own b/a and b/min(c): the host's speed cancels out
    for _ in range(rounds):
        start = {key: len(values) for key, values in best.items()}
        for n in threads:
            for folder in (naive_dir, run_dir):
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(parents=True)
            naive = run_and_measure([], command=[
                sys.executable, "-m", "bench.edge_loop", "naive", "--bundle", str(bundle), "--video", str(video),
                "--threads", str(n), "--jpeg-dir", str(naive_dir)])
            run = run_and_measure([*common, "--threads", str(n), "--stats-interval", "0",
                                   *_logging_args(logging, run_dir)])
            if naive["lines"] != frames or run["lines"] != frames:
                raise RuntimeError(f"expected {frames} results: naive gave {naive['lines']}, "
                                   f"edgekit run {run['lines']}")
            best["naive"].append((_fps(naive), {**naive, "threads": n}))
            best["run"].append((_fps(run), {**run, "threads": n}))
            best["invoke"].append((invoke_alone(bundle, n, max(frames, 2000)), {"threads": n}))
        for decoder_threads in (0, 1):
            best["decode"].append((decode_alone(video, decoder_threads), {"threads": decoder_threads or "default"}))
        round_best = {key: max(fps for fps, _ in best[key][start[key]:])
                      for key in ("naive", "run", "decode", "invoke")}
        paired.append((round_best["run"] / round_best["naive"],
                       round_best["run"] / min(round_best["decode"], round_best["invoke"])))
        best["first"].append((-time_to_first_result(common), None))
        best["startup"].append((-run_and_measure([*common, "--frames", "1", "--stats-interval", "0"])["cpu_s"], None))
    top = {key: max(values, key=lambda item: item[0]) for key, values in best.items()}
    a, b = top["naive"][0], top["run"][0]
    decode, invoke = top["decode"][0], top["invoke"][0]
    run = top["run"][1]
    return {"bundle": name, "naive_fps": a, "run_fps": b, "decode_fps": decode, "invoke_fps": invoke,
            "b_over_a": b / a, "b_over_ceiling": b / min(decode, invoke), "first_result_s": -top["first"][0],
            "paired": paired,
            "best_threads": {key: top[key][1]["threads"] for key in ("naive", "run", "decode", "invoke")},
            "peak_rss_mb": max(r["peak_rss_mb"] for _, r in best["run"]),
            # CPU of the loop alone: the process's CPU minus that of starting up (a one-frame run)
            "run_cpu_ms_per_frame": round((top["run"][1]["cpu_s"] + top["startup"][0]) * 1000 / (frames - 1), 3),
            "jpegs": (_count_images(naive_dir), _count_images(run_dir)),
            "latency_p50_ms": run["stats"].get("latency_p50_ms"),
            "latency_p99_ms": run["stats"].get("latency_p99_ms"),
            "load": (load_before, os.getloadavg()[0]),
            "all_fps": {key: [f"{v[0]:.1f} ({v[1]['threads']})" for v in values]
                        for key, values in best.items() if key not in ("first", "startup")}}


def _verdict(row: dict) -> dict[str, bool]:
    return {"b_over_a": row["b_over_a"] >= GOALS["b_over_a"],
            "b_over_ceiling": row["b_over_ceiling"] >= GOALS["b_over_ceiling"],
            "first_result_s": row["first_result_s"] <= GOALS["first_result_s"],
            "peak_rss_mb": row["peak_rss_mb"] <= GOALS["peak_rss_mb"]}


def report(rows: list[dict], frames: int, threads: list[int], rounds: int, logging: str, command: str) -> str:
    from edge.interpreter import available_backend

    backend, version = available_backend()
    mark = {True: "yes", False: "**no**"}
    lines = [
        "# Edge runtime benchmark",
        "",
        f"`{command}` on {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{backend} {version}, OpenCV {cv2.__version__}. Video: synthetic drive, 640x480, 30 fps, "
        f"{frames} frames, one file per codec ({'; '.join(f'{k}: {v[1]}' for k, v in CODECS.items())}). "
        "Same thread budget for every variant: each one that runs the "
        f"interpreter was tried with {' and '.join(map(str, threads))} interpreter thread(s) and keeps its "
        "best (in brackets); decode alone with OpenCV's default decoder threads and with one. "
        f"Each variant ran {rounds} times, interleaved; the table keeps each one's best round "
        "(the machine is shared, so slower rounds measure the neighbours). Peak RSS: the worst round.",
        "",
        "(a) naive sequential loop (read, preprocess, invoke, print, JPEG every 10th frame); "
        + ("(b) `edgekit run` with the same output and the sample log keeping 10% of frames at random "
           "(`--log-random 0.1`: JPEG + fsync + SQLite row each, in its writer thread); "
           if logging == "samplelog" else
           "(b) `edgekit run` with the same output and a JPEG part (every 10th frame, its own thread); ")
        + "(c) ceilings: decode alone, invoke alone.",
        "",
        "| bundle | (a) naive fps (threads) | (b) edgekit run fps (threads) | (c) decode fps (decoder threads) "
        "| (c) invoke fps (threads) | b/a (goal >= 1.5) "
        "| b/min(c) (goal >= 0.8) | start to first result s (goal <= 1.5) | peak RSS MB (goal <= 150) "
        "| latency p50/p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ok, t = _verdict(row), row["best_threads"]
        lines.append(
            f"| {row['bundle']} | {row['naive_fps']:.1f} ({t['naive']}) | {row['run_fps']:.1f} ({t['run']}) "
            f"| {row['decode_fps']:.1f} ({t['decode']}) | {row['invoke_fps']:.1f} ({t['invoke']}) "
            f"| {row['b_over_a']:.2f} ({mark[ok['b_over_a']]}) "
            f"| {row['b_over_ceiling']:.2f} ({mark[ok['b_over_ceiling']]}) "
            f"| {row['first_result_s']:.2f} ({mark[ok['first_result_s']]}) "
            f"| {row['peak_rss_mb']:.0f} ({mark[ok['peak_rss_mb']]}) "
            f"| {row['latency_p50_ms']}/{row['latency_p99_ms']} |")
    cores = os.cpu_count() or 1
    lines += ["", f"Where the ceiling really is: (b)'s CPU time per frame (all its threads, start-up "
              f"subtracted, best round) and the frames/s that {cores} fully busy cores would give at that cost:",
              "", "| bundle | (b) CPU ms/frame | (b) at 100% of all cores, fps | (b) measured / that |",
              "|---|---|---|---|"]
    for row in rows:
        bound = cores * 1000 / row["run_cpu_ms_per_frame"]
        lines.append(f"| {row['bundle']} | {row['run_cpu_ms_per_frame']:.3f} | {bound:.0f} "
                     f"| {row['run_fps'] / bound:.2f} |")
    lines += ["", "The same ratios within each round (that round's best of each variant), so that the host's "
              "speed, which drifts by up to 30% over a minute here, cancels out; the median over rounds:", "",
              "| bundle | b/a per round | median b/a | b/min(c) per round | median b/min(c) |", "|---|---|---|---|---|"]
    for row in rows:
        over_a, over_c = zip(*row["paired"], strict=True)
        lines.append(f"| {row['bundle']} | {', '.join(f'{v:.2f}' for v in over_a)} | {np.median(over_a):.2f} "
                     f"| {', '.join(f'{v:.2f}' for v in over_c)} | {np.median(over_c):.2f} |")
    lines += ["", "Decoding a 640x480 frame, resizing it and logging every 10th one cost far more CPU than "
              "invoking these small models, so (b) is bounded by the CPU all its threads need per frame, "
              "not by how well it overlaps them: (b) can reach min(decode, invoke) only if that CPU fits "
              "in the cores while the decoder never waits.",
              f"Load average (1 min) before/after: {rows[0]['load'][0]:.1f} / {rows[-1]['load'][1]:.1f} "
              f"on {os.cpu_count()} CPUs.",
              "", "Images written (naive, edgekit run): "
              + ", ".join(f"{r['bundle']}: {r['jpegs'][0]}, {r['jpegs'][1]}" for r in rows), "",
              "Every round's frames/s:", ""]
    lines += [f"- {r['bundle']}: " + "; ".join(f"{k} {v}" for k, v in r["all_fps"].items()) for r in rows]
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["naive"]:
        parser = argparse.ArgumentParser(prog="python -m bench.edge_loop naive")
        for flag in ("--bundle", "--video", "--jpeg-dir"):
            parser.add_argument(flag, type=Path, required=True)
        parser.add_argument("--threads", type=int, required=True)
        args = parser.parse_args(argv[1:])
        naive_loop(args.bundle, args.video, args.threads, args.jpeg_dir)
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.edge_loop", description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, action="append", required=True, help="bundle (repeatable)")
    parser.add_argument("--frames", type=int, default=1800, help="video length in frames (default 1800 = 60 s)")
    parser.add_argument("--codec", action="append", choices=sorted(CODECS),
                        help="video codec(s) to test (repeatable; default: all)")
    parser.add_argument("--threads", type=int, action="append",
                        help="interpreter threads to try (repeatable; default: 1 and all cores)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions; the best is kept")
    parser.add_argument("--logging", choices=("samplelog", "jpeg"), default="samplelog",
                        help="(b)'s logging load: the sample log at 10%% random (default) or a JPEG part every 10th")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"report (default {RESULTS})")
    args = parser.parse_args(argv)
    threads = args.threads or sorted({1, os.cpu_count() or 1})
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-") as tmp:
        work = Path(tmp)
        print(f"writing a {args.frames}-frame 640x480 video ...", flush=True)
        rows, videos = [], []
        for codec in args.codec or list(CODECS):
            video = make_video(work / f"drive{CODECS[codec][0]}", args.frames, codec=codec)
            videos.append(video)
            for bundle in args.bundle:
                print(f"benchmarking {bundle} on {video.name} ...", flush=True)
                rows.append(bench_bundle(bundle, video, args.frames, threads, work, args.rounds,
                                         args.logging))
        from bench import samplelog as samplelog_bench  # the sample log's section (H5)

        print("benchmarking the sample log ...", flush=True)
        log_rows = samplelog_bench.bench_samplelog(args.bundle[0], videos[0], args.frames, threads[-1], work,
                                                   args.rounds)
    text = report(rows, args.frames, threads, args.rounds, args.logging,
                  shown_command("bench.edge_loop", argv))
    text += "\n" + samplelog_bench.report(log_rows, args.frames, threads[-1])
    write_result(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
