"""The sample logger: a runtime Part that keeps the frames worth learning from.

`on_result` (inference thread) decides cheaply and hands the frame to a writer
thread through a bounded queue. When the queue is full, a live source (camera,
stream) drops the sample and counts it, never waiting; a replayed source (video
file, image folder, synthetic drive: `wait_when_full`) waits for the writer, so a
replay loses nothing. The writer encodes, makes room (quota and free
space floor, by eviction), writes crash-safely, and pauses on a full or
read-only disk with one warning, retrying until space returns.

Example:
    >>> logger = SampleLogger("samples", LogPolicy(low_confidence=0.6), labels=labels)
    >>> runtime = Runtime(..., parts=[logger])
"""

from __future__ import annotations

import errno
import logging
import queue
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import UserError
from edge.frame import Frame, Result
from edge.part_contract import yield_cpu_to_inference
from edge.preprocess import crop_roi
from edge.samplelog.imagefile import FORMATS, encode_image
from edge.samplelog.policies import LogPolicy, PolicyEngine
from edge.samplelog.shadow import ShadowRunner
from edge.samplelog.store import PRIORITY, ReconcileReport, SampleStore, StoreFull, StoreUnavailable

log = logging.getLogger(__name__)

_DISK_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EIO, errno.EACCES}
_SESSION_SAVE_S = 5.0


def new_session_id() -> str:
    """A sortable, unique id for one continuous run of the camera."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


DEFAULT_QUEUE = 8  # frames waiting for the writer; a stalled disk then costs at most 8 frames of memory

@dataclass
class _Pending:
    image: np.ndarray
    meta: dict[str, Any]
    order: str = "rgb"  # the frame's channel order, converted (if at all) in the writer thread


class SampleLogger:
    """Part that logs frames to a SampleStore.

    Args:
        root: store folder (created if missing, reconciled at start).
        policy: which frames to log.
        labels: class names of the primary model (order of the probabilities).
        session_id: id of this run (default: new_session_id()).
        roi: region of interest (x, y, w, h fractions) recorded with each sample.
        roi_only: store only the ROI crop instead of the full frame.
        fmt, quality: "jpeg" (quality 1-100) or "png".
        max_bytes: quota of the store on disk (None: none).
        min_free: free bytes to leave on the filesystem (None: none).
        queue_size: samples waiting for the writer before new ones are dropped (each holds a
            full frame: 8 x 640x480 is 7 MB of the car's memory).
        model_version, training_distribution: recorded in the session row.
        reconcile_force: allow reconciliation to remove more than half the store.
        retry_s: how long logging stays paused after a disk error before trying again.
        wait_when_full: block the caller while the queue is full instead of dropping the sample
            (for sources that are not live: nothing is lost, the replay just slows down).
    """

    name = "log"

    def __init__(self, root: Path | str, policy: LogPolicy, labels: list[str], *,
                 session_id: str | None = None, roi: tuple[float, float, float, float] = (0, 0, 1, 1),
                 roi_only: bool = False, fmt: str = "jpeg", quality: int = 90,
                 max_bytes: int | None = None, min_free: int | None = None, queue_size: int = DEFAULT_QUEUE,
                 model_version: str = "", training_distribution: dict[str, float] | None = None,
                 reconcile_force: bool = False, retry_s: float = 1.0, wait_when_full: bool = False) -> None:
        if fmt not in FORMATS:
            raise UserError(f"sample log: format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        if not 1 <= quality <= 100:
            raise UserError(f"sample log: quality must be 1-100, got {quality}")
        if queue_size < 1:
            raise UserError(f"sample log: queue_size must be >= 1, got {queue_size}")
        self.engine = PolicyEngine(policy)
        self.labels = list(labels)
        self.session_id = session_id or new_session_id()
        self.roi = tuple(float(v) for v in roi)
        self.roi_only = roi_only
        self.fmt, self.quality = fmt, quality
        self.max_bytes, self.min_free = max_bytes, min_free
        self.retry_s = retry_s
        self.wait_when_full = wait_when_full
        self.shadow: ShadowRunner | None = None
        self.root = Path(root)
        self._reconcile_force = reconcile_force
        self._session_fields = {"started": time.time(), "model_version": model_version, "labels": self.labels,
                                "training_distribution": training_distribution or {}, "frames": 0}
        self.store: SampleStore | None = None
        self.reconcile_report = ReconcileReport()
        self.open_failures = 0    # tries to open a store whose folder or disk refused writes
        self.predictions: Counter[str] = Counter()
        self.frames = 0
        self.enqueued = 0
        self.written = 0
        self.dropped = 0          # queue full
        self.lost_disk = 0        # disk full / read-only / I/O error while writing
        self.skipped_full = 0     # quota reached and nothing of low enough priority to evict
        self.evicted = 0
        self.paused = False
        self._full_warned = False
        self._retry_at = 0.0
        self._write_s = 0.0
        self._queue: queue.Queue[_Pending | None] = queue.Queue(maxsize=queue_size)
        self._stopped = False
        try:
            self._open_store()
        except StoreUnavailable as error:
            # a car with an unusable log folder still drives: log once, retry from the writer
            self.open_failures, self.paused = 1, True
            self._retry_at = time.monotonic() + self._open_retry_s
            log.warning("sample logging off: %s; inference goes on, logging starts when it can "
                        "(retried every %g s)", error, self._open_retry_s)
        # called in the writer thread with (pixels, channel order, meta) after each sample is stored
        # (the live view keeps thumbnails); a listener must be quick and must not raise
        self.on_written: list[Callable[[np.ndarray, str, dict[str, Any]], None]] = []
        self._writer = threading.Thread(target=self._write_loop, name="edgekit-samplelog", daemon=True)
        self._writer.start()

    @property
    def _open_retry_s(self) -> float:
        return 10 * self.retry_s  # opening reconciles the whole store: not every second

    def _open_store(self) -> None:
        """Open (or create) and reconcile the store and record this session.

        StoreUnavailable when the folder or disk refuses writes; other UserErrors (the store is
        locked by another process, reconciling would delete most of it) pass through.
        """
        store = SampleStore(self.root, create=True, lock=True)
        try:
            self.reconcile_report = store.reconcile(force=self._reconcile_force)
            store.save_session(self.session_id, **self._session_fields)
        except (OSError, sqlite3.OperationalError) as error:
            store.close()
            raise StoreUnavailable(self.root, error) from error
        except BaseException:
            store.close()
            raise
        report = self.reconcile_report
        if report.rows_missing_file or report.orphans_removed or report.reindexed:
            log.warning("sample store %s reconciled: %s", self.root, report.to_dict())
        self.store = store

    def _retry_open(self, now: float) -> bool:
        """In the writer thread: try again to open a store that was unusable; True once open."""
        try:
            self._open_store()
        except UserError:
            self.open_failures += 1
            self._retry_at = now + self._open_retry_s
            return False
        self.paused = False
        log.warning("sample logging started in %s after %d failed tries", self.root, self.open_failures)
        return True

    def attach_shadow(self, predict, labels: list[str], version: str, prepare=None) -> ShadowRunner:
        """Run a shadow model beside the primary; frames where top-1 differs are logged."""
        self.shadow = ShadowRunner(predict, labels, version, self._on_shadow_verdict, prepare)
        return self.shadow

    # --- inference thread ----------------------------------------------------------------

    def on_result(self, frame: Frame, model_input: np.ndarray, result: Result) -> None:
        self.frames += 1
        self.predictions[result.label] += 1
        reasons = self.engine.reasons(result.confidence)
        if self.shadow is not None and self.shadow.submit(frame, model_input, result, reasons):
            return  # the shadow thread decides, with its verdict added
        self._decide(frame, result, reasons, {})

    def _on_shadow_verdict(self, frame: Frame, result: Result, reasons: list[str], info: dict[str, Any]) -> None:
        self._decide(frame, result, reasons, info)

    def _decide(self, frame: Frame, result: Result, reasons: list[str], extra: dict[str, Any]) -> None:
        if not reasons or self._stopped or not self.engine.admit(result.label, reasons, frame.timestamp):
            return
        pixels = crop_roi(frame.pixels, self.roi) if self.roi_only else frame.pixels
        height, width = frame.pixels.shape[:2]
        meta = {
            "session_id": self.session_id, "frame_index": int(frame.index),
            "capture_time": float(frame.timestamp), "logged_time": time.time(),
            "reasons": ",".join(reasons), "priority": max(PRIORITY[r] for r in reasons),
            "model_version": result.model_version, "label": result.label,
            "confidence": round(float(result.confidence), 6),
            "probabilities": [round(float(p), 6) for p in np.asarray(result.probabilities).reshape(-1)],
            "labels": self.labels, "roi": list(self.roi), "roi_only": int(self.roi_only),
            "frame_width": int(width), "frame_height": int(height), "truth": frame.truth, **extra,
        }
        # No copy: a frame's pixels are never written once it is made (see edge.frame.Frame),
        # and a source that reuses buffers reuses only those nothing refers to any more.
        item = _Pending(pixels, meta, frame.order)
        while True:
            try:
                self._queue.put(item, timeout=1.0) if self.wait_when_full else self._queue.put_nowait(item)
                self.enqueued += 1
                return
            except queue.Full:
                if not self.wait_when_full or self._stopped or not self._writer.is_alive():
                    self.dropped += 1
                    return

    # --- writer thread -------------------------------------------------------------------

    def _write_loop(self) -> None:
        yield_cpu_to_inference()
        next_session_save = time.monotonic() + _SESSION_SAVE_S
        while True:
            try:
                item = self._queue.get(timeout=1.0)
            except queue.Empty:
                item = ...
            if item is None:
                break
            if item is not ...:
                start = time.perf_counter()
                try:
                    self._write(item)
                finally:
                    self._write_s += time.perf_counter() - start
                    self._queue.task_done()
            if time.monotonic() >= next_session_save:
                self._save_predictions()
                next_session_save = time.monotonic() + _SESSION_SAVE_S
        self._save_predictions()

    def _write(self, item: _Pending) -> None:
        now = time.monotonic()
        if self.store is None and (now < self._retry_at or not self._retry_open(now)):
            self.lost_disk += 1
            return
        if self.paused and now < self._retry_at:
            self.lost_disk += 1
            return
        data = encode_image(item.image, item.meta, self.fmt, self.quality, item.order)
        name = f"{item.meta['frame_index']:09d}{FORMATS[self.fmt]}"
        try:
            if self.max_bytes is not None or self.min_free is not None:
                self.evicted += len(self.store.make_room(len(data), item.meta["priority"],
                                                         self.max_bytes, self.min_free))
            self.store.add(data, item.meta, name)
        except StoreFull as full:
            self.skipped_full += 1
            if not self._full_warned:
                self._full_warned = True
                log.warning("sample store full (%s): samples of this priority are not logged until "
                            "space returns; inference goes on", full)
            return
        except (OSError, sqlite3.OperationalError) as error:
            if isinstance(error, OSError) and error.errno not in _DISK_ERRNOS:
                raise
            self.lost_disk += 1
            self._retry_at = now + self.retry_s
            if not self.paused:
                self.paused = True
                log.warning("sample logging paused: cannot write to %s (%s); inference goes on, "
                            "logging resumes when the disk accepts writes again", self.store.root, error)
            return
        self.written += 1
        for listener in self.on_written:
            listener(item.image, item.order, item.meta)
        self._full_warned = False
        if self.paused:
            self.paused = False
            log.warning("sample logging resumed in %s", self.store.root)

    def _save_predictions(self) -> None:
        if self.store is None:
            return
        try:
            self.store.save_session(self.session_id, predictions=dict(self.predictions), frames=self.frames)
        except (OSError, sqlite3.OperationalError):
            pass  # a full disk: the counts are saved on a later try

    # --- Part ------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        stats = {"logged": self.written, "log_enqueued": self.enqueued, "log_dropped": self.dropped,
                 "log_queue": self._queue.qsize(), "log_write_per_s": round(self.write_throughput(), 1),
                 "log_lost": self.lost_disk, "log_full": self.skipped_full, "evicted": self.evicted,
                 "rate_limited": self.engine.rate_limited,
                 "store_mb": round(self.store.total_bytes / 1e6, 2) if self.store else 0.0}
        if self.open_failures:
            stats["log_open_failed"] = self.open_failures
        if self.paused:
            stats["log_paused"] = True
        if self.shadow is not None:
            stats.update(self.shadow.stats())
        return stats

    def write_throughput(self) -> float:
        """Samples written per second of writer time."""
        return self.written / self._write_s if self._write_s else 0.0

    def shutdown(self, timeout: float = 30.0) -> None:
        """Let the shadow finish, drain the queue, save the session and close the store."""
        if self._stopped:
            return
        if self.shadow is not None:
            self.shadow.shutdown()
        self._stopped = True
        self._queue.put(None)
        self._writer.join(timeout)
        if not self._writer.is_alive() and self.store is not None:
            self.store.close()
