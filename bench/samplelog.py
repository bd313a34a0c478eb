"""The sample log's part of `make bench-edge`: what logging costs `edgekit run`.

    python -m bench.samplelog --bundle BUNDLE [--frames 600] [--threads N]

On one video, `edgekit run` (quiet) with logging off, 10% of frames logged
(--log-random 0.1) and every frame logged (--log-random 1), unpaced and paced
at 30 fps like a camera: frames/s and the ratio to logging off, samples written, dropped (queue full, counted), lost
(admitted but neither written nor counted: must be 0), the writer's throughput
in samples/s, and an integrity check of the store after each run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench.paths import RESULTS

VARIANTS = (("off", []), ("10% logged", ["--log-random", "0.1"]), ("every frame", ["--log-random", "1"]))


def bench_samplelog(bundle: Path, video: Path, frames: int, threads: int, work: Path, rounds: int = 2) -> list[dict]:
    """One row per variant (best fps of `rounds` interleaved runs)."""
    from edge.measure import run_and_measure
    from edge.samplelog.store import SampleStore

    best: dict[str, dict] = {}
    for _ in range(rounds):
        for name, flags in VARIANTS:
            store = work / "samples"
            shutil.rmtree(store, ignore_errors=True)
            extra = ["--log-dir", str(store), "--log-seed", "1", *flags] if flags else []
            result = run_and_measure(["--bundle", str(bundle), "--source", str(video), "--threads", str(threads),
                                      "--quiet", "--stats-interval", "0", *extra])
            stats = result["stats"]
            row = {"variant": name, "fps": stats["frames"] / stats["uptime_s"], "frames": stats["frames"]}
            if flags:
                with SampleStore(store, readonly=True) as opened:
                    check = opened.check()
                logged, enqueued = int(stats["log.logged"]), int(stats["log.log_enqueued"])
                row.update(logged=logged, dropped=int(stats["log.log_dropped"]),
                           lost=enqueued - logged - int(stats["log.log_lost"]) - int(stats["log.log_full"]),
                           write_per_s=float(stats["log.log_write_per_s"]),
                           store_ok=check["ok"] and check["rows"] == logged, store_mb=float(stats["log.store_mb"]))
            if name not in best or row["fps"] > best[name]["fps"]:
                best[name] = row
    for name, flags in (("paced 30 fps, off", []), ("paced 30 fps, every frame", ["--log-random", "1"])):
        # at a camera's pace (--realtime: the file plays at 30 fps, like picamera2 would deliver it)
        store = work / "samples"
        shutil.rmtree(store, ignore_errors=True)
        extra = ["--log-dir", str(store), *flags] if flags else []
        stats = run_and_measure(["--bundle", str(bundle), "--source", str(video), "--threads", str(threads),
                                 "--quiet", "--stats-interval", "0", "--realtime", "--frames", str(min(frames, 150)),
                                 *extra])["stats"]
        row = {"variant": name, "fps": stats["frames"] / stats["uptime_s"], "frames": stats["frames"]}
        if flags:
            with SampleStore(store, readonly=True) as opened:
                check = opened.check()
            logged = int(stats["log.logged"])
            row.update(logged=logged, dropped=int(stats["log.log_dropped"]),
                       lost=int(stats["log.log_enqueued"]) - logged - int(stats["log.log_lost"]),
                       write_per_s=float(stats["log.log_write_per_s"]),
                       store_ok=check["ok"] and check["rows"] == logged, store_mb=float(stats["log.store_mb"]))
        best[name] = row
    for row in best.values():
        row["ratio"] = row["fps"] / best["paced 30 fps, off" if "paced" in row["variant"] else "off"]["fps"]
    return list(best.values())


def report(rows: list[dict], frames: int, threads: int) -> str:
    lines = ["## Sample log (bench/samplelog.py)", "",
             f"`edgekit run --quiet` on the same {frames}-frame 640x480 video, {threads} interpreter thread(s), "
             "JPEG q90 full frames, queue 8; best of the rounds. lost = admitted but neither written nor "
             "counted as dropped (must be 0). Unpaced rows run as fast as the 2 CPUs allow, so the writer "
             "(JPEG encoding, fsyncs) takes CPU from inference; paced rows play the video at 30 fps like a "
             "camera (up to 150 frames, one round).", "",
             "| logging | fps | vs off | written | dropped (queue full) | lost | writer samples/s | store ok |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if "logged" not in row:
            lines.append(f"| {row['variant']} | {row['fps']:.1f} | 1.00 | - | - | - | - | - |")
        else:
            lines.append(f"| {row['variant']} | {row['fps']:.1f} | {row['ratio']:.2f} | {row['logged']} | "
                         f"{row['dropped']} | {row['lost']} | {row['write_per_s']:.0f} | {row['store_ok']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from bench.edge_loop import make_video

    parser = argparse.ArgumentParser(prog="python -m bench.samplelog", description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "samplelog.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-log-") as tmp:
        video = make_video(Path(tmp) / "drive.mp4", args.frames)
        rows = bench_samplelog(args.bundle, video, args.frames, args.threads, Path(tmp), args.rounds)
    text = report(rows, args.frames, args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
