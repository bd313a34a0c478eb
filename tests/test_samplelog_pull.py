"""Getting samples off the car: samples stats/list/export, and a resumable, deduplicating pull."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from edge.frame import Frame
from edge.samplelog.logger import SampleLogger
from edge.samplelog.policies import LogPolicy
from edge.samplelog.store import SampleStore
from tests.conftest import ROOT, run_edgekit
from tests.test_samplelog_store import LABELS, make_result

TRAINING = {"green": 0.25, "none": 0.25, "red": 0.25, "yellow": 0.25}


@pytest.fixture(scope="module")
def car_store(tmp_path_factory):
    """A car's store: two sessions, 150 samples each, all predicted 'red'."""
    root = tmp_path_factory.mktemp("car") / "samples"
    rng = np.random.default_rng(0)
    for session in ("s1", "s2"):
        logger = SampleLogger(root, LogPolicy(low_confidence=0.6, random_rate=0.5, seed=1), LABELS,
                              session_id=session, fmt="png", model_version="lights:v1",
                              training_distribution=TRAINING, queue_size=1000)
        for index in range(150):
            image = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
            frame = Frame(image, timestamp=1000.0 + index, index=index, monotonic=0.0)
            confidence = 0.5 if index % 3 else 0.9
            logger.on_result(frame, None, make_result(index, confidence=confidence))
        logger.shutdown()
    return root


def content(root) -> list[tuple]:
    with SampleStore(root, readonly=True) as store:
        return sorted((r["sha256"], r["session_id"], r["frame_index"], r["reasons"], r["label"], r["file"])
                      for r in store.rows())


def test_stats_list_export_on_the_device(car_store, tmp_path):
    stats = run_edgekit("samples", "stats", str(car_store), "--json", check=True)
    summary = json.loads(stats.stdout)
    assert summary["samples"] == len(content(car_store))
    assert summary["by_class"] == {"red": summary["samples"]} and set(summary["by_reason"]) == {"low_confidence", "random"}
    assert sum(summary["confidence_histogram"]["counts"]) == summary["samples"]
    session = summary["sessions"][0]
    assert session["predicted"] == {"red": 1.0} and session["drift"] == 0.75 and session["drift_warning"]
    text = run_edgekit("samples", "stats", str(car_store), check=True).stdout
    assert "WARNING: predictions drift" in text and "confidence histogram" in text
    listed = run_edgekit("samples", "list", str(car_store), "--session", "s2", "--reason", "random",
                         "--json", "--limit", "5", check=True).stdout.splitlines()
    rows = [json.loads(line) for line in listed]
    assert len(rows) == 5 and all(r["session_id"] == "s2" and "random" in r["reasons"] for r in rows)
    tar = tmp_path / "s1.tar"
    run_edgekit("samples", "export", str(car_store), str(tar), "--session", "s1", check=True)
    pulled = run_edgekit("pull", str(tar), str(tmp_path / "host"), "--json", check=True)
    counts = json.loads(pulled.stdout)
    assert counts["new"] == len([c for c in content(car_store) if c[1] == "s1"]) and counts["duplicates"] == 0
    bad = run_edgekit("samples", "stats", str(tmp_path / "nowhere"))
    assert bad.returncode == 1 and "not a sample store" in bad.stderr and "Traceback" not in bad.stderr


def test_pull_is_idempotent_deduplicated_and_resumable(car_store, tmp_path):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    first = json.loads(run_edgekit("pull", str(car_store), str(whole), "--json", check=True).stdout)
    again = json.loads(run_edgekit("pull", str(car_store), str(whole), "--json", check=True).stdout)
    assert first["new"] == first["source_rows"] > 100 and again["new"] == 0 and again["duplicates"] == first["new"]

    process = subprocess.Popen([sys.executable, "-m", "edge.cli", "pull", str(car_store), str(resumed), "--json"],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    copied = 0
    while process.poll() is None:
        try:
            with sqlite3.connect(f"file:{resumed / 'samples.db'}?mode=ro", uri=True, timeout=0.1) as db:
                copied = db.execute("SELECT count(*) FROM samples").fetchone()[0]
        except sqlite3.Error:
            pass
        if copied >= 20:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    process.wait()
    assert 20 <= copied < first["new"], "the pull should have been interrupted mid-way"
    rerun = json.loads(run_edgekit("pull", str(car_store), str(resumed), "--json", check=True).stdout)
    assert rerun["dest_rows"] == first["new"]
    assert content(resumed) == content(whole) == content(car_store)      # no duplicates, no holes
    with SampleStore(resumed) as store:
        assert store.check()["ok"]
        assert len({r["sha256"] for r in store.rows()}) == store.count()
        assert {s["session_id"] for s in store.sessions()} == {"s1", "s2"}


def test_pull_rejects_a_wrong_source(tmp_path):
    result = run_edgekit("pull", str(tmp_path), str(tmp_path / "host"))
    assert result.returncode == 1 and "not a sample store" in result.stderr
