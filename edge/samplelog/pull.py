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
import shlex
import shutil
import sqlite3
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from edge.digest import bytes_sha256
from edge.errors import UserError
from edge.remote import explain_ssh_failure, ssh_command
from edge.samplelog import untrusted
from edge.samplelog.store import DB_NAME, META_COLUMNS, SampleStore

log = logging.getLogger(__name__)

_REMOTE = re.compile(r"^(?:[\w.-]+@)?[\w.-]+:.+$")


def pull(src: str | Path, dest: str | Path, progress: bool = False) -> dict[str, Any]:
    """Copy the samples of `src` that `dest` lacks; returns counts.

    The source is another machine's store, so it is untrusted: a row (or session row)
    whose fields are not what the logger writes, or whose file leaves the source's
    images/ folder or is a link, is refused and counted (`refused`, with the first
    reasons in `refused_examples`); nothing is written outside DEST.

    Args:
        src: store folder, exported .tar, or user@host:path.
        dest: host-side store folder (created if missing).
        progress: show a progress bar (tqdm, when installed).
    """
    dest = Path(dest)
    source = _local_source(str(src), dest)
    counts: dict[str, Any] = {"source_rows": 0, "new": 0, "duplicates": 0, "missing_in_source": 0,
                              "corrupt_in_source": 0, "refused": 0}
    refusals: list[str] = []

    def refuse(what: str, error: Exception) -> None:
        counts["refused"] += 1
        if len(refusals) < MAX_EXAMPLES:
            refusals.append(f"{what}: {error}")

    with SampleStore(source, readonly=True) as origin, SampleStore(dest, create=True, lock=True) as target:
        counts["reconciled"] = target.reconcile().to_dict()
        known = {row[0] for row in target.db.execute("SELECT sha256 FROM samples")}
        origin_id = _store_id(origin)
        rows = [dict(row) for row in _query(origin, "SELECT * FROM samples ORDER BY id")]
        counts["source_rows"] = len(rows)
        for raw in _progress(rows, progress):
            try:
                row = untrusted.sample_row(raw)
            except untrusted.RowRefused as error:
                refuse(f"row {_row_id(raw)}", error)
                continue
            if row["sha256"] in known:
                counts["duplicates"] += 1
                continue
            try:
                data = untrusted.read_inside(origin.root, row["file"])
            except FileNotFoundError:
                counts["missing_in_source"] += 1  # evicted or still being written: next pull
                continue
            except untrusted.RowRefused as error:
                refuse(f"row {row['id']}", error)
                continue
            if bytes_sha256(data) != row["sha256"]:
                counts["corrupt_in_source"] += 1
                log.warning("skipping %s: its SHA-256 does not match the source index", row["file"])
                continue
            meta = {name: row[name] for name in META_COLUMNS}
            meta["origin"] = row["origin"] or f"{origin_id}:{row['id']}"
            target.add(data, meta, row["file"].rsplit("/", 1)[1])
            known.add(row["sha256"])
            counts["new"] += 1
        for raw in _query(origin, "SELECT * FROM sessions"):
            try:
                session = untrusted.session_row(dict(raw))
            except untrusted.RowRefused as error:
                refuse("session row", error)
                continue
            target.save_session(**session)
        counts["dest_rows"] = target.count()
    counts["refused_examples"] = refusals
    if counts["refused"]:
        log.warning("%s", refused_line(counts))
    return counts


MAX_EXAMPLES = 5


def refused_line(counts: dict[str, Any]) -> str:
    """One line saying how many rows a pull refused and why (the first few reasons)."""
    return (f"refused {counts['refused']} rows: {'; '.join(counts['refused_examples'])}"
            f"{' ...' if counts['refused'] > len(counts['refused_examples']) else ''} "
            f"(the source store is damaged or was tampered with; nothing of these rows was copied)")


def _query(store: SampleStore, sql: str) -> list[sqlite3.Row]:
    try:
        return store.db.execute(sql).fetchall()
    except sqlite3.DatabaseError as error:
        raise UserError(f"{store.root}/{DB_NAME} is not a sample index this edgekit can read ({error}): "
                        f"check the source, or export it again with `edgekit samples export`") from error


def _row_id(raw: dict[str, Any]) -> str:
    value = raw.get("id")
    return str(value) if isinstance(value, int) else "?"


def _store_id(store: SampleStore) -> str:
    """A short id of the source store (its first session), recorded as each row's origin."""
    first = _query(store, "SELECT min(session_id) FROM sessions")[0][0] or str(store.root)
    return hashlib.sha256(str(first).encode()).hexdigest()[:8]


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
    folder = dest / ".incoming" / (re.sub(r"[^\w.-]+", "_", archive.stem).lstrip(".") or "export")
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
        # -rt, not -a: no links, devices or special files from the car, only regular files
        command = ["rsync", "-rt", "--partial", "--timeout=60", "-e", shlex.join(ssh_command()),
                   f"{src.rstrip('/')}/{part}", f"{target}/"]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise UserError(_rsync_failure(src, result.stderr))
    return folder


def _rsync_failure(src: str, stderr: str) -> str:
    """One line for a failed rsync: ssh's own failure, no rsync on the car, or rsync's first error."""
    host = src.split(":", 1)[0]
    explained = explain_ssh_failure(host, stderr)
    if explained:
        return f"pull from {src}: {explained}; run the same pull again to resume"
    if "rsync: command not found" in stderr or "remote command not found" in stderr:
        return f"{host} has no rsync: install it there (sudo apt install rsync)"
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return f"rsync from {src} failed: {lines[0] if lines else 'no message'}"


def _progress(rows: list, enabled: bool):
    if not enabled:
        return rows
    try:
        from tqdm import tqdm
    except ImportError:
        return rows
    return tqdm(rows, unit="sample", desc="pull")
