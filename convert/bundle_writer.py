"""Writing a bundle (format: edge/bundle.py, docs/convert.md) without ever leaving half of one.

Files go to a hidden staging folder next to the destination; only a complete,
checksummed (and, with a key, signed) bundle is renamed into place. The archive is
written the same way.

Example:
    >>> with staging(Path("bundles/lights-int8")) as folder:
    ...     write_files(folder, flatbuffer, manifest, golden_inputs, golden_outputs, load_signing_key())
    ...     publish(folder, Path("bundles/lights-int8"), archive=True)
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from edge.bundle import (
    DIGEST_FILE,
    GOLDEN_FILE,
    MANIFEST,
    MODEL_FILE,
    digest_line,
    file_sha256,
    manifest_digest,
)
from edge.errors import UserError
from edge.signing import SIGNATURE_FILE, sign_bundle


@contextmanager
def staging(destination: Path) -> Iterator[Path]:
    """A fresh hidden folder beside `destination`; removed unless published."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".partial", dir=destination.parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def seal(folder: Path, signing_key: Any = None) -> str:
    """Write manifest.sha256 (the bundle digest) and, with a key, manifest.sig; returns the digest.

    A signature left from an earlier manifest is removed: it no longer matches.
    """
    digest = manifest_digest(folder)
    (folder / DIGEST_FILE).write_text(digest_line(digest), encoding="utf-8")
    (folder / SIGNATURE_FILE).unlink(missing_ok=True)
    if signing_key is not None:
        sign_bundle(folder, signing_key)
    return digest


def write_files(folder: Path, flatbuffer: bytes, manifest: dict[str, Any],
                golden_inputs: np.ndarray, golden_outputs: np.ndarray, signing_key: Any = None) -> dict[str, Any]:
    """model.tflite, golden.npz, manifest.json with the SHA-256 of both, then seal(). Returns the manifest."""
    (folder / MODEL_FILE).write_bytes(flatbuffer)
    np.savez(folder / GOLDEN_FILE, inputs=golden_inputs, outputs=golden_outputs)
    manifest = {**manifest, "files": {name: file_sha256(folder / name) for name in (MODEL_FILE, GOLDEN_FILE)}}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    seal(folder, signing_key)
    return manifest


def archive_path(destination: Path) -> Path:
    return destination.with_name(destination.name + ".tar.gz")


def _check_free(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise UserError(f"{path} already exists: choose another --out or pass --overwrite")


def publish(folder: Path, destination: Path, archive: bool = False, overwrite: bool = False) -> list[Path]:
    """Move the staged bundle to `destination` (and write DEST.tar.gz); returns what was written."""
    targets = [destination] + ([archive_path(destination)] if archive else [])
    for target in targets:
        _check_free(target, overwrite)
    written = []
    if archive:
        partial = archive_path(destination).with_name(f".{archive_path(destination).name}.partial")
        try:
            with tarfile.open(partial, "w:gz") as tar:
                tar.add(folder, arcname=destination.name, recursive=True,
                        filter=lambda info: None if info.issym() or info.islnk() else info)
            os.replace(partial, archive_path(destination))
        finally:
            partial.unlink(missing_ok=True)
        written.append(archive_path(destination))
    old = destination.with_name(f".{destination.name}.old")
    if destination.exists():
        shutil.rmtree(old, ignore_errors=True)
        destination.rename(old)
    folder.chmod(0o755)
    folder.rename(destination)
    shutil.rmtree(old, ignore_errors=True)
    written.insert(0, destination)
    return written
