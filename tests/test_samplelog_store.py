"""Sample store: crash-safe writes, reconciliation, eviction order, policies, metadata in files."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edge.errors import UserError
from edge.frame import Frame, Result
from edge.samplelog.imagefile import decode_image, encode_image, read_metadata
from edge.samplelog.policies import LogPolicy, PolicyEngine
from edge.samplelog.store import SampleStore

LABELS = ["green", "none", "red", "yellow"]


def make_frame(index: int, t: float | None = None, size=(24, 32)) -> Frame:
    rng = np.random.default_rng(index)
    image = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
    return Frame(image, timestamp=t if t is not None else 1000.0 + index, index=index,
                 monotonic=float(index), truth="red")


def make_result(index: int, label: str = "red", confidence: float = 0.9, version: str = "m:v1") -> Result:
    probabilities = np.full(len(LABELS), (1 - confidence) / (len(LABELS) - 1), np.float32)
    probabilities[LABELS.index(label)] = confidence
    return Result(frame_index=index, capture_time=1000.0 + index, label=label, confidence=confidence,
                  probabilities=probabilities, top_k=[(label, confidence)], latency_ms=1.0,
                  inference_ms=1.0, model_version=version)


def meta(index: int, reasons: str = "random", priority: int = 0, t: float | None = None) -> dict:
    return {"session_id": "s1", "frame_index": index, "capture_time": t if t is not None else float(index),
            "reasons": reasons, "priority": priority, "label": "red", "confidence": 0.5,
            "probabilities": [0.1, 0.2, 0.5, 0.2], "labels": LABELS, "roi": [0, 0, 1, 1]}


def add_sample(store: SampleStore, index: int, **kwargs) -> int:
    m = meta(index, **kwargs)
    data = encode_image(np.full((16, 16, 3), index % 255, np.uint8), m, "png")
    return store.add(data, m, f"{index:09d}.png")


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_metadata_rides_inside_the_image(fmt):
    image = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    data = encode_image(image, {"session_id": "s", "label": "red", "p": [0.25, 0.75]}, fmt, quality=95)
    assert read_metadata(data) == {"session_id": "s", "label": "red", "p": [0.25, 0.75]}
    decoded = decode_image(data)
    assert decoded.shape == image.shape
    if fmt == "png":
        np.testing.assert_array_equal(decoded, image)
        # a frame that came B,G,R from the camera is stored with the same colours, no conversion first
        from_bgr = encode_image(np.ascontiguousarray(image[..., ::-1]), {"k": 1}, fmt, order="bgr")
        np.testing.assert_array_equal(decode_image(from_bgr), image)
    assert read_metadata(b"not an image") is None


def test_rows_round_trip_and_check(tmp_path):
    store = SampleStore(tmp_path / "s", create=True)
    row_id = add_sample(store, 7, reasons="low_confidence", priority=1)
    (row,) = list(store.rows())
    assert row["id"] == row_id and row["probabilities"] == [0.1, 0.2, 0.5, 0.2] and row["labels"] == LABELS
    assert store.read_image(row).shape == (16, 16, 3)
    assert store.check()["ok"]
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_wrong_path_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not a sample store"):
        SampleStore(tmp_path / "nowhere")


def test_reconcile_removes_rows_without_files_and_reindexes_orphans(tmp_path):
    store = SampleStore(tmp_path / "s", create=True)
    for index in range(6):
        add_sample(store, index)
    rows = list(store.rows())
    store.path_of(rows[0]).unlink()                                    # row without file
    store.db.execute("DELETE FROM samples WHERE id = ?", (rows[1]["id"],))  # file without row (has metadata)
    folder = tmp_path / "s" / "images" / "s1"
    (folder / "junk.jpg").write_bytes(b"no metadata")                  # file without row or metadata
    (folder / "000000009.png.tmp").write_bytes(b"half written")        # interrupted write
    report = store.reconcile()
    assert (report.rows_missing_file, report.reindexed, report.orphans_removed, report.temp_removed) == (1, 1, 1, 1)
    assert store.count() == 5 and store.check()["ok"]
    assert not (folder / "junk.jpg").exists() and not (folder / "000000009.png.tmp").exists()
    store.close()


def test_reconcile_refuses_to_remove_most_of_the_store(tmp_path):
    store = SampleStore(tmp_path / "s", create=True)
    for index in range(4):
        add_sample(store, index)
    for row in list(store.rows())[:3]:
        store.path_of(row).unlink()
    with pytest.raises(UserError, match="Nothing was deleted"):
        store.reconcile()
    assert store.count() == 4
    assert store.reconcile(force=True).rows_missing_file == 3
    store.close()


def test_eviction_order_random_oldest_first_never_above_the_newcomer(tmp_path):
    from edge.samplelog.store import StoreFull

    store = SampleStore(tmp_path / "s", create=True)
    add_sample(store, 1, reasons="low_confidence", priority=1, t=1.0)
    add_sample(store, 2, reasons="random", priority=0, t=5.0)
    add_sample(store, 3, reasons="random", priority=0, t=2.0)
    add_sample(store, 4, reasons="disagreement", priority=1, t=3.0)
    add_sample(store, 5, reasons="manual", priority=2, t=0.5)
    evicted_order = []
    for _ in range(4):  # each time one more byte than the quota allows: exactly one sample goes
        ids = store.make_room(1, priority=1, max_bytes=store.total_bytes, min_free=None)
        assert len(ids) == 1
        evicted_order.append(ids[0])
    assert evicted_order == [3, 2, 1, 4]            # random oldest first, then low-conf/disagreement by age
    with pytest.raises(StoreFull):                  # only the manual sample is left: above priority 1
        store.make_room(1, priority=1, max_bytes=store.total_bytes, min_free=None)
    assert [row["frame_index"] for row in store.rows()] == [5]
    assert store.check()["ok"] and store.total_bytes == store.path_of(next(store.rows())).stat().st_size
    store.close()


def test_min_interval_and_quota_per_class_hour():
    engine = PolicyEngine(LogPolicy(random_rate=1.0, min_interval=1.0, quota_per_class_hour=2))
    admitted = [engine.admit("red", ["random"], t) for t in (0.0, 0.5, 1.0, 2.0, 3.0)]
    assert admitted == [True, False, True, False, False]
    assert engine.admit("green", ["random"], 4.0)
    assert engine.admit("red", ["random"], 3600.0)                     # the hour has passed
    assert engine.admit("red", ["manual"], 3600.1)                     # manual bypasses the limits


def test_policies_combine_and_manual_file_marks_next_frames(tmp_path):
    trigger = tmp_path / "log-now"
    engine = PolicyEngine(LogPolicy(low_confidence=0.6, manual_frames=2, manual_file=trigger, seed=1))
    assert engine.reasons(0.5) == ["low_confidence"] and engine.reasons(0.9) == []
    trigger.touch()
    engine._next_file_check = 0.0
    assert engine.reasons(0.5) == ["low_confidence", "manual"]
    assert engine.reasons(0.9) == ["manual"] and engine.reasons(0.9) == []
    assert not trigger.exists()
    rates = PolicyEngine(LogPolicy(random_rate=0.1, seed=3))
    hits = sum(bool(rates.reasons(0.9)) for _ in range(5000))
    assert 400 < hits < 600
    with pytest.raises(UserError):
        LogPolicy(random_rate=1.5)


def test_logger_writes_rows_with_everything_a_retrain_needs(tmp_path):
    from edge.samplelog.logger import SampleLogger

    logger = SampleLogger(tmp_path / "s", LogPolicy(low_confidence=0.6), LABELS, session_id="run1",
                          roi=(0.25, 0.0, 0.5, 0.5), roi_only=True, model_version="m:v1",
                          training_distribution={"red": 0.5, "green": 0.5})
    for index in range(10):
        logger.on_result(make_frame(index), None, make_result(index, confidence=0.5 if index % 2 else 0.9))
    logger.shutdown()
    assert logger.stats()["logged"] == 5 and logger.stats()["log_dropped"] == 0
    store = SampleStore(tmp_path / "s", readonly=True)
    rows = list(store.rows())
    assert [r["frame_index"] for r in rows] == [1, 3, 5, 7, 9]
    row = rows[0]
    assert row["reasons"] == "low_confidence" and row["model_version"] == "m:v1" and row["session_id"] == "run1"
    assert (row["frame_width"], row["frame_height"], row["roi_only"]) == (32, 24, 1)
    assert store.read_image(row).shape == (12, 16, 3)              # the ROI crop
    session = store.sessions()[0]
    assert session["predictions"] == {"red": 10} and session["training_distribution"]["red"] == 0.5
    store.close()


def test_a_stalled_disk_never_stalls_the_frames(tmp_path):
    from edge.samplelog.logger import SampleLogger

    logger = SampleLogger(tmp_path / "s", LogPolicy(random_rate=1.0), LABELS, queue_size=4)
    slow_add = logger.store.add

    def stalled(*args, **kwargs):
        time.sleep(0.2)
        return slow_add(*args, **kwargs)

    logger.store.add = stalled
    start = time.perf_counter()
    for index in range(200):
        logger.on_result(make_frame(index), None, make_result(index))
    elapsed = time.perf_counter() - start
    stats = logger.stats()
    logger.shutdown()
    assert elapsed < 0.2 * 10          # 200 frames took less than the writer needs for 10 samples
    assert stats["log_dropped"] >= 190 and logger.dropped + logger.written == 200
    assert logger.written >= 4


def test_a_replayed_source_waits_for_a_stalled_disk_and_loses_nothing(tmp_path):
    """Issue 13.4: a non-live source applies back-pressure instead of dropping samples."""
    from edge.samplelog.logger import SampleLogger

    logger = SampleLogger(tmp_path / "s", LogPolicy(random_rate=1.0), LABELS, queue_size=1, wait_when_full=True)
    slow_add = logger.store.add

    def stalled(*args, **kwargs):
        time.sleep(0.02)
        return slow_add(*args, **kwargs)

    logger.store.add = stalled
    for index in range(30):
        logger.on_result(make_frame(index), None, make_result(index))
    logger.shutdown()
    assert logger.dropped == 0 and logger.written == 30


def test_run_on_a_replayed_drive_logs_every_admitted_frame(tmp_path):
    """`edgekit run` on a non-live source: log.logged == frames, log.log_dropped == 0 (was 36 / 185)."""
    from tests.conftest import run_edgekit
    from tests.tiny_bundles import float_tflite, write_bundle

    bundle = write_bundle(tmp_path / "bundle", float_tflite())
    result = run_edgekit("run", "--bundle", str(bundle), "--source", "synthetic:seed=1,frames=120", "--size",
                         "960x540", "--quiet", "--log-dir", str(tmp_path / "log"), "--log-random", "1",
                         "--log-format", "png", "--log-queue", "1", check=True)
    final = [line for line in result.stderr.splitlines() if line.startswith("stats ")][-1]
    assert " log.logged=120 " in final and " log.log_dropped=0 " in final, final


def test_flags_and_toml_table_merge_into_typed_options(tmp_path):
    import argparse

    from edge.samplelog.flags import add_arguments, merge_flags
    from edge.samplelog.options import coerce_options
    from edge.sizes import parse_bytes

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--log-dir", str(tmp_path), "--log-random", "0.1", "--log-roi-only"])
    parts = {"samplelog": {"low-confidence": "0.6", "random": 0.5, "max_bytes": "2G"}}   # TOML / --part text
    merge_flags(args, parts)
    options = coerce_options(parts["samplelog"])
    assert options["random"] == 0.1 and options["low_confidence"] == 0.6 and options["roi_only"] is True
    assert parse_bytes(options["max_bytes"]) == 2_000_000_000 and parse_bytes("500k") == 500_000
    with pytest.raises(UserError, match="unknown sample-log setting"):
        coerce_options({"low_confidense": 0.5})
    with pytest.raises(UserError, match="cannot read the size"):
        parse_bytes("lots")


def test_sigusr1_marks_the_next_frames(tmp_path):
    import os
    import signal

    from edge.samplelog.options import build_logger

    previous = signal.getsignal(signal.SIGUSR1)
    logger = build_logger({"dir": tmp_path / "s", "manual_frames": 3}, LABELS, "m:v1")
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        for index in range(6):
            logger.on_result(make_frame(index), None, make_result(index))
        logger._queue.join()
        assert logger.written == 3
    finally:
        logger.shutdown()
        signal.signal(signal.SIGUSR1, previous)
    with SampleStore(tmp_path / "s", readonly=True) as store:
        assert [(r["frame_index"], r["reasons"]) for r in store.rows()] == [(0, "manual"), (1, "manual"), (2, "manual")]
