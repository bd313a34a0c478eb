"""Fault replays: the car keeps driving when its log folder is unusable at start (issue 14, item 5).

Read-only folder, a store on a filesystem mounted read-only, a full disk before the store
exists, a file where the folder should be: `edgekit run` logs one line, infers every
frame, counts the lost samples and the failed opens in its stats line, and exits 0.
"""

from __future__ import annotations

import subprocess
import time

import numpy as np
import pytest

from edge.frame import Frame, Result
from edge.samplelog.logger import SampleLogger
from edge.samplelog.policies import LogPolicy
from edge.samplelog.store import SampleStore
from tests.conftest import run_edgekit
from tests.faults.stores import fill, make_store, read_only_view, small_tmpfs
from tests.tiny_bundles import LABELS, float_tflite, write_bundle

FRAMES = 60


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return write_bundle(tmp_path_factory.mktemp("bundle") / "v0001", float_tflite(0), name="lights")


def drive(bundle, log_dir) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    result = run_edgekit("run", "--bundle", str(bundle), "--source", "synthetic", "--quiet", "--threads", "1",
                         "--size", "160x120", "--frames", str(FRAMES), "--log-dir", str(log_dir),
                         "--log-random", "1", timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.startswith("stats")]
    stats = dict(item.split("=", 1) for item in lines[-1].split()[1:]) if lines else {}
    return result, stats


def assert_drove_without_logging(result, stats, record_property) -> None:
    record_property("data_lost", 0)  # nothing was stored before, nothing stored is touched
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert int(stats["frames"]) == FRAMES, stats                      # every frame inferred
    assert result.stderr.count("sample logging off") == 1, result.stderr
    assert int(stats["log.log_open_failed"]) >= 1 and int(stats["log.logged"]) == 0
    assert int(stats["log.log_lost"]) > 0                             # the lost samples are counted


@pytest.mark.fault("car start: log folder unusable")
def test_log_folder_on_a_read_only_filesystem(bundle, tmp_path, record_property):
    (tmp_path / "card").mkdir()
    with read_only_view(tmp_path / "card", tmp_path / "ro") as mount:
        result, stats = drive(bundle, mount / "samples")
    assert_drove_without_logging(result, stats, record_property)


@pytest.mark.fault("car start: log folder unusable")
def test_existing_store_on_a_filesystem_remounted_read_only(bundle, tmp_path, record_property):
    make_store(tmp_path / "card" / "samples", 3)
    with read_only_view(tmp_path / "card", tmp_path / "ro") as mount:
        result, stats = drive(bundle, mount / "samples")
    assert_drove_without_logging(result, stats, record_property)
    with SampleStore(tmp_path / "card" / "samples", readonly=True) as store:
        assert store.count() == 3 and store.check()["ok"]            # the old samples are intact


@pytest.mark.fault("car start: log folder unusable")
def test_full_disk_before_the_store_exists(bundle, tmp_path, record_property):
    with small_tmpfs(tmp_path / "card", "256k") as mount:
        fill(mount)
        result, stats = drive(bundle, mount / "samples")
    assert_drove_without_logging(result, stats, record_property)


@pytest.mark.fault("car start: log folder unusable")
def test_a_file_where_the_log_folder_should_be(bundle, tmp_path, record_property):
    (tmp_path / "samples").write_text("not a folder")
    result, stats = drive(bundle, tmp_path / "samples")
    assert_drove_without_logging(result, stats, record_property)
    assert (tmp_path / "samples").read_text() == "not a folder"


def _result(index: int) -> Result:
    probabilities = np.array([0.1, 0.2, 0.5, 0.2], np.float32)
    return Result(frame_index=index, capture_time=1000.0 + index, label="red", confidence=0.5,
                  probabilities=probabilities, top_k=[("red", 0.5)], latency_ms=1.0, inference_ms=1.0,
                  model_version="m:v1")


@pytest.mark.fault("car start: log folder unusable")
def test_logging_starts_once_the_folder_accepts_writes(tmp_path, record_property):
    (tmp_path / "card").mkdir()
    with read_only_view(tmp_path / "card", tmp_path / "ro") as mount:
        logger = SampleLogger(mount / "samples", LogPolicy(random_rate=1.0, seed=0), LABELS, retry_s=0.02,
                              fmt="png", session_id="s1")
        try:
            assert logger.store is None and logger.stats()["log_paused"]
            feed = iter(range(10_000))
            for index in feed:  # read-only: lost, counted
                logger.on_result(Frame(np.zeros((8, 8, 3), np.uint8), 1000.0 + index, index, 0.0), None,
                                 _result(index))
                if logger.stats()["log_lost"] >= 3:
                    break
                time.sleep(0.01)
            subprocess.run(["mount", "-o", "remount,bind,rw", str(mount)], check=True)
            deadline = time.monotonic() + 10
            for index in feed:
                logger.on_result(Frame(np.zeros((8, 8, 3), np.uint8), 1000.0 + index, index, 0.0), None,
                                 _result(index))
                if logger.written >= 5 or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
        finally:
            logger.shutdown()
        stats = logger.stats()  # after the queue drained
        record_property("data_lost", 0)
        assert stats["logged"] >= 5 and stats["log_open_failed"] >= 1 and "log_paused" not in stats
        with SampleStore(mount / "samples", readonly=True) as store:
            assert store.count() == stats["logged"] and store.check()["ok"]
            assert [s["session_id"] for s in store.sessions()] == ["s1"]
