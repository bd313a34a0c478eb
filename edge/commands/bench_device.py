"""`edgekit bench-device`: how fast this device runs a bundle (paste the output into an issue)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

NAME = "bench-device"
HELP = "measure interpreter latency per thread count, preprocessing, end-to-end fps/latency, RSS, start time"
NEEDS = ()
NO_BLAS_THREADS = True  # see edge.cli


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", type=Path, required=True, help="bundle folder/archive")
    parser.add_argument("--source", default="synthetic:seed=1",
                        help="source for the end-to-end run (default: a synthetic 640x480 drive)")
    parser.add_argument("--size", default="640x480", help="camera/synthetic frame size WxH")
    parser.add_argument("--max-threads", type=int, default=os.cpu_count() or 1,
                        help="time the interpreter with 1..N threads (default: all cores)")
    parser.add_argument("--threads", type=int, default=None, help="threads for the end-to-end run (default: all)")
    parser.add_argument("--frames", type=int, default=300, help="frames for the end-to-end run")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from edge.bundle import open_bundle
    from edge.interpreter import available_backend
    from edge.measure import invoke_latency, preprocess_cost, run_and_measure, time_to_first_result
    from edge.runtime.model import load_model
    from edge.sizes import parse_size_wxh
    from edge.sources import SourceOptions, make_source

    loaded = load_model(args.bundle, threads=1)  # verified: checksums + golden self-test
    bundle = open_bundle(args.bundle)
    size = parse_size_wxh(args.size)
    backend, version = available_backend()
    report: dict = {"bundle": loaded.version, "interpreter": f"{backend} {version}", "cpus": os.cpu_count(),
                    "input": f"{loaded.model.input_dtype.name} {list(loaded.model.input_shape)}"}
    report["invoke"] = [invoke_latency(bundle.model_path, t) for t in range(1, max(1, args.max_threads) + 1)]

    source = make_source(args.source, SourceOptions(size=size, model_input_hw=loaded.spec.input_size,
                                                    roi=loaded.spec.roi))
    source.open()
    try:
        frames = [f.image for f in (source.read() for _ in range(30)) if f is not None]
    finally:
        source.close()
    report["frame"] = list(frames[0].shape) if frames else None
    report["preprocess"] = preprocess_cost(frames, loaded.spec) if frames else None

    common = ["--bundle", str(args.bundle), "--source", args.source, "--size", args.size]
    if args.threads:
        common += ["--threads", str(args.threads)]
    e2e = run_and_measure([*common, "--frames", str(args.frames), "--quiet", "--stats-interval", "0"])
    stats = e2e["stats"]
    report["end_to_end"] = {key: stats.get(key) for key in ("fps", "latency_p50_ms", "latency_p99_ms",
                                                            "inference_p50_ms", "frames", "skipped")}
    report["end_to_end"]["fps"] = round(stats.get("frames", 0) / max(stats.get("uptime_s", 0), 1e-9), 1)
    report["peak_rss_mb"] = e2e["peak_rss_mb"]
    report["start_to_first_result_s"] = round(time_to_first_result([*common, "--frames", "1"]), 3)

    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"bundle {report['bundle']}  input {report['input']}  interpreter {report['interpreter']}  "
          f"cpus {report['cpus']}")
    print("interpreter latency (random input):")
    for row in report["invoke"]:
        print(f"  threads={row['threads']}: p50 {row['p50_ms']:.3f} ms  p90 {row['p90_ms']:.3f} ms  "
              f"({row['fps']:.0f} invokes/s)")
    if report["preprocess"]:
        print(f"preprocessing {report['frame']} -> {list(loaded.spec.input_shape)}: "
              f"p50 {report['preprocess']['p50_ms']:.3f} ms per frame")
    e = report["end_to_end"]
    print(f"end to end on {args.source}: {e['fps']} fps, latency p50 {e['latency_p50_ms']} ms "
          f"p99 {e['latency_p99_ms']} ms, inference p50 {e['inference_p50_ms']} ms, skipped {e['skipped']}")
    print(f"peak RSS {report['peak_rss_mb']} MB; start to first result {report['start_to_first_result_s']} s")
    return 0
