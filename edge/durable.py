"""Writes that survive a power cut: whole or absent, never half (the car's store, the registry, deploys).

A file is written to a temporary name in its own folder, fsynced, renamed over the target and the
folder fsynced, so after a crash a reader sees the old file or the new one. Leftover temporaries end
in `.tmp`; their owners delete them at start (edge/samplelog/store.py, train/registry.py).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a rename or new entry in `path` durable; a file system that cannot fsync a folder is skipped."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write `data` (text as UTF-8) to `path` so that a crash leaves the old file or the whole new one."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def copy_tree_synced(source: Path, destination: Path,
                     ignore: Callable[[str, list[str]], set[str]] | None = None) -> None:
    """Copy a folder (times kept) and fsync every file; the caller renames it into place and fsyncs."""
    shutil.copytree(source, destination, copy_function=shutil.copy2, ignore=ignore)
    for file in destination.rglob("*"):
        if file.is_file() and not file.is_symlink():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
