"""Image folders and zip archives of them: one subfolder per class, any OpenCV format.

Layout: ROOT/[wrapper/][train|val|test/]CLASS/[any/sub/dirs/]FILE. A single
wrapper folder (e.g. `cifar10/`) is skipped; a level of subset folders is kept
as the dataset's `subsets`. Zip archives are read member by member, never
unpacked to disk. Decoding runs in a thread pool (OpenCV releases the GIL).

Example:
    >>> ds = load_images("photos/", image_size=(32, 32), group="level:0")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
import threading
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from edge.errors import UserError
from edge.preprocess import PreprocessSpec, preprocess, to_rgb_uint8
from train.data.dataset import Dataset
from train.data.report import LoadReport

IMAGE_EXTENSIONS = {
    ".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
    ".pbm", ".pnm", ".pxm", ".sr", ".ras", ".jp2", ".exr", ".hdr", ".pic", ".avif", "",
}
SUBSET_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val",
                "validation": "val", "test": "test", "testing": "test"}
MAX_FILE_BYTES = 256 << 20
PROGRESS_MIN_FILES = 1000
_CHUNK = 256


@dataclass(frozen=True)
class Entry:
    """One image file to load: where it is, its class, given subset and group."""

    key: str  # path relative to the root, or the zip member name
    source: str
    class_name: str
    subset: str
    group: str


def parse_group_rule(rule: str | None) -> Callable[[str, tuple[str, ...]], str | None] | None:
    """`level:N` (N-th folder below the class folder) or `regex:PATTERN` (on the file name).

    The function returns None when the rule does not apply to a file.
    """
    if not rule:
        return None
    kind, _, value = rule.partition(":")
    if kind == "level":
        try:
            level = int(value)
        except ValueError:
            raise UserError(f"group rule {rule!r}: give the folder level as a number, e.g. level:0") from None
        return lambda name, dirs: dirs[level] if -len(dirs) <= level < len(dirs) else None
    if kind == "regex":
        try:
            pattern = re.compile(value)
        except re.error as error:
            raise UserError(f"group rule {rule!r} is not a valid regular expression: {error}") from None

        def by_regex(name: str, dirs: tuple[str, ...]) -> str | None:
            match = pattern.search(name)
            if not match:
                return None
            return match.group(1) if pattern.groups else match.group(0)

        return by_regex
    raise UserError(f"unknown group rule {rule!r}: use level:N or regex:PATTERN")


def printable(name: str) -> str:
    """A file name as text that can be written anywhere: bytes that are not UTF-8 (which Python
    keeps as lone surrogates) become `\\xNN`, so hashing, JSON and bad-lists never fail on them."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def unsafe_member(name: str) -> str | None:
    """Why an archive member's path may not be used (absolute, `..`, a drive), or None."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "unsafe path in archive (absolute): skipped"
    if ".." in re.split(r"[/\\]", name):
        return "unsafe path in archive (contains '..'): skipped"
    return None


def plan_entries(keys: Iterable[str], report: LoadReport, group: str | None = None, prefix: str = "") -> list[Entry]:
    """Turn relative file paths into entries (class, subset, group); skips what does not fit.

    `keys` are read back as given; every name stored in the dataset or the report is `printable`.
    Absolute paths and `..` (possible in a zip archive) are skipped and reported.
    """
    group_of = parse_group_rule(group)
    safe = []
    for key in keys:
        problem = unsafe_member(key)
        if problem:
            report.seen += 1
            report.skip(printable(prefix + key), problem)
        else:
            safe.append(key)
    raw = {PurePosixPath(k): k for k in safe}
    paths = [PurePosixPath(k) for k in safe]
    paths = [p for p in paths if not any(part.startswith(".") or part == "__MACOSX" for part in p.parts)]
    strip = 0
    # skip wrapper folders (e.g. `cifar10/`): one shared first folder that is not a subset name
    while paths and all(len(p.parts) >= strip + 2 for p in paths) and any(len(p.parts) >= strip + 3 for p in paths):
        firsts = {p.parts[strip] for p in paths}
        if len(firsts) != 1 or next(iter(firsts)).lower() in SUBSET_NAMES:
            break
        strip += 1
    parts = [p.parts[strip:] for p in paths]
    nested = [q for q in parts if len(q) >= 2]
    has_subsets = bool(nested) and all(len(q) >= 3 and q[0].lower() in SUBSET_NAMES for q in nested)
    entries, no_group = [], 0
    for path, rel in zip(paths, parts, strict=True):
        key = raw[path]
        source = printable(prefix + str(path))
        subset = SUBSET_NAMES[rel[0].lower()] if has_subsets else ""
        rest = rel[1:] if has_subsets else rel
        report.seen += 1
        if len(rest) < 2:
            report.skip(source, "not inside a class folder")
            continue
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            report.skip(source, f"not an image file ({printable(path.suffix)})")
            continue
        group_id = group_of(printable(path.name), tuple(map(printable, rest[1:-1]))) if group_of else None
        if group_of and group_id is None:
            no_group += 1
        entries.append(Entry(key, source, printable(rest[0]), subset, group_id or source))
    if no_group:
        report.notes.append(f"group rule {group!r} did not match {no_group} files; each of them is its own group")
    return entries


def jpeg_damage(data: bytes) -> str | None:
    """What is wrong with a JPEG's data, or None.

    libjpeg fills a stream that ends early with grey and only warns on stderr ("premature end
    of data segment"), so OpenCV decodes a truncated file that still ends in an end marker
    without a word. libjpeg-turbo through simplejpeg with `strict=True` turns those warnings
    into errors; decoding at 1/8 scale still reads every byte of entropy-coded data.
    """
    if b"\xff\xd9" not in data[-4096:]:
        return "truncated JPEG (no end marker)"
    import simplejpeg

    try:
        simplejpeg.decode_jpeg(data, strict=True, min_height=1, min_width=1, min_factor=8)
    except ValueError as error:
        try:
            simplejpeg.decode_jpeg(data, strict=False, min_height=1, min_width=1, min_factor=8)
        except ValueError:
            return None  # a layout simplejpeg does not decode (e.g. CMYK): OpenCV decides
        return f"damaged JPEG data ({error})"
    return None


def decode_image(data: bytes, min_size: int) -> np.ndarray | str:
    """Bytes -> RGB uint8 image, or the reason it cannot be used."""
    return decode_image_keepable(data, min_size)[0]


def decode_image_keepable(data: bytes, min_size: int) -> tuple[np.ndarray | str, bool]:
    """(RGB uint8 image or the reason it cannot be used, whether a shard set may store `data` as it is).

    The bytes are kept only when TensorFlow's decoder gives the same RGB pixels: 8-bit
    three-channel JPEG (decoded with libjpeg's accurate DCT on both sides) or 8-bit RGB PNG.
    """
    if not data:
        return "empty file", False
    is_jpeg = data[:2] == b"\xff\xd8"
    if is_jpeg:
        damage = jpeg_damage(data)
        if damage:
            return damage, False
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        return "not a readable image (corrupt, truncated or another format)", False
    if min(image.shape[:2]) < min_size:
        return f"too small ({image.shape[1]}x{image.shape[0]}, need at least {min_size} px a side)", False
    if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        return f"unsupported channel count {image.shape[2]}", False
    rgb8 = image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    png_rgb8 = data[:8] == b"\x89PNG\r\n\x1a\n" and data[24:26] == b"\x08\x02"  # IHDR: depth 8, colour type 2
    return to_rgb_uint8(image), rgb8 and (is_jpeg or png_rgb8)


@contextmanager
def _quiet_opencv():
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


def _decode_all(entries: list[Entry], read: Callable[[str], bytes], spec: PreprocessSpec | None,
                min_size: int, progress: bool, what: str) -> list[np.ndarray | str]:
    """Read + decode + resize every entry in a thread pool; keeps the order."""

    def work(chunk: list[Entry]) -> list[np.ndarray | str]:
        out: list[np.ndarray | str] = []
        for entry in chunk:
            try:
                data = read(entry.key)
            except OSError as error:
                out.append(f"cannot read: {error.strerror or error}")
                continue
            result = decode_image(data, min_size)
            if spec is not None and not isinstance(result, str):
                result = preprocess(result, spec)
            out.append(result)
        return out

    from tqdm import tqdm

    chunks = [entries[i : i + _CHUNK] for i in range(0, len(entries), _CHUNK)]
    results: list[np.ndarray | str] = []
    bar = tqdm(total=len(entries), desc=f"loading {what}", unit="img", leave=False,
               disable=True if not progress or len(entries) < PROGRESS_MIN_FILES else None)  # None: off a terminal
    with _quiet_opencv(), ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for chunk_result in pool.map(work, chunks):
            results += chunk_result
            bar.update(len(chunk_result))
    bar.close()
    return results


def _assemble(entries: list[Entry], results: list[np.ndarray | str], report: LoadReport,
              resize: str, name: str, where: str) -> Dataset:
    keep = []
    for entry, result in zip(entries, results, strict=True):
        if isinstance(result, str):
            report.skip(entry.source, result)
        else:
            keep.append((entry, result))
    report.loaded = len(keep)
    if not keep:
        raise UserError(f"no usable images in {where} ({report.seen} files looked at"
                        f"{', ' + str(len(report.skipped)) + ' skipped' if report.skipped else ''}): "
                        "put images in one subfolder per class")
    class_names = sorted({entry.class_name for entry, _ in keep})
    if len(class_names) < 2:
        raise UserError(f"{where} has a single class ({class_names[0]!r}): a classifier needs at least "
                        "two class subfolders")
    sizes = Counter(image.shape[:2] for _, image in keep)
    common = sizes.most_common(1)[0][0]
    if len(sizes) > 1:
        spec = PreprocessSpec(input_size=common, resize=resize)
        report.notes.append(f"images have {len(sizes)} sizes; {sum(sizes.values()) - sizes[common]} resized to the "
                            f"most common {common[0]}x{common[1]} ({resize}); pass --size HxW to choose")
        keep = [(e, image if image.shape[:2] == common else preprocess(image, spec)) for e, image in keep]
    index = {c: i for i, c in enumerate(class_names)}
    return Dataset(
        images=np.stack([image for _, image in keep]),
        labels=np.array([index[e.class_name] for e, _ in keep], np.int64),
        class_names=class_names,
        groups=np.array([e.group for e, _ in keep]),
        sources=np.array([e.source for e, _ in keep]),
        subsets=np.array([e.subset for e, _ in keep]),
        name=name,
    )


def _spec(image_size: tuple[int, int] | None, resize: str) -> PreprocessSpec | None:
    return PreprocessSpec(input_size=image_size, resize=resize) if image_size else None


def folder_entries(root: Path, report: LoadReport, group: str | None) -> tuple[list[Entry], Callable[[str], bytes]]:
    """The image entries of a folder (sorted) and a function reading one entry's bytes."""
    keys = []

    def unreadable(error: OSError) -> None:
        report.seen += 1
        report.skip(printable(str(error.filename)), f"cannot read folder: {error.strerror}")

    for directory, dirnames, filenames in os.walk(root, onerror=unreadable):
        dirnames.sort()
        rel = Path(directory).relative_to(root)
        for filename in sorted(filenames):
            path = Path(directory) / filename
            if path.is_file():
                keys.append((rel / filename).as_posix())
    entries = plan_entries(keys, report, group, prefix=f"{root.as_posix().rstrip('/')}/")

    def read(key: str) -> bytes:
        path = root / key
        if path.stat().st_size > MAX_FILE_BYTES:
            raise OSError(0, f"larger than {MAX_FILE_BYTES >> 20} MB")
        return path.read_bytes()

    return entries, read


def load_image_folder(root: str | Path, image_size: tuple[int, int] | None = None, group: str | None = None,
                      resize: str = "stretch", min_size: int = 8, progress: bool = True,
                      report: LoadReport | None = None) -> Dataset:
    """Load ROOT/[subset/]CLASS/.../image files into a Dataset.

    Args:
        root: the folder.
        image_size: (h, w) to resize to through edge.preprocess; None keeps the
            (most common) size.
        group: `level:N` or `regex:PATTERN`, see parse_group_rule; default: each file its own group.
        resize: "stretch", "center-crop" or "letterbox".
        min_size: images with a side shorter than this are skipped.
        report: collects skipped files (a new one is attached to `dataset.info` when None).
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"image folder {root} does not exist or is not a folder")
    report = report if report is not None else LoadReport()
    entries, read = folder_entries(root, report, group)
    results = _decode_all(entries, read, _spec(image_size, resize), min_size, progress, root.name)
    dataset = _assemble(entries, results, report, resize, root.name, str(root))
    dataset.info["load_report"] = report.to_dict()
    return dataset


def load_zip(path: str | Path, image_size: tuple[int, int] | None = None, group: str | None = None,
             resize: str = "stretch", min_size: int = 8, progress: bool = True,
             report: LoadReport | None = None) -> Dataset:
    """Load an archive holding an image-folder layout, without unpacking it.

    Same arguments as load_image_folder. Sources are "ARCHIVE.zip:member".

    Example:
        >>> ds = load_zip("../shared/datasets/cifar10-jpg.zip")  # doctest: +SKIP
        >>> sorted(set(ds.subsets))  # doctest: +SKIP
        ['test', 'train']
    """
    path = Path(path)
    report = report if report is not None else LoadReport()
    entries, read, close = zip_entries(path, report, group)
    try:
        results = _decode_all(entries, read, _spec(image_size, resize), min_size, progress, path.name)
    finally:
        close()
    dataset = _assemble(entries, results, report, resize, path.stem, str(path))
    dataset.info["load_report"] = report.to_dict()
    return dataset


def zip_entries(path: Path, report: LoadReport,
                group: str | None) -> tuple[list[Entry], Callable[[str], bytes], Callable[[], None]]:
    """The image entries of a zip archive, a thread-safe reader of one entry, and a close function."""
    if not path.is_file():
        raise UserError(f"zip archive {path} does not exist")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise UserError(f"{path} is not a readable zip archive ({error}): check the file or download it again") from None
    with archive:
        infos = {info.filename: info for info in archive.infolist() if not info.is_dir()}
    entries = plan_entries(list(infos), report, group, prefix=f"{path.name}:")
    local, handles = threading.local(), []

    def read(key: str) -> bytes:
        if not hasattr(local, "archive"):  # one handle per thread: reads never share a file position
            local.archive = zipfile.ZipFile(path)
            handles.append(local.archive)
        info = infos[key]
        if info.file_size > MAX_FILE_BYTES:
            raise OSError(0, f"larger than {MAX_FILE_BYTES >> 20} MB")
        try:
            return local.archive.read(info)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, EOFError) as error:
            raise OSError(0, f"bad zip member ({error})") from None

    def close() -> None:
        for handle in handles:
            handle.close()

    return entries, read, close
