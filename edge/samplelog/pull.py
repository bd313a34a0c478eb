"""Copy new samples from a car's store into a host-side store: deduplicated, idempotent, resumable.

SRC is a store folder (a mounted SD card), an exported `.tar`, or
`user@host:path` (copied with rsync over ssh into DEST/.incoming first).
Each sample is copied like the logger writes it (temp file, fsync, rename, then
the row), and is skipped when DEST already holds its SHA-256. An interrupted
pull leaves at worst a finished image without row in DEST, which the next
pull's reconciliation indexes again (from the metadata inside the image) and
then recognises by its hash: re-running gives the same store as one
uninterrupted pull, without duplicates or holes.

Example:
    >>> pull("/media/pi-card/samples", "data/field")
    {'new': 412, 'duplicates': 0, ...}
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from edge.errors import UserError
from edge.samplelog.store import DB_NAME, META_COLUMNS, SampleStore, sha256_bytes

log = logging.getLogger(__name__)

_REMOTE = re.compile(r"^(?:[\w.-]+@)?[\w.-]+:.+$")


def pull(src: str | Path, dest: str | Path, progress: bool = False) -> dict[str, Any]:
    """Copy the samples of `src` that `dest` lacks; returns counts.

    Args:
        src: store folder, exported .tar, or user@host:path.
        dest: host-side store folder (created if missing).
        progress: show a progress bar (tqdm, when installed).
    """
    dest = Path(dest)
    source = _local_source(str(src), dest)
    counts = {"source_rows": 0, "new": 0, "duplicates": 0, "missing_in_source": 0, "corrupt_in_source": 0}
    with SampleStore(source, readonly=True) as origin, SampleStore(dest, create=True, lock=True) as target:
        counts["reconciled"] = target.reconcile().to_dict()
        known = {row[0] for row in target.db.execute("SELECT sha256 FROM samples")}
        origin_id = _store_id(origin)
        rows = list(origin.rows())
        counts["source_rows"] = len(rows)
        for row in _progress(rows, progress):
            if row["sha256"] in known:
                counts["duplicates"] += 1
                continue
            path = origin.path_of(row)
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                counts["missing_in_source"] += 1  # evicted or still being written: next pull
                continue
            if sha256_bytes(data) != row["sha256"]:
                counts["corrupt_in_source"] += 1
                log.warning("skipping %s: its SHA-256 does not match the source index", path)
                continue
            meta = {name: row.get(name) for name in META_COLUMNS}
            meta["origin"] = row.get("origin") or f"{origin_id}:{row['id']}"
            target.add(data, meta, Path(row["file"]).name)
            known.add(row["sha256"])
            counts["new"] += 1
        for session in origin.sessions():
            fields = {k: v for k, v in session.items() if k != "session_id"}
            target.save_session(session["session_id"], **fields)
        counts["dest_rows"] = target.count()
    return counts


def _store_id(store: SampleStore) -> str:
    """A short id of the source store (its first session), recorded as each row's origin."""
    first = store.db.execute("SELECT min(session_id) FROM sessions").fetchone()[0] or str(store.root)
    return hashlib.sha256(first.encode()).hexdigest()[:8]


def _local_source(src: str, dest: Path) -> Path:
    path = Path(src).expanduser()
    if path.exists():
        if path.is_file() and tarfile.is_tarfile(path):
            return _extract_export(path, dest)
        if not (path / DB_NAME).exists():
            raise UserError(f"{src} is not a sample store (no {DB_NAME}): give the --log-dir folder of the car")
        return path
    if _REMOTE.match(src):
        return _rsync(src, dest)
    raise UserError(f"{src} does not exist: give a store folder, an exported .tar or user@host:path")


def _extract_export(archive: Path, dest: Path) -> Path:
    folder = dest / ".incoming" / archive.stem
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        try:
            tar.extractall(folder, filter="data")  # rejects absolute paths, ../ and links outside
        except tarfile.TarError as error:
            raise UserError(f"{archive} is not a safe sample export ({error}): re-export it") from error
    store = folder / "samples"
    if not (store / DB_NAME).exists():
        raise UserError(f"{archive} holds no samples/{DB_NAME}: make it with `edgekit samples export`")
    return store


def _rsync(src: str, dest: Path) -> Path:
    if shutil.which("rsync") is None:
        raise UserError("pulling from user@host:path needs rsync (apt install rsync), "
                        "or mount the card and pull from the folder")
    folder = dest / ".incoming" / re.sub(r"[^\w.-]+", "_", src)
    folder.mkdir(parents=True, exist_ok=True)
    # images first, then the index: every row then finds its file (newer files come next time)
    for part, target in (("images/", folder / "images"), (f"{DB_NAME}*", folder)):
        command = ["rsync", "-a", "--partial", "-e", "ssh", f"{src.rstrip('/')}/{part}", f"{target}/"]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise UserError(f"rsync from {src} failed: {result.stderr.strip().splitlines()[-1:]}")
    return folder


def _progress(rows: list, enabled: bool):
    if not enabled:
        return rows
    try:
        from tqdm import tqdm
    except ImportError:
        return rows
    return tqdm(rows, unit="sample", desc="pull")
