"""`make bench-scale`: a synthetic driving set beyond memory as a shard set, streamed (issue 18.5).

    python -m bench.scale                        # 50k, 100k, 200k frames at 96x96 (21 min on 2 busy cores)
    python -m bench.scale --frames 2000          # the same steps at 500, 1000, 2000 frames (a try-out)

One shard set grows through the sizes (frames from edge.synthetic in blocks, block b with
seed b, stored as JPEG as a car logs them; appends add shards, as `edgekit ingest` does).
At each size: the time to build (generate + encode + write), the index-only operations
(open and check the index, split by group hash, class weights, the leakage audit from stored
dHashes, exact duplicates by stored SHA-256), and one training epoch of car-small streamed
from the shards (images/s of the training phase, peak RSS of the process). At the smallest
size the same epoch also runs on an in-memory .npz of the same (decoded) images, and on two
multi-worker processes on localhost. Each training run is its own process, so its peak RSS
(VmHWM, not ru_maxrss: see _peak_rss_mb) is its own. Results: bench/results/scale.md (+ .json), rewritten after each step.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.paths import REPO, RESULTS, shown_command, write_result

WORK = REPO / "runs" / "bench-scale"
BATCH = 64
SIZE = (96, 96)
JPEG_QUALITY = 90


# ------------------------------------------------------------------ child: one training epoch


def child(args: argparse.Namespace) -> None:
    """Train one epoch and print {"train_images", "train_s", "images_per_s", "startup_s", "peak_rss_mb"}."""
    import keras

    from train.training import TrainConfig, train

    started = time.perf_counter()
    marks: dict[str, float] = {}

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            marks.setdefault("begin", time.perf_counter())

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            marks["first_batch" if "first_batch" not in marks else "last_batch"] = time.perf_counter()
            marks["batches"] = batch + 1

        def on_test_begin(self, logs: Any = None) -> None:
            marks.setdefault("train_end", time.perf_counter())

    config = TrainConfig(dataset=args.data, model=args.model, epochs=1, batch_size=BATCH, learning_rate=1e-3,
                         out=str(args.out), verbose=0, strategy=args.strategy, split_file=args.split,
                         limit=args.train_images or None)
    result = train(config, callbacks=[Clock()])
    run = json.loads((Path(args.out) / "run.json").read_text()) if (Path(args.out) / "run.json").exists() else {}
    train_images = run.get("split_sizes", {}).get("train")
    seconds = marks["train_end"] - marks["begin"]
    # the first batch carries tf.function tracing: throughput is timed from its end
    steady = marks.get("last_batch", marks["train_end"]) - marks["first_batch"]
    print(json.dumps({
        "status": result.status, "train_images": train_images, "batches": marks.get("batches"),
        "train_s": round(seconds, 2), "steady_s": round(steady, 2), "startup_s": round(marks["begin"] - started, 2),
        "peak_rss_mb": _peak_rss_mb(),
        "val_accuracy": result.summary.get("max_val_accuracy"), "load_average": round(os.getloadavg()[0], 2),
    }))


def _peak_rss_mb() -> float:
    """This process's peak resident memory since its exec (VmHWM). Not ru_maxrss: Linux carries the
    forking parent's peak over into a child's ru_maxrss across exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _train(data: Path, out: Path, split: Path, options: argparse.Namespace, strategy: str = "default",
           env: dict[str, str] | None = None, wait: bool = True) -> Any:
    command = [sys.executable, "-m", "bench.scale", "--child", "--data", str(data), "--out", str(out),
               "--split", str(split), "--strategy", strategy, "--model", options.model,
               "--train-images", str(options.train_images)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})
    return _finish(process) if wait else process


def _finish(process: subprocess.Popen) -> dict[str, Any]:
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"training child failed ({process.returncode}):\n{stderr[-3000:]}")
    figures = json.loads(stdout.strip().splitlines()[-1])
    batches, steady = figures.get("batches") or 0, figures.get("steady_s") or 0
    figures["images_per_s"] = round((batches - 1) * BATCH / steady, 1) if batches > 1 and steady > 0 else None
    return figures


# ------------------------------------------------------------------ parent: build, index ops, runs


def _blocks(first: int, count: int, block: int):
    """Records of synthetic blocks first..first+count-1 (block b: seed b), encoded as JPEG."""
    import numpy as np

    from edge import synthetic
    from train.data.shards import records_from_arrays

    for b in range(first, first + count):
        images, labels, scenes = synthetic.generate(block, size=SIZE, seed=b, frames_per_scene=20)
        sources = np.asarray([f"synthetic:{b}/{s}/{i % 20}" for i, s in enumerate(scenes.tolist())])
        yield from records_from_arrays(images, labels, scenes, sources, np.full(block, ""), "jpeg", JPEG_QUALITY)


def _index_ops(root: Path, split_out: Path) -> dict[str, Any]:
    """Time what works from the index alone."""
    import numpy as np

    from train.audit import audit
    from train.data.shards import ShardSet
    from train.splits import class_weights, make_split

    times: dict[str, float] = {}
    start = time.perf_counter()
    shards = ShardSet.open(root)
    times["open_and_check_index_s"] = time.perf_counter() - start
    start = time.perf_counter()
    split = make_split(shards)
    indices = split.indices(shards)
    split.save(split_out)
    times["split_s"] = time.perf_counter() - start
    start = time.perf_counter()
    class_weights(shards.labels[indices["train"]], len(shards.class_names))
    times["class_weights_s"] = time.perf_counter() - start
    start = time.perf_counter()
    report = audit(shards.images, indices, 4, hashes=shards.dhash, labels=shards.labels)
    times["audit_stored_dhash_s"] = time.perf_counter() - start
    start = time.perf_counter()
    _, counts = np.unique(shards.sha256, return_counts=True)
    times["exact_duplicates_sha256_s"] = time.perf_counter() - start
    start = time.perf_counter()
    ShardSet.open(root).verify()  # not index-only: what training does first (read every shard once)
    times["verify_all_shards_s"] = time.perf_counter() - start
    return {**{k: round(v, 3) for k, v in times.items()}, "audit_pairs": int(report.total),
            "exact_duplicate_images": int((counts - 1).sum())}


def _npz_of(root: Path, out: Path) -> float:
    """The shard set's decoded images as an in-memory .npz (what streaming decodes); seconds."""
    from train.data.shards import ShardSet

    start = time.perf_counter()
    ShardSet.open(root).load().save(out)
    return time.perf_counter() - start


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _two_workers(data: Path, split: Path, options: argparse.Namespace) -> dict[str, Any]:
    cluster = {"worker": [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]}
    processes = [_train(data, WORK / f"worker-{i}", split, options, "multi-worker",
                        {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})},
                        wait=False) for i in range(2)]
    figures = [_finish(p) for p in processes]
    return {"workers": figures}


def report(results: dict[str, Any], argv: list[str]) -> str:
    lines = ["# Scale: a shard set streamed through tf.data", "",
             f"`{shown_command('bench.scale', argv)}` (bench/scale.py). Synthetic driving frames "
             f"(edge.synthetic) at {SIZE[0]}x{SIZE[1]}, JPEG quality {JPEG_QUALITY}, one shard set grown through the "
             f"sizes; model {results['model']}, batch {BATCH}, one epoch over "
             + (f"a seeded random {results['train_images']:,} images of the training split (and as many of val; "
                "the stream still reads every shard holding one and drops the rest by record number)"
                if results["train_images"] else "the whole training split")
             + f". {results['machine']}, shared with other jobs (1-minute load average at each run in the JSON). "
             "images/s = the training phase of the epoch after its first batch (tracing); peak RSS = the training "
             "process's VmHWM (peak resident memory since it started).", ""]
    sizes = results.get("sizes", {})
    if sizes:
        lines += ["| frames | on disk (MB) | decoded / on disk (MB) | build (s, cumulative) | open+check index (s) | "
                  "split (s) | class weights (s) | audit from dHashes (s) | duplicates by SHA-256 (s) | "
                  "check every shard's SHA-256 (s) | streamed images/s | peak RSS (MB) |", "|---" * 12 + "|"]
        for n, row in sorted(sizes.items(), key=lambda kv: int(kv[0])):
            ops, run = row.get("index_ops", {}), row.get("stream", {})
            lines.append(f"| {int(n):,} | {row['disk_mb']:.0f} | {row['decoded_mb']:.0f} / {row['disk_mb']:.0f} | "
                         f"{row['build_s']:.0f} | {ops.get('open_and_check_index_s', '-')} | {ops.get('split_s', '-')} | "
                         f"{ops.get('class_weights_s', '-')} | {ops.get('audit_stored_dhash_s', '-')} | "
                         f"{ops.get('exact_duplicates_sha256_s', '-')} | {ops.get('verify_all_shards_s', '-')} | "
                         f"{run.get('images_per_s', '-')} | "
                         f"{run.get('peak_rss_mb', '-')} |")
        lines.append("")
    memory = results.get("in_memory")
    if memory:
        stream = sizes[str(results["compare_at"])]["stream"]
        ratio = stream["images_per_s"] / memory["images_per_s"] if memory.get("images_per_s") else None
        lines += [f"At {results['compare_at']:,} frames ({memory['train_images']:,} training images): streamed "
                  f"{stream['images_per_s']} images/s (peak RSS {stream['peak_rss_mb']} MB) vs in-memory .npz "
                  f"{memory['images_per_s']} images/s (peak RSS {memory['peak_rss_mb']} MB): ratio "
                  f"**{ratio:.2f}** (goal >= 0.9)." if ratio else "in-memory run gave no throughput", ""]
    workers = results.get("two_workers")
    if workers:
        both = workers["workers"][0].get("images_per_s")
        single = sizes[str(results["compare_at"])]["stream"].get("images_per_s")
        lines += [f"Two multi-worker processes on localhost at {results['compare_at']:,} frames, sharing the same "
                  "cores ("
                  + ("FILE sharding: each reads its half of the shard files"
                     if sizes[str(results["compare_at"])]["shards"] >= 2 else "DATA sharding: one shard file")
                  + f"): {both} images/s together "
                  f"(each step is one global batch of {BATCH}, half computed by each worker: "
                  f"{both / 2 if both else '-'} images/s per worker), against {single} images/s for one process "
                  f"streaming alone; peak RSS per worker {[w['peak_rss_mb'] for w in workers['workers']]} MB.", ""]
    for note in results.get("notes", []):
        lines.append(f"- {note}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=200_000, help="largest size (default 200000); the others are "
                                                                     "a quarter and a half of it")
    parser.add_argument("--block", type=int, default=10_000, help="frames generated per block (seed = block number)")
    parser.add_argument("--no-workers", action="store_true", help="skip the two-worker run")
    parser.add_argument("--model", default="baseline", help="preset trained (default baseline, the chapter's CNN)")
    parser.add_argument("--train-images", type=int, default=10_000,
                        help="images of the training split in the timed epoch (a seeded random subset; the stream "
                             "still reads every shard and drops the rest by record number); 0: the whole split")
    parser.add_argument("--out", type=Path, default=RESULTS / "scale.md")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--split", help=argparse.SUPPRESS)
    parser.add_argument("--strategy", default="default", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0
    argv = list(sys.argv[1:] if argv is None else argv)
    sizes = [args.frames // 4, args.frames // 2, args.frames]
    block = min(args.block, sizes[0])
    if any(n % block for n in sizes):
        parser.error(f"--frames {args.frames}: a quarter of it must be a multiple of --block {block}")
    from train.data.shards import INDEX_NAME, ShardSet, append_records

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    root = WORK / "scale.shards"
    results: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "sizes": {},
                               "compare_at": sizes[0], "model": args.model, "train_images": args.train_images,
                               "notes": []}

    def save() -> None:
        write_result(args.out, report(results, argv))
        args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")

    built, build_s = 0, 0.0
    for n in sizes:
        start = time.perf_counter()
        append_records(root, _blocks(built // block, (n - built) // block, block),
                       class_names=["green", "none", "red", "yellow"], image_size=SIZE, name="scale")
        build_s += time.perf_counter() - start
        built = n
        shards = ShardSet.open(root)
        disk = sum(s.bytes for s in shards.shards) + (root / INDEX_NAME).stat().st_size
        row: dict[str, Any] = {"build_s": round(build_s, 1), "disk_mb": disk / 1e6,
                               "decoded_mb": shards.nbytes_decoded() / 1e6, "shards": len(shards.shards)}
        results["sizes"][str(n)] = row
        split = WORK / f"split-{n}.json"
        row["index_ops"] = _index_ops(root, split)
        save()
        row["stream"] = _train(root, WORK / f"run-stream-{n}", split, args)
        save()
        if n == sizes[0]:
            npz = WORK / "scale.npz"
            row["npz_s"] = round(_npz_of(root, npz), 1)
            results["in_memory"] = _train(npz, WORK / "run-memory", split, args)
            npz.unlink()
            save()
            if not args.no_workers:
                results["two_workers"] = _two_workers(root, split, args)
                save()
    save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
