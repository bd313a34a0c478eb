"""Labeling decisions in SQLite: each one committed the moment it is made, every one undoable.

Tables (labels.db, next to the sample store's samples.db):
    decisions(sample_id PRIMARY KEY, label, discarded, source, decided_at)   the current state
    actions(seq, sample_id, label, discarded, source, at, prev_label, prev_discarded,
            had_prev, undone)                                              the log `undo` walks back

Example:
    >>> db = LabelDB(Path("store/labels.db"))
    >>> db.decide("images/s1/1.jpg", "red", source="web")
    >>> db.undo()
    'images/s1/1.jpg'
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edge.errors import UserError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    sample_id TEXT PRIMARY KEY,
    label TEXT,
    discarded INTEGER NOT NULL DEFAULT 0,
    source TEXT NOT NULL,
    decided_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS actions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sample_id TEXT NOT NULL,
    label TEXT,
    discarded INTEGER NOT NULL,
    source TEXT NOT NULL,
    at REAL NOT NULL,
    prev_label TEXT,
    prev_discarded INTEGER,
    had_prev INTEGER NOT NULL,
    undone INTEGER NOT NULL DEFAULT 0
);
"""


@dataclass(frozen=True)
class Decision:
    sample_id: str
    label: str | None
    discarded: bool
    source: str
    decided_at: float

    def to_dict(self) -> dict:
        return {"label": self.label, "discarded": self.discarded, "source": self.source}


class LabelDB:
    """Decisions for one sample store.

    Args:
        path: the labels.db file (created on first use).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            with self._connect() as db:
                db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as error:
            raise UserError(f"{self.path} is not a readable labels database ({error}): "
                            "move it away and label again") from error

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.row_factory = sqlite3.Row
            yield db
        finally:
            db.close()

    def decide(self, sample_id: str, label: str | None, discard: bool = False, source: str = "web") -> Decision:
        """Record a label (or a discard) for one sample, committed before returning."""
        if (label is None) == (not discard):
            raise ValueError("give a label or discard=True, not both or neither")
        now = time.time()
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            previous = db.execute("SELECT label, discarded FROM decisions WHERE sample_id = ?",
                                  (sample_id,)).fetchone()
            db.execute(
                "INSERT INTO actions (sample_id, label, discarded, source, at, prev_label, prev_discarded, had_prev)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (sample_id, label, int(discard), source, now,
                 previous["label"] if previous else None,
                 previous["discarded"] if previous else None, int(previous is not None)),
            )
            db.execute(
                "INSERT INTO decisions (sample_id, label, discarded, source, decided_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(sample_id) DO UPDATE SET label = excluded.label, discarded = excluded.discarded,"
                " source = excluded.source, decided_at = excluded.decided_at",
                (sample_id, label, int(discard), source, now),
            )
            db.execute("COMMIT")
        return Decision(sample_id, label, discard, source, now)

    def undo(self, source: str | None = None) -> str | None:
        """Take back the newest decision (of `source`, if given); returns its sample id or None."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            where = "undone = 0" + (" AND source = ?" if source else "")
            action = db.execute(f"SELECT * FROM actions WHERE {where} ORDER BY seq DESC LIMIT 1",
                                (source,) if source else ()).fetchone()
            if action is None:
                db.execute("COMMIT")
                return None
            if action["had_prev"]:
                db.execute("UPDATE decisions SET label = ?, discarded = ?, decided_at = ? WHERE sample_id = ?",
                           (action["prev_label"], action["prev_discarded"], time.time(), action["sample_id"]))
            else:
                db.execute("DELETE FROM decisions WHERE sample_id = ?", (action["sample_id"],))
            db.execute("UPDATE actions SET undone = 1 WHERE seq = ?", (action["seq"],))
            db.execute("COMMIT")
            return str(action["sample_id"])

    def get(self, sample_id: str) -> Decision | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM decisions WHERE sample_id = ?", (sample_id,)).fetchone()
        return _decision(row) if row else None

    def all(self) -> dict[str, Decision]:
        with self._connect() as db:
            return {row["sample_id"]: _decision(row) for row in db.execute("SELECT * FROM decisions")}

    def labeled(self) -> dict[str, str]:
        """sample_id -> label for every sample with a label (discards left out)."""
        return {k: d.label for k, d in self.all().items() if not d.discarded and d.label}


def _decision(row: sqlite3.Row) -> Decision:
    return Decision(row["sample_id"], row["label"], bool(row["discarded"]), row["source"], row["decided_at"])
