"""Making car stores for fault replays: a good one, then tampered rows in it."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edge.samplelog.imagefile import encode_image
from edge.samplelog.store import SampleStore

LABELS = ["green", "none", "red", "yellow"]


def sample_meta(index: int, session: str = "s1") -> dict:
    return {"session_id": session, "frame_index": index, "capture_time": 1000.0 + index,
            "reasons": "low_confidence", "priority": 1, "model_version": "lights:v1", "label": "red",
            "confidence": 0.5, "probabilities": [0.1, 0.2, 0.5, 0.2], "labels": LABELS, "roi": [0, 0, 1, 1],
            "roi_only": 0, "frame_width": 16, "frame_height": 16}


def make_store(root: Path, count: int = 4, session: str = "s1") -> Path:
    """A store like a car writes it: `count` PNG samples and one session row."""
    with SampleStore(root, create=True) as store:
        for index in range(count):
            meta = sample_meta(index, session)
            data = encode_image(np.full((16, 16, 3), 10 * index, np.uint8), meta, "png")
            store.add(data, meta, f"{index:09d}.png")
        store.save_session(session, started=1000.0, model_version="lights:v1", labels=LABELS,
                           training_distribution={k: 0.25 for k in LABELS}, predictions={"red": count},
                           frames=count)
    return root


def tamper(root: Path, sql: str, params: tuple = ()) -> None:
    """Change the store's index the way an attacker with the card would (plain SQLite)."""
    with sqlite3.connect(root / "samples.db") as db:
        db.execute(sql, params)


def insert_row(root: Path, **fields) -> None:
    """Add one row: a copy of row 1 with `fields` changed."""
    with sqlite3.connect(root / "samples.db") as db:
        db.row_factory = sqlite3.Row
        row = dict(db.execute("SELECT * FROM samples WHERE id = 1").fetchone())
        row.pop("id")
        row.update(fields)
        db.execute(f"INSERT INTO samples ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                   tuple(row.values()))


def tree(root: Path, skip: tuple[Path, ...] = ()) -> dict[str, tuple[int, float]]:
    """Every file under `root` (not following links) with size and mtime, minus `skip` folders."""
    listing = {}
    for folder, dirs, names in os.walk(root):
        if any(Path(folder).is_relative_to(s) for s in skip):
            continue
        for name in dirs + names:
            path = Path(folder) / name
            if path in skip:
                continue
            info = path.lstat()
            listing[str(path)] = (info.st_size, info.st_mtime)
    return listing


@contextlib.contextmanager
def read_only_view(folder: Path, mount: Path) -> Iterator[Path]:
    """`folder` seen read-only at `mount` (a bind mount; root only: chmod does not stop root).

    Skips when the mount cannot be made, except under CI=true, where that is a failure.
    """
    mount.mkdir(parents=True, exist_ok=True)
    made = os.geteuid() == 0 and subprocess.run(
        ["mount", "--bind", str(folder), str(mount)], capture_output=True).returncode == 0
    if not made:
        if os.environ.get("CI") == "true":
            pytest.fail("cannot make a read-only bind mount here (needs root): this test must run in CI")
        pytest.skip("a read-only bind mount needs root (chmod does not stop root)")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mount)], check=True, capture_output=True)
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@contextlib.contextmanager
def small_tmpfs(mount: Path, size: str = "1m") -> Iterator[Path]:
    """A tmpfs of `size` at `mount` (a small disk to fill). Skips like read_only_view."""
    mount.mkdir(parents=True, exist_ok=True)
    made = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True).returncode == 0
    if not made:
        if os.environ.get("CI") == "true":
            pytest.fail("cannot mount a tmpfs here (needs root): this test must run in CI")
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> None:
    """Fill the filesystem of `folder` until it refuses a byte more."""
    with open(folder / "filler", "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    with contextlib.suppress(OSError), open(folder / "filler", "ab") as handle:
        for _ in range(65536):
            handle.write(b"\0")
            handle.flush()
