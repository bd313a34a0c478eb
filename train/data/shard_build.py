"""`dataset build --format shards`: any dataset source -> a shard set, without holding it in memory.

Image folders and zips are read in blocks through a thread pool (as `load_image_folder`);
an 8-bit RGB JPEG or PNG already at the target size is stored as it was (its bytes, no
re-encoding), anything else is decoded, resized through the car's preprocessing and
stored as PNG (or JPEG with `encoding="jpeg"`). Synthetic sets are generated in blocks of
SYNTHETIC_BLOCK frames, block b with seed `seed + b`. `.npz` and `keras:` sets are loaded
(they fit in memory by nature) and written.

Example:
    >>> build_shards("photos/", "data/photos.shards", (96, 96), group="level:0")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from edge.errors import UserError
from edge.preprocess import PreprocessSpec, preprocess
from train.data.report import LoadReport
from train.data.shards import (
    INDEX_NAME,
    JPEG_QUALITY,
    RECORDS_PER_SHARD,
    Record,
    ShardSet,
    append_records,
    encode_image,
    is_shard_set,
    records_from_arrays,
    write_dataset,
)

SYNTHETIC_BLOCK = 20_000
FILE_BLOCK = 512


def build_shards(ref: str, out: str | Path, image_size: tuple[int, int] | None = None, *, group: str | None = None,
                 resize: str = "stretch", min_size: int = 8, encoding: str = "png", quality: int = JPEG_QUALITY,
                 records_per_shard: int = RECORDS_PER_SHARD, report: LoadReport | None = None,
                 progress: bool = True) -> ShardSet:
    """Build a new shard set at `out` from a dataset reference (see train.data.load_dataset)."""
    out = Path(out)
    if is_shard_set(out):
        raise UserError(f"{out} is a shard set already: add to it with `edgekit ingest`, or choose a new folder")
    report = report if report is not None else LoadReport()
    ref = str(ref)
    path = Path(ref).expanduser()
    if ref == "synthetic" or ref.startswith("synthetic:"):
        return _synthetic(ref, out, image_size, encoding, quality, records_per_shard)
    if not ref.startswith("keras:") and path.exists() and (path.is_dir() or path.suffix.lower() == ".zip") \
            and not is_shard_set(path):
        return _files(path, out, image_size, group, resize, min_size, encoding, quality, records_per_shard, report,
                      progress)
    from train.data.refs import load_dataset

    dataset = load_dataset(ref, image_size, group=group, resize=resize, min_size=min_size, report=report)
    if isinstance(dataset, ShardSet):
        raise UserError(f"{ref} is a shard set already: copy the folder, or add to it with `edgekit ingest`")
    return write_dataset(dataset, out, encoding, quality, records_per_shard)


def _synthetic(ref: str, out: Path, image_size: tuple[int, int] | None, encoding: str, quality: int,
               records_per_shard: int) -> ShardSet:
    from edge import synthetic
    from edge.sizes import parse_size_hxw
    from train.data.refs import SYNTHETIC_DEFAULTS, parse_options

    opts = parse_options(ref.partition(":")[2], SYNTHETIC_DEFAULTS)
    size = image_size or parse_size_hxw(opts["size"])
    try:
        n, seed, frames = int(opts["n"]), int(opts["seed"]), int(opts["frames"])
    except ValueError:
        raise UserError(f"synthetic options n, seed and frames must be integers, got {ref!r}") from None
    conditions = synthetic.Conditions.parse(opts["conditions"])
    block = max(frames, SYNTHETIC_BLOCK // frames * frames)  # whole scenes per block

    def records() -> Iterator[Record]:
        for b, start in enumerate(range(0, n, block)):
            count = min(block, n - start)
            images, labels, scenes = synthetic.generate(count, size=size, seed=seed + b, conditions=conditions,
                                                        frames_per_scene=frames)
            sources = [f"synthetic:{seed + b}/{scene}/{i % frames}" for i, scene in enumerate(scenes.tolist())]
            yield from records_from_arrays(images, labels, scenes, np.asarray(sources), np.full(count, ""),
                                           encoding, quality)

    full_ref = "synthetic:" + ",".join(f"{k}={v}" for k, v in opts.items())
    append_records(out, records(), class_names=list(synthetic.CLASS_NAMES), image_size=size, name="synthetic",
                   info={"ref": full_ref, "conditions": conditions.to_dict(), "synthetic_block": block},
                   records_per_shard=records_per_shard)
    return ShardSet.open(out)


def _files(path: Path, out: Path, image_size: tuple[int, int] | None, group: str | None, resize: str,
           min_size: int, encoding: str, quality: int, records_per_shard: int, report: LoadReport,
           progress: bool) -> ShardSet:
    from tqdm import tqdm

    from train.audit import dhash
    from train.data.images import _quiet_opencv, decode_image_keepable, folder_entries, zip_entries

    close = lambda: None  # noqa: E731
    if path.is_dir():
        entries, read = folder_entries(path, report, group)
    else:
        entries, read, close = zip_entries(path, report, group)
    class_names = sorted({e.class_name for e in entries})
    if len(class_names) < 2:
        raise UserError(f"{path} has {len(class_names)} class folder(s): a classifier needs at least two "
                        "(one subfolder per class)")
    index = {c: i for i, c in enumerate(class_names)}
    size: list[tuple[int, int]] = [tuple(image_size)] if image_size else []  # type: ignore[list-item]
    resized = [0]

    def work(entry) -> tuple[np.ndarray, bytes] | str:
        try:
            data = read(entry.key)
        except OSError as error:
            return f"cannot read: {error.strerror or error}"
        image, keepable = decode_image_keepable(data, min_size)
        if isinstance(image, str):
            return image
        if not size:
            size.append(image.shape[:2])
        if image.shape[:2] != size[0]:
            image, keepable = preprocess(image, PreprocessSpec(input_size=size[0], resize=resize)), False
            resized[0] += 1
        return image, (data if keepable else encode_image(image, encoding, quality))

    def records() -> Iterator[Record]:
        bar = tqdm(total=len(entries), desc=f"sharding {path.name}", unit="img", leave=False,
                   disable=True if not progress or len(entries) < 1000 else None)
        with _quiet_opencv(), ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            for start in range(0, len(entries), FILE_BLOCK):
                chunk = entries[start:start + FILE_BLOCK]
                results = list(pool.map(work, chunk))
                good = [(e, r) for e, r in zip(chunk, results, strict=True) if not isinstance(r, str)]
                for e, r in zip(chunk, results, strict=True):
                    if isinstance(r, str):
                        report.skip(e.source, r)
                hashes = dhash(np.stack([r[0] for _, r in good])) if good else []
                for (e, (_, data)), h in zip(good, hashes, strict=True):
                    report.loaded += 1
                    yield Record(data, index[e.class_name], e.group, e.source, e.subset, int(h))
                bar.update(len(chunk))
        bar.close()

    try:
        first_size = image_size
        if first_size is None:  # find the first usable image's size before the index is created
            for entry in entries:
                result = work(entry)
                if not isinstance(result, str):
                    first_size = result[0].shape[:2]
                    break
        if first_size is None:
            raise UserError(f"no usable images in {path} ({report.seen} files looked at): put images in one "
                            "subfolder per class")
        size[:] = [tuple(first_size)]
        append_records(out, records(), class_names=class_names, image_size=tuple(first_size), name=path.stem,
                       info={"ref": str(path)}, records_per_shard=records_per_shard)
    finally:
        close()
    if resized[0]:
        report.notes.append(f"{resized[0]} images resized to {first_size[0]}x{first_size[1]} ({resize}); "
                            "pass --size HxW to choose")
    if report.loaded == 0:
        (out / INDEX_NAME).unlink(missing_ok=True)
        raise UserError(f"no usable images in {path} ({len(report.skipped)} skipped): put images in one subfolder "
                        "per class")
    return ShardSet.open(out)
