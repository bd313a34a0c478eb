"""The sample log under abuse: kill -9 mid-write, a full disk, a read-only disk, a shadow model.

These run the real `edgekit run` on a synthetic drive with real tiny bundles.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edge.samplelog.logger import SampleLogger
from edge.samplelog.policies import LogPolicy
from edge.samplelog.store import SampleStore
from tests.conftest import ROOT, run_edgekit
from tests.test_samplelog_store import make_frame, make_result
from tests.tiny_bundles import LABELS, float_tflite, write_bundle

TRAINING_DISTRIBUTION = {"green": 0.3, "none": 0.2, "red": 0.3, "yellow": 0.2}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundles")
    return make_bundle(folder / "primary", seed=0), make_bundle(folder / "shadow", seed=1, version="v0002")


def make_bundle(folder: Path, seed: int, version: str = "v0001") -> Path:
    """A bundle whose model disagrees with other seeds', with a training distribution for drift checks."""
    return write_bundle(folder, float_tflite(seed), name=f"lights{seed}", version=version, roi=(0.25, 0, 0.5, 0.5),
                        training_distribution=TRAINING_DISTRIBUTION)


def run_args(bundle: Path, store: Path, *extra: str) -> list[str]:
    return ["run", "--bundle", str(bundle), "--source", "synthetic", "--quiet", "--threads", "1",
            "--size", "160x120", "--log-dir", str(store), *extra]


def reopen_and_check(store_root: Path) -> tuple[dict, dict, list[dict]]:
    """What the next start does (lock + reconcile), then the integrity checks."""
    with SampleStore(store_root, lock=True) as store:
        report = store.reconcile().to_dict()
        check = store.check()
        rows = list(store.rows())
    return report, check, rows


@pytest.mark.slow
def test_kill_9_at_30_random_moments_never_damages_or_loses_stored_samples(bundles, tmp_path):
    primary, _ = bundles
    store = tmp_path / "store"
    rng = random.Random(6)
    command = [sys.executable, "-m", "edge.cli", *run_args(primary, store, "--log-random", "1",
                                                          "--log-queue", "4096", "--max-fps", "120")]
    totals = {"kills": 0, "temp_removed": 0, "reindexed": 0, "rows_missing_file": 0, "orphans_removed": 0}
    kept: set[tuple[str, int]] = set()
    for attempt in range(30):
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   text=True)
        if attempt % 6 == 5:  # now and then during start-up (store creation, reconciliation)
            time.sleep(rng.uniform(0.0, 0.6))
        else:                 # mostly while frames are being logged
            for line in process.stderr:
                if line.startswith("running on"):
                    break
            time.sleep(rng.uniform(0.05, 0.8))
        process.send_signal(signal.SIGKILL)
        process.stderr.close()
        process.wait()
        totals["kills"] += 1
        if not (store / "samples.db").exists():
            continue  # killed before the store was created
        report, check, rows = reopen_and_check(store)
        for key in ("temp_removed", "reindexed", "rows_missing_file", "orphans_removed"):
            totals[key] += report[key]
        assert check["integrity"] == "ok" and not check["missing"] and not check["corrupt"], check
        assert report["rows_missing_file"] == 0 and report["orphans_removed"] == 0, report
        now = {(row["session_id"], row["frame_index"]) for row in rows}
        assert kept <= now, "a sample stored before a kill is gone"
        kept = now
        by_session: dict[str, list[int]] = {}
        for session, index in now:
            by_session.setdefault(session, []).append(index)
        for indices in by_session.values():  # every frame was logged: only the tail may be missing
            assert sorted(indices) == list(range(len(indices))), "a hole: a sample was lost mid-stream"
    totals["rows"] = len(kept)
    totals["sessions"] = len({session for session, _ in kept})
    print("kill test:", json.dumps(totals))
    assert totals["rows"] > 100 and totals["sessions"] >= 20   # runs killed after logging began


def test_full_disk_pauses_logging_once_and_inference_goes_on(bundles, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs (the injected-ENOSPC test covers the logic)")
    primary, _ = bundles
    mount = tmp_path / "card"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)]).returncode:
        pytest.skip("cannot mount tmpfs here")
    first_run_newest = 0.0
    try:
        for floor in ([], ["--log-min-free", "600k"]):  # first without a free-space floor, then with one
            result = run_edgekit(*run_args(primary, mount / "store", "--log-random", "1", "--frames", "500",
                                           "--max-fps", "250", *floor), timeout=120)
            assert result.returncode == 0, result.stderr
            final = [line for line in result.stderr.splitlines() if line.startswith("stats")][-1]
            stats = dict(item.split("=", 1) for item in final.split()[1:])
            print("disk-full test", "floor" if floor else "no floor",
                  {k: stats[k] for k in stats if k.startswith("log.") or k == "frames"})
            assert int(stats["frames"]) == 500                       # inference went on
            report, check, rows = reopen_and_check(mount / "store")
            assert check["ok"], check
            if not floor:  # the card filled up: one warning, samples lost (counted), none damaged
                assert int(stats["log.log_lost"]) > 0 and int(stats["log.logged"]) > 0
                assert result.stderr.count("sample logging paused") == 1
                assert len(rows) == int(stats["log.logged"])
            else:          # old random samples evicted to keep the floor: logging goes on
                assert int(stats["log.evicted"]) > 0 and int(stats["log.logged"]) > 100
                assert min(r["capture_time"] for r in rows) > first_run_newest
            first_run_newest = max(r["capture_time"] for r in rows)
    finally:
        subprocess.run(["umount", str(mount)])


def feed(logger: SampleLogger, indices) -> None:
    """One frame at a time, each written (or refused) before the next, so the test knows
    which sample met which disk state."""
    for index in indices:
        logger.on_result(make_frame(index, size=(60, 80)), None, make_result(index))
        logger._queue.join()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS], ids=["disk-full", "read-only"])
def test_injected_disk_error_pauses_with_one_warning_then_resumes(code, tmp_path, monkeypatch, caplog):
    import edge.samplelog.store as store_module

    logger = SampleLogger(tmp_path / "store", LogPolicy(random_rate=1.0), LABELS, retry_s=0.05)
    real_write = store_module.atomic_write
    disk_full = True

    def write(path, data):
        if disk_full:
            raise OSError(code, os.strerror(code))
        real_write(path, data)

    monkeypatch.setattr(store_module, "atomic_write", write)
    feed(logger, range(0, 6))
    assert logger.written == 0 and logger.lost_disk == 6 and logger.paused
    assert sum("sample logging paused" in r.message for r in caplog.records) == 1
    disk_full = False
    time.sleep(0.06)
    feed(logger, range(6, 9))
    logger.shutdown()
    assert logger.written == 3 and not logger.paused
    assert any("resumed" in r.message for r in caplog.records)
    with SampleStore(tmp_path / "store") as store:
        assert store.check()["ok"] and store.count() == 3


def test_quota_evicts_random_samples_before_low_confidence_ones(tmp_path):
    logger = SampleLogger(tmp_path / "store", LogPolicy(low_confidence=0.6, random_rate=1.0, seed=0),
                          LABELS, fmt="png", max_bytes=250_000)
    rng = np.random.default_rng(0)
    for index in range(60):
        confidence = 0.4 if index % 4 == 0 else 0.9           # every 4th frame: low confidence too
        frame = make_frame(index, size=(60, 80))
        frame = type(frame)(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8), timestamp=float(index),
                            index=index, monotonic=0.0)
        logger.on_result(frame, None, make_result(index, confidence=confidence))
        logger._queue.join()  # no drops: this test is about eviction
    logger.shutdown()
    with SampleStore(tmp_path / "store") as store:
        rows = list(store.rows())
        assert store.total_bytes <= 250_000 and logger.evicted > 0
    low = [r["frame_index"] for r in rows if "low_confidence" in r["reasons"]]
    random_only = [r["frame_index"] for r in rows if r["reasons"] == "random"]
    assert low == list(range(0, 60, 4))                          # every low-confidence sample kept
    assert random_only == sorted(random_only) and random_only[-1] == 59   # the newest random ones kept
    assert min(random_only) > 4                                   # the oldest random ones went first


@pytest.mark.slow
def test_shadow_bundle_logs_disagreements_without_touching_the_primary(bundles, tmp_path):
    primary, shadow = bundles
    store = tmp_path / "store"
    alone = run_edgekit("run", "--bundle", str(primary), "--source", "synthetic", "--frames", "60",
                        "--size", "160x120", "--threads", "1", timeout=120)
    with_shadow = run_edgekit(*run_args(primary, store, "--shadow", str(shadow), "--frames", "60"), timeout=120)
    assert with_shadow.returncode == 0, with_shadow.stderr
    labels_alone = [json.loads(line)["label"] for line in alone.stdout.splitlines()]
    assert len(labels_alone) == 60
    final = [line for line in with_shadow.stderr.splitlines() if line.startswith("stats")][-1]
    assert "log.shadow_ms=" in final and "log.disagree=" in final
    with SampleStore(store, readonly=True) as opened:
        rows = list(opened.rows())
    assert rows, "two differently seeded models should disagree on some frames"
    for row in rows:
        assert row["reasons"] == "disagreement" and row["shadow_label"] != row["label"]
        assert row["shadow_version"] == "lights1:v0002" and row["model_version"] == "lights0:v0001"
        assert row["label"] == labels_alone[row["frame_index"]]     # the primary result is unchanged
