"""SHA-256 digests, the one implementation both sides use (bundles, datasets, stores, registry)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


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


def is_sha256_hex(value: Any) -> bool:
    """Is `value` a SHA-256 as these functions write it (64 lower-case hex digits, nothing else)?
    For digests read from a manifest, a store or a registry, all of which another machine may write."""
    return isinstance(value, str) and _SHA256_HEX.fullmatch(value) is not None
