"""`make bench-data`: load all 60,000 CIFAR-10 images from the archive, split, audit.

Baselines measured in the same run: decoding on one thread (vs the thread pool)
and a brute-force popcount search (vs the banded search) on a sample. Writes
bench/results/data.md and data.json.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from bench.paths import REPO, RESULTS, shown

ARCHIVE = REPO.parent / "shared" / "datasets" / "cifar10-jpg.zip"
THRESHOLD = 4


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> int:
    from train.audit import audit, dhash, near_pairs
    from train.data import images as image_loader
    from train.data import load_dataset
    from train.splits import make_split

    archive = Path(os.environ.get("EDGEKIT_CIFAR_ZIP", ARCHIVE))
    if not archive.is_file():
        print(f"bench-data: CIFAR-10 archive not found at {archive} (set EDGEKIT_CIFAR_ZIP)", file=sys.stderr)
        return 2
    dataset, load_s = _timed(load_dataset, str(archive), progress=False)
    # baseline: the same decode on one thread, on a 6,000-image slice
    import zipfile

    with zipfile.ZipFile(archive) as zf:
        names = [n for n in zf.namelist() if n.endswith(".jpg")][::10]
        blobs = [zf.read(n) for n in names]
    _, one_thread_s = _timed(lambda: [image_loader.decode_image(b, 8) for b in blobs])
    split, split_s = _timed(make_split, dataset, keep_subsets=True)
    by_hash, hash_split_s = _timed(make_split, dataset)
    hashes, hash_s = _timed(dhash, dataset.images)
    given = {s: np.flatnonzero(dataset.subsets == s) for s in ("train", "test")}
    report, search_s = _timed(audit, dataset.images, given, THRESHOLD, hashes)
    # baseline search: brute-force popcount of all test hashes against a 5,000-image train slice
    train_h, test_h = hashes[given["train"]], hashes[given["test"]]
    _, brute_s = _timed(lambda: np.argwhere(np.bitwise_count(test_h[:, None] ^ train_h[None, :5000]) <= THRESHOLD))
    _, banded_slice_s = _timed(near_pairs, test_h, train_h[:5000], THRESHOLD)
    pairs = report.pairs["train~test"]
    exact = int((pairs[:, 2] == 0).sum()) if len(pairs) else 0
    per_threshold = {t: len(near_pairs(test_h, train_h, t)[0]) for t in (0, 2, 4, 6, 8)}
    results = {
        "images": len(dataset), "archive": shown(archive), "cpus": os.cpu_count(), "python": platform.python_version(),
        "load_s": round(load_s, 2), "load_images_per_s": round(len(dataset) / load_s),
        "decode_one_thread_per_s": round(len(blobs) / one_thread_s),
        "split_keep_subsets_s": round(split_s, 3), "split_hash_s": round(hash_split_s, 3),
        "split_sizes": {k: len(v) for k, v in split.indices(dataset).items()},
        "hash_split_sizes": {k: len(v) for k, v in by_hash.indices(dataset).items()},
        "dhash_s": round(hash_s, 2), "search_s": round(search_s, 2), "audit_s": round(hash_s + search_s, 2),
        "threshold": THRESHOLD, "train_test_pairs": len(pairs), "train_test_identical_hash_pairs": exact,
        "test_images_with_near_copy_in_train": report.leaked("train~test"),
        "pairs_by_threshold": per_threshold,
        "search_slice_brute_s": round(brute_s, 3), "search_slice_banded_s": round(banded_slice_s, 3),
        "total_s": round(load_s + split_s + hash_s + search_s, 2),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "data.json").write_text(json.dumps(results, indent=2) + "\n")
    examples = "\n".join(f"| {dataset.sources[a].split(':')[-1]} | {dataset.sources[b].split(':')[-1]} | {d} |"
                         for a, b, d in pairs[np.argsort(pairs[:, 2], kind="stable")][:10])
    markdown = f"""# bench-data: CIFAR-10 archive (60,000 JPEGs), {os.cpu_count()} CPUs

Command: `make bench-data` (`python -m bench.data`).

| step | time | note |
|---|---|---|
| load (read zip + decode, thread pool) | {load_s:.1f} s | {results['load_images_per_s']:,} img/s end to end; baseline: bare imdecode on one thread of 6,000 pre-read JPEGs {results['decode_one_thread_per_s']:,} img/s (ratio x{results['load_images_per_s'] / results['decode_one_thread_per_s']:.2f}; the machine is shared, wall times are noisy) |
| split, archive train/test kept, val by hash | {split_s:.2f} s | {results['split_sizes']} |
| split, group hash 70/15/15 | {hash_split_s:.2f} s | {results['hash_split_sizes']} |
| dHash of 60,000 images | {hash_s:.2f} s | |
| near-duplicate search train x test | {search_s:.2f} s | banded (multi-index) search |
| **total** | **{results['total_s']:.1f} s** | goal: under 60 s |

Search baseline on 10,000 test x 5,000 train hashes: brute-force popcount {brute_s:.3f} s, banded {banded_slice_s:.3f} s (x{brute_s / max(banded_slice_s, 1e-9):.1f}).

## Near-duplicates between the archive's train and test (dHash, Hamming <= {THRESHOLD})

{len(pairs)} pairs; {report.leaked('train~test')} of 10,000 test images ({report.leaked('train~test') / 100:.2f}%) have a near-copy in train; {exact} pairs have identical hashes.

Pairs by threshold: {', '.join(f'<= {t}: {n}' for t, n in per_threshold.items())}.

| train | test | distance |
|---|---|---|
{examples}
"""
    (RESULTS / "data.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
