"""The sample store: image files plus an SQLite index that survive power cuts.

Layout of a store folder:

    samples.db                      SQLite (WAL): table `samples` (one row per
                                    image) and table `sessions` (one per run)
    images/<session>/<file>.jpg     the samples, metadata embedded (imagefile.py)
    lock                            held by the one process that writes

A sample is written as (edge.durable.atomic_write): image to `.<name>.<random>.tmp`,
fsync, rename, fsync the folder, then the row is inserted in a transaction. A crash therefore leaves at
worst a `.tmp` (deleted at start) or a finished image without a row (indexed
again at start from its embedded metadata): nothing stored is ever damaged.

Example:
    >>> store = SampleStore(path, create=True)
    >>> for row in store.rows(): print(row["file"], row["label"])
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.digest import bytes_sha256
from edge.durable import atomic_write, fsync_dir
from edge.errors import UserError
from edge.samplelog.imagefile import decode_image, read_metadata
from edge.samplelog.untrusted import (
    RowRefused,
    is_file_name,
    is_session_id,
    read_inside,
    sample_file,
    sample_meta,
)

log = logging.getLogger(__name__)

DB_NAME = "samples.db"
IMAGES = "images"
STORE_FORMAT = 1

# Eviction: lower goes first. A new sample may only evict samples of its own priority or lower.
PRIORITY = {"random": 0, "low_confidence": 1, "disagreement": 1, "manual": 2}

# Columns that travel with a sample (also embedded in its image file).
META_COLUMNS = {
    "session_id": "TEXT NOT NULL",
    "frame_index": "INTEGER NOT NULL",
    "capture_time": "REAL NOT NULL",
    "logged_time": "REAL",
    "reasons": "TEXT NOT NULL",
    "priority": "INTEGER NOT NULL",
    "model_version": "TEXT",
    "label": "TEXT",
    "confidence": "REAL",
    "probabilities": "TEXT",
    "labels": "TEXT",
    "shadow_version": "TEXT",
    "shadow_label": "TEXT",
    "shadow_confidence": "REAL",
    "roi": "TEXT",
    "roi_only": "INTEGER",
    "frame_width": "INTEGER",
    "frame_height": "INTEGER",
    "truth": "TEXT",
    "origin": "TEXT",
}
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY,
    file TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    {", ".join(f"{name} {kind}" for name, kind in META_COLUMNS.items())}
);
CREATE INDEX IF NOT EXISTS samples_sha ON samples (sha256);
CREATE INDEX IF NOT EXISTS samples_evict ON samples (priority, capture_time);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    started REAL,
    model_version TEXT,
    labels TEXT,
    training_distribution TEXT,
    predictions TEXT,
    frames INTEGER
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


@dataclass
class ReconcileReport:
    """What reconciliation found and did at start."""

    rows: int = 0
    files: int = 0
    temp_removed: int = 0
    rows_missing_file: int = 0
    reindexed: int = 0
    orphans_removed: int = 0
    strays: int = 0
    removed_files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if isinstance(v, int)}


@dataclass
class _Scan:
    files: set[str] = field(default_factory=set)    # images/<session>/<name>, regular files
    temps: list[str] = field(default_factory=list)  # leftovers of an interrupted write
    strays: list[str] = field(default_factory=list)  # links, odd names: never read, never indexed


class SampleStore:
    """One sample store folder.

    Args:
        root: the store folder.
        create: create the folder and database if missing (else a missing store is a UserError).
        readonly: open for reading only (no lock, no reconcile; safe while a runtime writes).
        lock: take the writer lock (one writing process per store).
    """

    def __init__(self, root: Path | str, create: bool = False, readonly: bool = False,
                 lock: bool = False) -> None:
        self.root = Path(root)
        self.readonly = readonly
        self._lock_handle = None
        db_path = self.root / DB_NAME
        if not db_path.exists():
            if not create or readonly:
                raise UserError(f"{self.root} is not a sample store (no {DB_NAME}): check the path")
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                (self.root / IMAGES).mkdir(exist_ok=True)
            except OSError as error:
                raise StoreUnavailable(self.root, error) from error
        if lock:
            self._take_lock()
        try:
            if readonly:
                self.db = _open_readonly(db_path)
            else:
                self.db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
                self.db.execute("PRAGMA journal_mode=WAL")
                # NORMAL: WAL keeps the database consistent on power loss; the last commits may
                # roll back, but their images are already fsynced with embedded metadata, so
                # reconcile() indexes them again. One fsync per sample saved on the SD card.
                self.db.execute("PRAGMA synchronous=NORMAL")
                # Keep the WAL small: a card that is nearly full must not be filled by the index.
                self.db.execute("PRAGMA wal_autocheckpoint=100")
                self.db.execute("PRAGMA journal_size_limit=1048576")
                self.db.executescript(_SCHEMA)
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (str(STORE_FORMAT),))
            self.db.row_factory = sqlite3.Row
        except sqlite3.DatabaseError as error:
            self.close()
            if not readonly and isinstance(error, sqlite3.OperationalError) and any(
                    words in str(error) for words in _DISK_REFUSALS):
                raise StoreUnavailable(self.root, error) from error
            raise UserError(f"{db_path} is not a readable sample index ({error}): "
                            f"check the path, or run `edgekit samples check`") from error
        self.total_bytes = int(self.db.execute("SELECT coalesce(sum(bytes), 0) FROM samples").fetchone()[0])

    def _take_lock(self) -> None:
        try:
            handle = open(self.root / "lock", "a")
        except OSError as error:
            raise StoreUnavailable(self.root, error) from error
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            handle.close()
            raise UserError(f"another process is writing to the sample store {self.root}: "
                            f"stop it or log to another --log-dir") from error
        self._lock_handle = handle

    def close(self) -> None:
        if hasattr(self, "db"):
            self.db.close()
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    def __enter__(self) -> SampleStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing -------------------------------------------------------------------------

    def add(self, data: bytes, meta: dict[str, Any], name: str) -> int:
        """Store one encoded sample (image bytes with embedded metadata) under images/<session>/<name>.

        Returns the new row id. Raises OSError / sqlite3.Error on a full or read-only disk,
        after which nothing stored is damaged.
        """
        if not is_session_id(meta.get("session_id")) or not is_file_name(name):
            raise RowRefused(f"refusing to store {meta.get('session_id')!r}/{name!r}: not plain names")
        folder = self.root / IMAGES / meta["session_id"]
        if folder.is_symlink():
            raise RowRefused(f"refusing to store into {folder}: a symbolic link, it may lead out of the store")
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            fsync_dir(folder.parent)
        path = folder / name
        copy = 1
        while path.exists():  # never overwrite a stored sample
            path = folder / f"{Path(name).stem}-{copy}{Path(name).suffix}"
            copy += 1
        atomic_write(path, data)
        try:
            return self._insert(path.relative_to(self.root).as_posix(), data, meta)
        except BaseException:
            with contextlib.suppress(OSError):
                path.unlink()  # if this fails too, reconcile() indexes it again at start
            raise

    def _insert(self, relative: str, data: bytes, meta: dict[str, Any]) -> int:
        row = {name: _column_value(meta.get(name)) for name in META_COLUMNS}
        row.update(file=relative, sha256=bytes_sha256(data), bytes=len(data))
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self._transaction():
            cursor = self.db.execute(f"INSERT INTO samples ({names}) VALUES ({marks})", tuple(row.values()))
        self.total_bytes += len(data)
        return int(cursor.lastrowid)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def save_session(self, session_id: str, **values: Any) -> None:
        """Insert or update the row of one session (started, model_version, predictions...)."""
        values = {k: _column_value(v) for k, v in values.items()}
        with self._transaction():
            self.db.execute("INSERT OR IGNORE INTO sessions (session_id) VALUES (?)", (session_id,))
            if values:
                sets = ", ".join(f"{k} = ?" for k in values)
                self.db.execute(f"UPDATE sessions SET {sets} WHERE session_id = ?", (*values.values(), session_id))

    def free_bytes(self) -> int:
        stat = os.statvfs(self.root)
        return stat.f_bavail * stat.f_frsize

    def make_room(self, incoming: int, priority: int, max_bytes: int | None, min_free: int | None) -> list[int]:
        """Evict samples (lowest priority, oldest first, never above `priority`) until
        `incoming` more bytes fit under `max_bytes` and above `min_free` free bytes.

        Returns the evicted row ids; raises StoreFull when not enough can be evicted.
        """
        evicted: list[int] = []
        while True:
            over = 0
            if max_bytes is not None:
                over = max(over, self.total_bytes + incoming - max_bytes)
            if min_free is not None:
                over = max(over, min_free + incoming - self.free_bytes())
            if over <= 0:
                return evicted
            victims = self.db.execute(
                "SELECT id, file, bytes FROM samples WHERE priority <= ? "
                "ORDER BY priority, capture_time, id LIMIT 32", (priority,)).fetchall()
            if not victims:
                raise StoreFull(over)
            chosen, freed = [], 0
            for victim in victims:
                chosen.append(victim)
                freed += victim["bytes"]
                if freed >= over:
                    break
            self.delete([v["id"] for v in chosen])
            evicted.extend(v["id"] for v in chosen)

    def delete(self, ids: list[int]) -> None:
        """Delete rows, then their files (a crash in between leaves files that get re-indexed)."""
        marks = ",".join("?" for _ in ids)
        rows = self.db.execute(f"SELECT file, bytes FROM samples WHERE id IN ({marks})", ids).fetchall()
        with self._transaction():
            self.db.execute(f"DELETE FROM samples WHERE id IN ({marks})", ids)
        for row in rows:
            with contextlib.suppress(FileNotFoundError):
                (self.root / row["file"]).unlink()
            self.total_bytes -= row["bytes"]

    # --- reading -------------------------------------------------------------------------

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM samples").fetchone()[0])

    def rows(self, where: str = "", params: tuple = (), order: str = "id", limit: int | None = None,
             ) -> Iterator[dict[str, Any]]:
        """Rows as dicts (probabilities, labels and roi decoded from JSON).

        Example: `store.rows("label = ?", ("red",), limit=10)`.
        """
        sql = "SELECT * FROM samples" + (f" WHERE {where}" if where else "") + f" ORDER BY {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        for row in self.db.execute(sql, params):
            yield decode_row(row)

    def sessions(self) -> list[dict[str, Any]]:
        return [decode_row(row) for row in self.db.execute("SELECT * FROM sessions ORDER BY started")]

    def path_of(self, row: dict[str, Any]) -> Path:
        """Where the row's image is; UserError if its `file` is not images/<session>/<name>."""
        try:
            return self.root / sample_file(row["file"])
        except RowRefused as error:
            raise UserError(f"the sample store {self.root} holds a row with an unsafe path ({error}): "
                            f"pull it again with `edgekit pull`, which refuses such rows") from error

    def read_image(self, row: dict[str, Any]) -> np.ndarray:
        """The sample's image as RGB uint8."""
        return decode_image(self.path_of(row).read_bytes())

    def check(self) -> dict[str, Any]:
        """Integrity of the index and of every file (exists, SHA-256 matches), and files the
        index does not know: leftover `.tmp` files, unindexed images, links and odd names."""
        integrity = self.db.execute("PRAGMA integrity_check").fetchone()[0]
        missing, corrupt, unsafe = [], [], []
        for row in self.db.execute("SELECT file, sha256 FROM samples"):
            try:
                data = read_inside(self.root, row["file"])
            except FileNotFoundError:
                missing.append(row["file"])
            except RowRefused as error:
                unsafe.append(f"{row['file']!r}: {error}")
            else:
                if bytes_sha256(data) != row["sha256"]:
                    corrupt.append(row["file"])
        scan = self._scan()
        indexed = {row[0] for row in self.db.execute("SELECT file FROM samples")}
        report = {"integrity": integrity, "rows": self.count(), "missing": missing, "corrupt": corrupt,
                  "unsafe_rows": unsafe, "temp_files": scan.temps, "unindexed": sorted(scan.files - indexed),
                  "strays": scan.strays}
        report["ok"] = integrity == "ok" and not any(report[k] for k in (
            "missing", "corrupt", "unsafe_rows", "temp_files", "unindexed", "strays"))
        return report

    def _scan(self) -> _Scan:
        """The files under images/, walked without following links."""
        scan = _Scan()
        images = self.root / IMAGES
        for folder, dirs, names in os.walk(images):  # followlinks=False: a linked folder is a stray
            for name in dirs + names:
                path = Path(folder) / name
                relative = path.relative_to(self.root).as_posix()
                if name.endswith(".tmp") and not path.is_symlink() and path.is_file():
                    scan.temps.append(relative)
                elif path.is_symlink():
                    scan.strays.append(relative)
                elif name in names:
                    try:
                        scan.files.add(sample_file(relative))
                    except RowRefused:
                        scan.strays.append(relative)
                elif folder != str(images):
                    scan.strays.append(relative)  # a folder below a session folder
        return scan

    # --- start-up reconciliation -------------------------------------------------------------

    def reconcile(self, force: bool = False) -> ReconcileReport:
        """Make index and files agree after a crash.

        Temp files are deleted; rows whose file is missing are deleted; files without a row are
        indexed again from their embedded metadata, or deleted when they have none. Refuses
        (UserError, nothing touched) when that would remove more than half the store, unless
        `force`.
        """
        report = ReconcileReport()
        rows = {row[0]: row[1] for row in self.db.execute("SELECT file, id FROM samples")}
        scan = self._scan()
        files, temps = scan.files, [self.root / name for name in scan.temps]
        report.rows, report.files, report.strays = len(rows), len(files), len(scan.strays)
        if scan.strays:
            log.warning("sample store %s: %d links or odd names under images/ left alone and not indexed "
                        "(first: %s); see `edgekit samples check`", self.root, len(scan.strays), scan.strays[0])
        missing = [rows[name] for name in rows if name not in files]
        orphans = sorted(files - rows.keys())
        readable: list[tuple[str, bytes, dict[str, Any]]] = []
        unreadable: list[str] = []
        for name in orphans:
            try:
                data = read_inside(self.root, name)
                meta = sample_meta(read_metadata(data))  # embedded by a logger we do not control
            except (RowRefused, FileNotFoundError):
                unreadable.append(name)
            else:
                readable.append((name, data, meta))
        removals = len(missing) + len(unreadable)
        total = len(rows.keys() | files)
        if removals and removals * 2 > total and not force:
            raise UserError(
                f"the sample store {self.root} looks damaged or misplaced: reconciling would remove "
                f"{removals} of {total} samples ({len(missing)} rows without image, {len(unreadable)} "
                f"images without metadata). Nothing was deleted. Check the path; if this is really "
                f"intended run `edgekit samples check {self.root} --repair --force`")
        for path in temps:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        report.temp_removed = len(temps)
        if missing:
            marks = ",".join("?" for _ in missing)
            with self._transaction():
                self.db.execute(f"DELETE FROM samples WHERE id IN ({marks})", missing)
        report.rows_missing_file = len(missing)
        for name, data, meta in readable:
            self._insert(name, data, meta)
        report.reindexed = len(readable)
        for name in unreadable:
            with contextlib.suppress(FileNotFoundError):
                (self.root / name).unlink()
        report.orphans_removed = len(unreadable)
        report.removed_files = unreadable
        self.total_bytes = int(self.db.execute("SELECT coalesce(sum(bytes), 0) FROM samples").fetchone()[0])
        return report


def _open_readonly(db_path: Path) -> sqlite3.Connection:
    """A read-only connection, also on read-only media, with the schema distrusted.

    WAL mode needs a `-shm` file next to the database; on a card in a reader mounted
    read-only it cannot be created, so the database is then opened `immutable` (right
    there: nothing can write to read-only media, and a car that shut down cleanly left
    no WAL behind).
    """
    uri = db_path.resolve().as_uri()
    for mode in ("?mode=ro", "?mode=ro&immutable=1"):
        db = sqlite3.connect(uri + mode, uri=True, check_same_thread=False)
        try:
            db.execute("PRAGMA trusted_schema=OFF")  # a store from another machine may carry anything
            db.execute("PRAGMA query_only=1")
            db.execute("SELECT count(*) FROM samples").fetchone()
            if "immutable" in mode and db_path.with_name(db_path.name + "-wal").exists():
                log.warning("%s is on read-only media with a write-ahead log: its last samples "
                            "(not yet checkpointed) are not read; copy the folder to read them", db_path)
            return db
        except sqlite3.OperationalError as error:
            db.close()
            if "unable to open" not in str(error) or "immutable" in mode:
                raise
    raise AssertionError("unreachable")


# SQLite's words for a folder or disk that refuses writes (as opposed to a damaged index)
_DISK_REFUSALS = ("readonly database", "unable to open database file", "disk is full", "disk I/O error")


class StoreUnavailable(UserError):
    """The store's folder or disk refuses writes (read-only, full, not a folder): the car drives
    on without logging and tries again later (see SampleLogger)."""

    def __init__(self, root: Path, error: BaseException) -> None:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        super().__init__(f"cannot write the sample store {root} ({reason}): free space, make the "
                         f"folder writable or choose another --log-dir")
        self.root = root


class StoreFull(Exception):
    """Nothing (of low enough priority) is left to evict."""

    def __init__(self, missing_bytes: int) -> None:
        super().__init__(f"{missing_bytes} bytes over the quota and nothing left to evict")
        self.missing_bytes = missing_bytes


_JSON_COLUMNS = ("probabilities", "labels", "roi", "training_distribution", "predictions")


def _column_value(value: Any) -> Any:
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, np.generic):
        return value.item()
    return value


def decode_row(row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    for name in _JSON_COLUMNS:
        if isinstance(data.get(name), str):
            try:
                data[name] = json.loads(data[name])
            except (json.JSONDecodeError, RecursionError) as error:
                where = f"sample {data['id']}" if "id" in data else f"session {data.get('session_id')!r}"
                raise UserError(f"{where} of this sample store has an unreadable {name} (not JSON): the store is "
                                f"damaged or was tampered with; `edgekit pull` copies only its valid rows"
                                ) from error
    return data
