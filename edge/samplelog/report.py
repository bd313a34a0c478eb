"""What is in a store: counts, a confidence histogram, drift of predictions against training.

Example:
    >>> summary = summarize(SampleStore("samples", readonly=True))
    >>> print(format_summary(summary))
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tarfile
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import UserError
from edge.samplelog.store import DB_NAME, SampleStore

DRIFT_THRESHOLD = 0.2


def total_variation(observed: dict[str, float], expected: dict[str, float]) -> float:
    """Half the L1 distance between two class distributions (0: same, 1: disjoint)."""
    classes = set(observed) | set(expected)
    total_o, total_e = sum(observed.values()) or 1.0, sum(expected.values()) or 1.0
    return 0.5 * sum(abs(observed.get(c, 0) / total_o - expected.get(c, 0) / total_e) for c in classes)


def summarize(store: SampleStore, training_distribution: dict[str, float] | None = None,
              drift_threshold: float = DRIFT_THRESHOLD) -> dict[str, Any]:
    """Counts by reason, class and session; confidence histogram; per-session drift.

    Args:
        store: the store (read-only is fine).
        training_distribution: class -> fraction; default: the one each session recorded from its bundle.
        drift_threshold: total-variation distance above which a session is flagged.
    """
    reasons: Counter[str] = Counter()
    labels: Counter[str] = Counter()
    per_session: Counter[str] = Counter()
    logged_labels: dict[str, Counter[str]] = {}
    confidences = []
    for reason_text, label, session, confidence in store.db.execute(
            "SELECT reasons, label, session_id, confidence FROM samples"):
        reasons.update(reason_text.split(","))
        labels[label] += 1
        per_session[session] += 1
        logged_labels.setdefault(session, Counter())[label] += 1
        if confidence is not None:
            confidences.append(confidence)
    counts, edges = np.histogram(confidences, bins=10, range=(0.0, 1.0))
    sessions = []
    for session in store.sessions():
        predictions = session.get("predictions") or dict(logged_labels.get(session["session_id"], {}))
        expected = training_distribution or session.get("training_distribution") or {}
        entry = {"session_id": session["session_id"], "model_version": session.get("model_version"),
                 "frames": session.get("frames"), "samples": per_session.get(session["session_id"], 0),
                 "predicted": _fractions(predictions), "training": _fractions(expected)}
        if expected and predictions:
            entry["drift"] = round(total_variation(predictions, expected), 4)
            entry["drift_warning"] = entry["drift"] > drift_threshold
        sessions.append(entry)
    return {"store": str(store.root), "samples": store.count(), "bytes": store.total_bytes,
            "by_reason": dict(reasons.most_common()), "by_class": dict(labels.most_common()),
            "by_session": dict(per_session.most_common()),
            "confidence_histogram": {"edges": [round(float(e), 2) for e in edges], "counts": counts.tolist()},
            "sessions": sessions, "drift_threshold": drift_threshold}


def _fractions(counts: dict[str, float]) -> dict[str, float]:
    total = sum(counts.values()) or 1.0
    return {k: round(v / total, 4) for k, v in sorted(counts.items())}


def format_summary(summary: dict[str, Any]) -> str:
    lines = [f"{summary['store']}: {summary['samples']} samples, {summary['bytes'] / 1e6:.1f} MB"]
    for title, key in (("by reason", "by_reason"), ("by class", "by_class"), ("by session", "by_session")):
        lines.append(f"{title}: " + (", ".join(f"{k}={v}" for k, v in summary[key].items()) or "-"))
    hist = summary["confidence_histogram"]
    peak = max(hist["counts"] or [0]) or 1
    lines.append("confidence histogram:")
    for low, high, count in zip(hist["edges"], hist["edges"][1:], hist["counts"], strict=False):
        lines.append(f"  {low:.1f}-{high:.1f} {count:6d} {'#' * round(30 * count / peak)}")
    for session in summary["sessions"]:
        line = f"session {session['session_id']} ({session['model_version']}, {session['frames']} frames, " \
               f"{session['samples']} samples): predicted " + \
               ", ".join(f"{k} {v:.0%}" for k, v in session["predicted"].items())
        if "drift" in session:
            line += " | training " + ", ".join(f"{k} {v:.0%}" for k, v in session["training"].items())
            line += f" | drift {session['drift']:.2f}"
            if session["drift_warning"]:
                line += f"  WARNING: predictions drift from the training distribution " \
                        f"(> {summary['drift_threshold']}): the field differs from the training data"
        lines.append(line)
    return "\n".join(lines)


def export_tar(store: SampleStore, out: Path, where: str = "", params: tuple = ()) -> int:
    """One .tar with a consistent copy of the index and the selected images; returns the sample count.

    The index is copied with SQLite's backup API (safe while the runtime writes);
    rows outside the selection are removed from the copy.
    """
    out = Path(out)
    if out.suffix != ".tar":
        raise UserError(f"export goes to one .tar file, got {out}: name it e.g. samples.tar")
    rows = list(store.rows(where, params))
    with tempfile.TemporaryDirectory() as tmp:
        snapshot = Path(tmp) / DB_NAME
        target = sqlite3.connect(snapshot)
        with target:
            store.db.backup(target)
        if where:
            with target:
                target.execute(f"DELETE FROM samples WHERE NOT ({where})", params)
        target.execute("PRAGMA journal_mode=DELETE")
        target.execute("VACUUM")
        target.close()
        partial = out.with_name(out.name + ".partial")
        try:
            with tarfile.open(partial, "w") as tar:
                tar.add(snapshot, arcname=f"samples/{DB_NAME}")
                for row in rows:
                    path = store.path_of(row)
                    if path.exists():
                        tar.add(path, arcname=f"samples/{row['file']}")
            os.replace(partial, out)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
    return len(rows)
