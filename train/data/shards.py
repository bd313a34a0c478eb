"""Shard sets: datasets beyond memory, as TFRecord shards of encoded images plus an SQLite index.

Layout of a shard set folder (docs/datasets.md#shard-sets):

    data.shards/
      index.sqlite          class names, image size, one row per shard (file, sha256, size,
                            records, per-class counts) and one per record (label, group,
                            source, subset, sha256 of the image bytes, 64-bit dHash)
      shard-00000.tfrecord  tf.train.Example records: image (JPEG/PNG bytes), label, index
      shard-00001.tfrecord  (the record's number in the set), group, source, sha256
      ...

Everything but the pixels lives in the index, so split, class weights, counts and the
leakage audit (stored dHashes) never open a shard. Shards are written once: `append`
(ingest) adds new shard files and index rows, old files are never rewritten. The index is
checked whenever it is opened (counts agree, every shard path stays inside the folder,
labels in range); shard files are checked against their SHA-256 before the first image is
read from them.

A `ShardSet` reads through the same API as the in-memory `Dataset` (labels, class_names,
groups, sources, subsets, images[...], class_counts(), summary()); its `images` reads on
demand (see `ShardImages`), and `train.training.pipeline` streams it through tf.data.

Example:
    >>> ds = load_dataset("synthetic:n=200")                         # doctest: +SKIP
    >>> shards = write_dataset(ds, "data.shards", records_per_shard=64)  # doctest: +SKIP
    >>> ShardSet.open("data.shards").class_counts()                  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

import cv2
import numpy as np

from edge.digest import file_sha256, is_sha256_hex
from edge.durable import fsync_dir
from edge.errors import UserError

INDEX_NAME = "index.sqlite"
FORMAT_VERSION = 1
RECORDS_PER_SHARD = 2048
ENCODINGS = ("png", "jpeg")
JPEG_QUALITY = 95
MAX_IN_MEMORY_BYTES = 2 << 30  # `images` of a whole shard set larger than this is refused

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS shards (
    id INTEGER PRIMARY KEY, file TEXT NOT NULL UNIQUE, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL,
    records INTEGER NOT NULL, first_index INTEGER NOT NULL, class_counts TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    idx INTEGER PRIMARY KEY, shard INTEGER NOT NULL REFERENCES shards(id), label INTEGER NOT NULL,
    grp TEXT NOT NULL, source TEXT NOT NULL, subset TEXT NOT NULL, sha256 TEXT NOT NULL,
    dhash INTEGER NOT NULL);
"""


def is_shard_set(path: str | Path) -> bool:
    """A folder holding a shard set's index."""
    return (Path(path) / INDEX_NAME).is_file()


# ---------------------------------------------------------------- encoding and records


@dataclass(frozen=True)
class Record:
    """One frame to write: encoded image bytes and what the index keeps about it."""

    data: bytes
    label: int
    group: str
    source: str
    subset: str
    dhash: int  # 64-bit difference hash (train.audit.dhash) of the decoded pixels


def encode_image(image: np.ndarray, encoding: str = "png", quality: int = JPEG_QUALITY) -> bytes:
    """RGB uint8 (H, W, 3) -> PNG (lossless) or JPEG bytes."""
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if encoding == "png":
        ok, data = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    elif encoding == "jpeg":
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    else:
        raise UserError(f"unknown image encoding {encoding!r}: use one of {', '.join(ENCODINGS)}")
    if not ok:
        raise UserError(f"cannot encode a {image.shape} image as {encoding}")
    return data.tobytes()


def parse_encoding(text: str) -> tuple[str, int]:
    """`png`, `jpeg` or `jpeg:QUALITY` -> (encoding, quality)."""
    name, _, quality = text.partition(":")
    if name not in ENCODINGS:
        raise UserError(f"--encoding {text!r}: use png (lossless) or jpeg[:QUALITY], e.g. jpeg:95")
    try:
        value = int(quality) if quality else JPEG_QUALITY
    except ValueError:
        raise UserError(f"--encoding {text!r}: the JPEG quality must be a number 1..100") from None
    if not 1 <= value <= 100:
        raise UserError(f"--encoding {text!r}: the JPEG quality must be 1..100")
    return name, value


def records_from_arrays(images: np.ndarray, labels: np.ndarray, groups: np.ndarray, sources: np.ndarray,
                        subsets: np.ndarray, encoding: str = "png", quality: int = JPEG_QUALITY) -> Iterator[Record]:
    """Records of in-memory images, encoded one by one (memory: one image at a time)."""
    from train.audit import dhash

    for start in range(0, len(images), 256):
        block = images[start:start + 256]
        hashes = dhash(block)
        for offset, image in enumerate(block):
            i = start + offset
            yield Record(encode_image(image, encoding, quality), int(labels[i]), str(groups[i]), str(sources[i]),
                         str(subsets[i]), int(hashes[offset]))


def _example(record: Record, index: int, digest: str) -> bytes:
    import tensorflow as tf

    def b(value: str | bytes) -> Any:
        raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[raw]))

    def i(value: int) -> Any:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    return tf.train.Example(features=tf.train.Features(feature={
        "image": b(record.data), "label": i(record.label), "index": i(index), "group": b(record.group),
        "source": b(record.source), "sha256": b(digest),
    })).SerializeToString()


# ---------------------------------------------------------------- writing


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.executescript(_SCHEMA)
    return connection


def _shard_name(shard_id: int) -> str:
    return f"shard-{shard_id:05d}.tfrecord"


@dataclass
class _Pending:
    """A shard written but not yet in the index (rows go in one transaction at the end)."""

    shard: tuple[Any, ...]
    rows: list[tuple[Any, ...]]


def append_records(root: str | Path, records: Iterable[Record], *, class_names: list[str] | None = None,
                   image_size: tuple[int, int] | None = None, name: str = "", info: dict[str, Any] | None = None,
                   records_per_shard: int = RECORDS_PER_SHARD) -> int:
    """Write `records` as new shards of the set at `root` (created when missing); returns records added.

    Old shard files are never opened for writing. Each shard is written under a temporary
    name, fsynced and renamed; the index rows of all new shards go in one SQLite
    transaction at the end, so a crash leaves the old set as it was (plus stray files the
    next append replaces). The new rows wait in memory until then (~300 bytes a record).
    """
    import tensorflow as tf

    root = Path(root)
    if records_per_shard < 1:
        raise UserError(f"records per shard must be >= 1, got {records_per_shard}")
    existing = ShardSet.open(root) if is_shard_set(root) else None
    if existing is None:
        if not class_names or image_size is None:
            raise UserError(f"{root} is not a shard set yet: give the class names and image size to create it")
        if root.exists() and any(root.iterdir()):
            raise UserError(f"{root} exists and is not a shard set: choose a new folder for --out")
        root.mkdir(parents=True, exist_ok=True)
    else:
        if class_names and list(class_names) != existing.class_names:
            raise UserError(f"classes {list(class_names)} differ from the shard set's {existing.class_names}")
        if image_size and tuple(image_size) != existing.image_size:
            raise UserError(f"images of {tuple(image_size)} cannot join a shard set of {existing.image_size}")
        class_names, image_size = existing.class_names, existing.image_size
    k = len(class_names)
    next_index = len(existing) if existing else 0
    next_shard = (max(existing.shard_ids) + 1) if existing and existing.shard_ids else 0
    pending: list[_Pending] = []
    writer, rows, tmp, counts = None, [], None, None

    def close() -> None:
        nonlocal writer, next_shard
        writer.close()
        final = root / _shard_name(next_shard)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        tmp.replace(final)
        fsync_dir(root)
        first = rows[0][0]
        pending.append(_Pending((next_shard, final.name, file_sha256(final), final.stat().st_size, len(rows),
                                 first, json.dumps(counts.tolist())), [(*r[:1], next_shard, *r[1:]) for r in rows]))
        next_shard += 1
        writer = None

    added = 0
    try:
        for record in records:
            if not 0 <= record.label < k:
                raise UserError(f"record label {record.label} is outside the {k} classes")
            if writer is None:
                tmp = root / (_shard_name(next_shard) + ".tmp")
                writer, rows, counts = tf.io.TFRecordWriter(str(tmp)), [], np.zeros(k, np.int64)
            digest = hashlib.sha256(record.data).hexdigest()
            writer.write(_example(record, next_index, digest))
            rows.append((next_index, record.label, record.group, record.source, record.subset, digest,
                         int(np.uint64(record.dhash).astype(np.int64))))
            counts[record.label] += 1
            next_index += 1
            added += 1
            if len(rows) >= records_per_shard:
                close()
        if writer is not None:
            close()
    except BaseException:
        if writer is not None:
            writer.close()
            tmp.unlink(missing_ok=True)
        for done in pending:  # not in the index: remove, the set stays as it was
            (root / done.shard[1]).unlink(missing_ok=True)
        raise
    with _connect(root / INDEX_NAME) as connection:
        if existing is None:
            meta = {"format_version": FORMAT_VERSION, "class_names": list(class_names),
                    "image_size": list(image_size), "name": name or root.stem, "info": info or {}}
            connection.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                   [(key, json.dumps(value)) for key, value in meta.items()])
        for done in pending:
            connection.execute("INSERT INTO shards VALUES (?, ?, ?, ?, ?, ?, ?)", done.shard)
            connection.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)", done.rows)
    connection.close()
    return added


def write_dataset(dataset: Any, root: str | Path, encoding: str = "png", quality: int = JPEG_QUALITY,
                  records_per_shard: int = RECORDS_PER_SHARD, append: bool = False) -> ShardSet:
    """An in-memory Dataset -> a new shard set at `root` (or new shards of it, with append)."""
    root = Path(root)
    if not append and is_shard_set(root):
        raise UserError(f"{root} is a shard set already: add to it with `edgekit ingest`, or choose a new folder")
    records = records_from_arrays(dataset.images, dataset.labels, dataset.groups, dataset.sources, dataset.subsets,
                                  encoding, quality)
    append_records(root, records, class_names=list(dataset.class_names), image_size=dataset.image_size,
                   name=dataset.name, info={k: v for k, v in dataset.info.items() if k != "load_report"},
                   records_per_shard=records_per_shard)
    return ShardSet.open(root)


# ---------------------------------------------------------------- reading


def _inside(root: Path, name: str) -> Path:
    """The shard file `name` of the index, refused unless it is a plain file name inside `root`."""
    pure = PurePosixPath(name)
    if (not name or pure.is_absolute() or len(pure.parts) != 1 or name in (".", "..") or "\\" in name
            or not name.endswith(".tfrecord")):
        raise UserError(f"{root / INDEX_NAME} names a shard {name!r} outside its folder: the index is damaged "
                        "or was edited; rebuild the shard set")
    path = root / name
    if not path.resolve().is_relative_to(root.resolve()):
        raise UserError(f"{root / INDEX_NAME}: shard {name!r} resolves outside {root}: rebuild the shard set")
    return path


@dataclass(frozen=True)
class Shard:
    """One shard file as the index describes it."""

    id: int
    path: Path
    sha256: str
    bytes: int
    records: int
    first_index: int


@dataclass
class ShardSet:
    """A shard set opened through its index: the Dataset API without the pixels in memory.

    Args:
        root: the folder.
        labels, groups, subsets: per record, in record order (from the index).
        class_names, name, info: as in Dataset.
        image_size: (height, width) of every image.
        shards: the shard files in order.
    """

    root: Path
    labels: np.ndarray
    groups: np.ndarray
    subsets: np.ndarray
    class_names: list[str]
    image_size: tuple[int, int]
    shards: list[Shard]
    name: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    _verified: set[int] = field(default_factory=set, repr=False)

    @classmethod
    def open(cls, root: str | Path) -> ShardSet:
        """Read and check the index (counts, paths, labels); shard bytes are checked when first read."""
        root = Path(root)
        index = root / INDEX_NAME
        if not index.is_file():
            raise UserError(f"{root} is not a shard set (no {INDEX_NAME}): build one with "
                            "`edgekit dataset build --format shards`")
        try:
            connection = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
            with connection:
                meta = {k: json.loads(v) for k, v in connection.execute("SELECT key, value FROM meta")}
                shard_rows = connection.execute(
                    "SELECT id, file, sha256, bytes, records, first_index, class_counts FROM shards ORDER BY id").fetchall()
                columns = connection.execute("SELECT idx, shard, label, grp, subset FROM records ORDER BY idx").fetchall()
            connection.close()
        except (sqlite3.Error, ValueError) as error:
            raise UserError(f"cannot read {index} ({error}): rebuild the shard set") from None
        return cls._checked(root, meta, shard_rows, columns)

    @classmethod
    def _checked(cls, root: Path, meta: dict[str, Any], shard_rows: list[tuple], columns: list[tuple]) -> ShardSet:
        where = root / INDEX_NAME
        version = int(meta.get("format_version", 0))
        if version > FORMAT_VERSION or version < 1:
            raise UserError(f"{where} has shard format {version}; this edgekit reads 1..{FORMAT_VERSION}")
        try:
            class_names = [str(c) for c in meta["class_names"]]
            h, w = (int(v) for v in meta["image_size"])
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{where} lacks class names or image size: rebuild the shard set") from None
        k, n = len(class_names), len(columns)
        idx = np.fromiter((c[0] for c in columns), np.int64, n)
        shard_of = np.fromiter((c[1] for c in columns), np.int64, n)
        labels = np.fromiter((c[2] for c in columns), np.int64, n)
        if n and not np.array_equal(idx, np.arange(n)):
            raise UserError(f"{where}: record numbers are not 0..{n - 1}: the index is damaged; rebuild the shard set")
        if n and (labels.min() < 0 or labels.max() >= k):
            raise UserError(f"{where}: labels outside the {k} classes: the index is damaged; rebuild the shard set")
        shards, expected_first = [], 0
        for shard_id, file, digest, size, records, first, class_counts in shard_rows:
            path = _inside(root, str(file))
            mine = shard_of == shard_id
            counts = np.bincount(labels[mine], minlength=k).tolist()
            if not is_sha256_hex(digest):
                raise UserError(f"{where}: shard {file} has no valid SHA-256: rebuild the shard set")
            if int(mine.sum()) != records or first != expected_first or json.loads(class_counts) != counts:
                raise UserError(f"{where}: shard {file} says {records} records from #{first} ({class_counts}) but the "
                                f"index lists {int(mine.sum())} ({counts}) from #{expected_first}: the index is "
                                "damaged or was edited; rebuild the shard set")
            if records and not np.all(np.flatnonzero(mine) == np.arange(first, first + records)):
                raise UserError(f"{where}: shard {file}'s records are not contiguous: rebuild the shard set")
            shards.append(Shard(int(shard_id), path, str(digest), int(size), int(records), int(first)))
            expected_first += records
        if expected_first != n:
            raise UserError(f"{where}: the shards hold {expected_first} records but the index lists {n}: rebuild it")
        return cls(root, labels, np.asarray([c[3] for c in columns], str) if n else np.zeros(0, str),
                   np.asarray([c[4] for c in columns], str) if n else np.zeros(0, str), class_names, (h, w), shards,
                   str(meta.get("name", root.stem)), dict(meta.get("info", {})))

    # --- the Dataset API ---------------------------------------------------

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shard_ids(self) -> list[int]:
        return [s.id for s in self.shards]

    def _column(self, sql: str) -> list[Any]:
        connection = sqlite3.connect(f"file:{self.root / INDEX_NAME}?mode=ro", uri=True)
        try:
            return [row[0] for row in connection.execute(sql)]
        finally:
            connection.close()

    @cached_property
    def sources(self) -> np.ndarray:
        """Where each record came from (read from the index on first use)."""
        values = self._column("SELECT source FROM records ORDER BY idx")
        return np.asarray(values, str) if values else np.zeros(0, str)

    @cached_property
    def sha256(self) -> np.ndarray:
        """SHA-256 (hex) of each record's encoded image bytes."""
        values = self._column("SELECT sha256 FROM records ORDER BY idx")
        return np.asarray(values, str) if values else np.zeros(0, str)

    @cached_property
    def dhash(self) -> np.ndarray:
        """The stored 64-bit dHash per record (train.audit.dhash of the decoded pixels)."""
        return np.asarray(self._column("SELECT dhash FROM records ORDER BY idx"), np.int64).view(np.uint64)

    @property
    def images(self) -> ShardImages:
        """Every image, read on demand (ShardImages)."""
        return ShardImages(self, np.arange(len(self), dtype=np.int64))

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(self.class_names))

    def load(self) -> Any:
        """The whole set as an in-memory train.data.Dataset (refused above MAX_IN_MEMORY_BYTES decoded)."""
        from train.data.dataset import Dataset

        return Dataset(np.asarray(self.images), self.labels, list(self.class_names), self.groups, self.sources,
                       self.subsets, self.name, dict(self.info))

    def nbytes_decoded(self) -> int:
        h, w = self.image_size
        return len(self) * h * w * 3

    def summary(self) -> str:
        from train.data.dataset import describe

        size = sum(s.bytes for s in self.shards)
        return describe(self, f"; shard set of {len(self.shards)} shards, {size / 1e6:.1f} MB on disk "
                              f"({self.nbytes_decoded() / 1e6:.1f} MB decoded)", size=self.image_size)

    # --- trust -------------------------------------------------------------

    def verify(self, shards: Iterable[Shard] | None = None) -> None:
        """Check shard files against the index's SHA-256 and size (each file once per ShardSet)."""
        for shard in self.shards if shards is None else shards:
            if shard.id in self._verified:
                continue
            if not shard.path.is_file():
                raise UserError(f"shard {shard.path} is missing: restore it or rebuild the shard set")
            if shard.path.is_symlink() and not shard.path.resolve().is_relative_to(self.root.resolve()):
                raise UserError(f"shard {shard.path} links outside {self.root}: refused")
            if shard.path.stat().st_size != shard.bytes or file_sha256(shard.path) != shard.sha256:
                raise UserError(f"shard {shard.path} does not match its SHA-256 in {INDEX_NAME} (changed or "
                                "damaged): restore it or rebuild the shard set")
            self._verified.add(shard.id)

    # --- reading pixels ------------------------------------------------------

    def shards_holding(self, indices: np.ndarray) -> list[Shard]:
        """The shards that hold at least one of `indices`."""
        firsts = np.asarray([s.first_index for s in self.shards], np.int64)
        which = np.unique(np.searchsorted(firsts, np.asarray(indices, np.int64), side="right") - 1)
        return [self.shards[i] for i in which.tolist()]

    def read(self, indices: np.ndarray | list[int]) -> np.ndarray:
        """The decoded images at `indices` (uint8 (n, H, W, 3), in the order asked), shard by shard."""
        import tensorflow as tf

        wanted = np.asarray(indices, np.int64).reshape(-1)
        h, w = self.image_size
        out = np.empty((len(wanted), h, w, 3), np.uint8)
        if not len(wanted):
            return out
        if wanted.min() < 0 or wanted.max() >= len(self):
            raise UserError(f"record index out of range 0..{len(self) - 1}")
        order = np.argsort(wanted, kind="stable")
        sorted_wanted = wanted[order]
        for shard in self.shards_holding(sorted_wanted):
            self.verify([shard])
            lo = np.searchsorted(sorted_wanted, shard.first_index)
            hi = np.searchsorted(sorted_wanted, shard.first_index + shard.records)
            mine = sorted_wanted[lo:hi]
            skip, take = int(mine[0] - shard.first_index), int(mine[-1] - mine[0] + 1)
            records = tf.data.TFRecordDataset(str(shard.path), buffer_size=256 << 10).skip(skip).take(take)
            position = int(mine[0])
            block: dict[int, np.ndarray] = {}  # only the records asked for
            for serialized in records.batch(256):
                data, numbers = (x.numpy() for x in _parse_batch()(serialized))
                expected = np.arange(position, position + len(numbers))
                if not np.array_equal(numbers, expected):
                    bad = int(numbers[np.argmax(numbers != expected)])
                    raise UserError(f"shard {shard.path} holds record #{bad} out of place: rebuild the shard set")
                position += len(numbers)
                keep = np.flatnonzero(np.isin(numbers, mine))  # decode only the records asked for
                if len(keep):
                    decoded = _decode_batch()(tf.constant(data[keep])).numpy()
                    block.update(zip(numbers[keep].tolist(), decoded, strict=True))
            for slot, number in zip(order[lo:hi].tolist(), mine.tolist(), strict=True):
                out[slot] = block[number]
        return out


class ShardImages:
    """A shard set's images as a read-on-demand column: `x[int_array]` is another (lazy) view;
    `x[a:b]`, `x[i]` and `np.asarray(x)` decode those images. `shape`, `dtype`, `ndim` and
    `len` are those of the array it stands for, so code written for `Dataset.images`
    (batch by slices) reads shard sets a batch at a time."""

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, shards: ShardSet, indices: np.ndarray) -> None:
        self._shards, self._indices = shards, np.asarray(indices, np.int64)

    @property
    def shard_set(self) -> ShardSet:
        return self._shards

    @property
    def indices(self) -> np.ndarray:
        """The record numbers this view stands for."""
        return self._indices

    @property
    def shape(self) -> tuple[int, int, int, int]:
        h, w = self._shards.image_size
        return (len(self._indices), h, w, 3)

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            return self._shards.read(self._indices[key])
        if isinstance(key, (int, np.integer)):
            return self._shards.read(self._indices[[int(key)]])[0]
        chosen = np.asarray(key)
        if chosen.dtype == bool:
            chosen = np.flatnonzero(chosen)
        return ShardImages(self._shards, self._indices[chosen.astype(np.int64)])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        size = int(np.prod(self.shape))
        if size > MAX_IN_MEMORY_BYTES:
            raise UserError(f"this step needs {size / 1e9:.1f} GB of decoded images in memory (over "
                            f"{MAX_IN_MEMORY_BYTES / 1e9:.0f} GB): use a command that streams shard sets "
                            "(train, convert, split, audit; docs/datasets.md)")
        array = self._shards.read(self._indices)
        return array if dtype is None else array.astype(dtype)

    def astype(self, dtype: Any) -> np.ndarray:
        return np.asarray(self, dtype)


_TF_FUNCTIONS: dict[str, Any] = {}


def _parse_batch() -> Any:
    """A tf.function (traced once per process): a batch of serialized records -> (image bytes, record
    numbers). Reading many small ranges must not trace a new function each time."""
    if "parse" not in _TF_FUNCTIONS:
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def parse(serialized: Any) -> tuple[Any, Any]:
            features = tf.io.parse_example(serialized, {"image": tf.io.FixedLenFeature([], tf.string),
                                                        "index": tf.io.FixedLenFeature([], tf.int64)})
            return features["image"], features["index"]

        _TF_FUNCTIONS["parse"] = parse
    return _TF_FUNCTIONS["parse"]


def _decode_batch() -> Any:
    """A tf.function (traced once per process): encoded images -> uint8 (n, H, W, 3)."""
    if "decode" not in _TF_FUNCTIONS:
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def decode_all(data: Any) -> Any:
            return tf.map_fn(decode, data, fn_output_signature=tf.TensorSpec(None, tf.uint8))

        _TF_FUNCTIONS["decode"] = decode_all
    return _TF_FUNCTIONS["decode"]


def parse_record(serialized: Any) -> tuple[Any, Any, Any]:
    """A TFRecord Example -> (uint8 image (H, W, 3), label int64, record number int64), in tf ops.

    JPEG is decoded with the accurate integer DCT (libjpeg's ISLOW), as OpenCV decodes it.
    """
    import tensorflow as tf

    features = tf.io.parse_single_example(serialized, {
        "image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64),
        "index": tf.io.FixedLenFeature([], tf.int64)})
    return decode(features["image"]), features["label"], features["index"]


def decode(data: Any) -> Any:
    """Encoded JPEG/PNG bytes -> uint8 (H, W, 3) tensor."""
    import tensorflow as tf

    return tf.cond(tf.io.is_jpeg(data),
                   lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
                   lambda: tf.io.decode_png(data, channels=3, dtype=tf.uint8))
