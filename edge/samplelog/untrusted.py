"""Checking what a store written by another machine says before anything acts on it.

A car's index, its session rows and the metadata embedded in its images are untrusted
input on the workstation: a damaged or tampered store must not make `pull` write outside
DEST, copy host files in, or carry odd values (types, ranges, names) into the labelling
and training code. Every field is checked here against what the logger writes; a row
that fails is refused with one line saying why (RowRefused), never half-used.

Example:
    >>> clean = sample_row(dict(raw_sqlite_row))      # RowRefused if anything is off
    >>> data = read_inside(store_root, clean["file"])  # bytes of a regular file inside the root
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

from edge.digest import is_sha256_hex

SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.(?:jpg|png)")
REASONS = ("random", "low_confidence", "disagreement", "manual")
MAX_IMAGE_BYTES = 64 * 1024 * 1024   # a 4K PNG is ~25 MB; more is not a sample
MAX_TEXT = 256
MAX_CLASSES = 10_000
MAX_DIMENSION = 100_000


class RowRefused(ValueError):
    """One row (or image metadata) that is not what the logger writes; the message says why."""


def is_session_id(value: object) -> bool:
    return isinstance(value, str) and SESSION_ID.fullmatch(value) is not None


def is_file_name(value: object) -> bool:
    return isinstance(value, str) and FILE_NAME.fullmatch(value) is not None


def sample_file(value: object) -> str:
    """`images/<session>/<name>` with a plain session folder and file name, else RowRefused."""
    parts = value.split("/") if isinstance(value, str) else []
    if len(parts) != 3 or parts[0] != "images" or not is_session_id(parts[1]) or not is_file_name(parts[2]):
        raise RowRefused(f"file {_show(value)} is not images/<session>/<name>.jpg|png")
    return value


def sample_row(raw: dict[str, Any]) -> dict[str, Any]:
    """A samples row (raw SQLite values) checked field by field, JSON columns decoded."""
    row = sample_meta(raw)
    row["id"] = _integer(raw, "id", 0, 2**63 - 1)
    row["file"] = sample_file(raw.get("file"))
    sha = raw.get("sha256")
    if not is_sha256_hex(sha):
        raise RowRefused(f"sha256 {_show(sha)} is not 64 lowercase hex digits")
    row["sha256"] = sha
    row["bytes"] = _integer(raw, "bytes", 0, MAX_IMAGE_BYTES)
    return row


def sample_meta(raw: dict[str, Any]) -> dict[str, Any]:
    """The metadata columns of a sample (a row, or the JSON embedded in an image), checked."""
    if not isinstance(raw, dict):
        raise RowRefused("the metadata is not a JSON object")
    session = raw.get("session_id")
    if not is_session_id(session):
        raise RowRefused(f"session_id {_show(session)} is not a plain name (letters, digits, '.', '_', '-')")
    reasons = raw.get("reasons")
    names = reasons.split(",") if isinstance(reasons, str) else []
    if not names or any(name not in REASONS for name in names):
        raise RowRefused(f"reasons {_show(reasons)} are not among {', '.join(REASONS)}")
    labels = _json(raw, "labels")
    if labels is not None and not (isinstance(labels, list) and len(labels) <= MAX_CLASSES
                                   and all(_is_label(x) for x in labels)):
        raise RowRefused("labels is not a list of class names")
    probabilities = _json(raw, "probabilities")
    if probabilities is not None and not (isinstance(probabilities, list) and len(probabilities) <= MAX_CLASSES
                                          and all(_is_fraction(p) for p in probabilities)):
        raise RowRefused("probabilities is not a list of numbers in [0, 1]")
    roi = _json(raw, "roi")
    if roi is not None and not (isinstance(roi, list) and len(roi) == 4 and all(_is_fraction(v) for v in roi)):
        raise RowRefused("roi is not 4 fractions of the frame")
    return {
        "session_id": session,
        "frame_index": _integer(raw, "frame_index", 0, 2**63 - 1),
        "capture_time": _number(raw, "capture_time", required=True),
        "logged_time": _number(raw, "logged_time"),
        "reasons": reasons,
        "priority": _integer(raw, "priority", 0, 2),
        "model_version": _text(raw, "model_version"),
        "label": _label(raw, "label"),
        "confidence": _fraction(raw, "confidence"),
        "probabilities": probabilities,
        "labels": labels,
        "shadow_version": _text(raw, "shadow_version"),
        "shadow_label": _label(raw, "shadow_label"),
        "shadow_confidence": _fraction(raw, "shadow_confidence"),
        "roi": roi,
        "roi_only": _integer(raw, "roi_only", 0, 1, required=False),
        "frame_width": _integer(raw, "frame_width", 1, MAX_DIMENSION, required=False),
        "frame_height": _integer(raw, "frame_height", 1, MAX_DIMENSION, required=False),
        "truth": _label(raw, "truth"),
        "origin": _text(raw, "origin"),
    }


def session_row(raw: dict[str, Any]) -> dict[str, Any]:
    """A sessions row (raw SQLite values) checked, JSON columns decoded."""
    session = raw.get("session_id")
    if not is_session_id(session):
        raise RowRefused(f"session_id {_show(session)} is not a plain name (letters, digits, '.', '_', '-')")
    labels = _json(raw, "labels")
    if labels is not None and not (isinstance(labels, list) and all(_is_label(x) for x in labels)):
        raise RowRefused(f"session {session}: labels is not a list of class names")
    distribution = _json(raw, "training_distribution")
    if distribution is not None and not (isinstance(distribution, dict) and all(
            _is_label(k) and _is_fraction(v) for k, v in distribution.items())):
        raise RowRefused(f"session {session}: training_distribution is not class -> fraction")
    predictions = _json(raw, "predictions")
    if predictions is not None and not (isinstance(predictions, dict) and all(
            _is_label(k) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
            for k, v in predictions.items())):
        raise RowRefused(f"session {session}: predictions is not class -> count")
    return {"session_id": session, "started": _number(raw, "started"), "model_version": _text(raw, "model_version"),
            "labels": labels, "training_distribution": distribution, "predictions": predictions,
            "frames": _integer(raw, "frames", 0, 2**63 - 1, required=False)}


def read_inside(root: Path, relative: str) -> bytes:
    """The bytes of `root/relative`, a regular file reached without leaving `root` or following links.

    Raises RowRefused when the path leaves the root (a `..`, an absolute path, a symlinked
    folder or file) or is not a regular file of sample size; FileNotFoundError when it is gone.
    """
    real_root = os.path.realpath(root)
    path = os.path.join(real_root, sample_file(relative))
    if os.path.realpath(path) != path:  # a link somewhere on the way
        if not os.path.lexists(path):
            raise FileNotFoundError(path)
        raise RowRefused(f"file {relative} is reached through a symbolic link")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise RowRefused(f"file {relative} cannot be opened safely ({error.strerror})") from error
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise RowRefused(f"file {relative} is not a regular file")
        if info.st_size > MAX_IMAGE_BYTES:
            raise RowRefused(f"file {relative} is {info.st_size} bytes, more than a sample can be")
        return handle.read(MAX_IMAGE_BYTES + 1)


def inside(root: Path, path: Path) -> bool:
    """True when `path`, links resolved, is `root` or lies inside it (links resolved too)."""
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))


# --- field checks ---------------------------------------------------------------------------

def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_fraction(value: object) -> bool:
    return _is_number(value) and 0.0 <= value <= 1.0


def _is_label(value: object) -> bool:
    """A class name that can become a folder name: short, printable, no path separators."""
    return (isinstance(value, str) and 0 < len(value) <= 64 and value not in (".", "..")
            and value.isprintable() and not any(c in value for c in "/\\"))


def _integer(raw: dict, name: str, low: int, high: int, required: bool = True) -> int | None:
    value = raw.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise RowRefused(f"{name} {_show(value)} is not a whole number in [{low}, {high}]")
    return value


def _number(raw: dict, name: str, required: bool = False) -> float | None:
    value = raw.get(name)
    if value is None and not required:
        return None
    if not _is_number(value):
        raise RowRefused(f"{name} {_show(value)} is not a finite number")
    return float(value)


def _fraction(raw: dict, name: str) -> float | None:
    value = raw.get(name)
    if value is not None and not _is_fraction(value):
        raise RowRefused(f"{name} {_show(value)} is not a number in [0, 1]")
    return None if value is None else float(value)


def _text(raw: dict, name: str) -> str | None:
    value = raw.get(name)
    if value is not None and not (isinstance(value, str) and len(value) <= MAX_TEXT and value.isprintable()):
        raise RowRefused(f"{name} {_show(value)} is not a short line of text")
    return value


def _label(raw: dict, name: str) -> str | None:
    value = raw.get(name)
    if value is not None and not _is_label(value):
        raise RowRefused(f"{name} {_show(value)} is not a class name (printable, no '/', at most 64 characters)")
    return value


def _json(raw: dict, name: str) -> Any:
    """A JSON column: text in a row (decoded here), already a value in embedded metadata."""
    value = raw.get(name)
    if isinstance(value, str):
        if len(value) > 1_000_000:
            raise RowRefused(f"{name} is too long")
        try:
            return json.loads(value)
        except (json.JSONDecodeError, RecursionError) as error:
            raise RowRefused(f"{name} is not valid JSON") from error
    if value is None or isinstance(value, list | dict):
        return value
    raise RowRefused(f"{name} {_show(value)} is not JSON")
