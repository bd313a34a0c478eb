"""SHA-256 digests, the one implementation both sides use (bundles, datasets, stores, registry)."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, hex; read in 1 MiB chunks so a large dataset does not fill memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def bytes_sha256(data: bytes) -> str:
    """SHA-256 of bytes already in memory, hex."""
    return hashlib.sha256(data).hexdigest()
