"""tf.distribute: two multi-worker processes on localhost train together (an .npz and shard sets)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_train_training import TINY_SPEC, tiny_dataset


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _train_on_two_workers(tmp_path: Path, data: Path, epochs: int, batch_size: int) -> tuple[list[str], Path]:
    """Both workers' stdout and the chief's run folder, after checking both exited 0 as 2 workers and
    that only the chief wrote a run folder."""
    (tmp_path / "tiny.json").write_text(json.dumps(TINY_SPEC))
    cluster = {"worker": [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]}
    workers = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
               "TF_CPP_MIN_LOG_LEVEL": "2"}
        command = [sys.executable, "-m", "edge.cli", "train", str(data), "--model", str(tmp_path / "tiny.json"),
                   "--epochs", str(epochs), "--batch-size", str(batch_size), "--quiet", "--strategy", "multi-worker",
                   "--out", str(tmp_path / f"run-{index}"),
                   "--verbose"]  # TensorFlow's "num_workers = 2" is an INFO line, hidden without --verbose
        workers.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True))
    outputs = []
    for worker in workers:
        try:
            outputs.append(worker.communicate(timeout=240))
        finally:
            worker.kill()
    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr[-3000:]
    assert "num_workers = 2" in outputs[0][1]
    chief = tmp_path / "run-0"
    assert (chief / "model.keras").exists() and (chief / "summary.json").exists()
    assert not (tmp_path / "run-1").exists()  # only the chief writes the run folder
    # both workers report the same (all-reduced) figures
    stdouts = [out for out, _ in outputs]
    assert stdouts[0].split("Min Loss:")[1].split()[0] == stdouts[1].split("Min Loss:")[1].split()[0]
    return stdouts, chief


@pytest.mark.slow
def test_two_workers_on_localhost_train_one_epoch(tmp_path):
    tiny_dataset(n=64).save(tmp_path / "tiny.npz")
    _, chief = _train_on_two_workers(tmp_path, tmp_path / "tiny.npz", epochs=1, batch_size=16)
    assert len(json.loads((chief / "history.json").read_text())["loss"]) == 1


@pytest.mark.slow
@pytest.mark.parametrize("records_per_shard", [8, 64])  # 8 files: workers share files; 1 file: they share records
def test_two_workers_train_on_a_shard_set(tmp_path, records_per_shard):
    from train.data.shards import write_dataset

    write_dataset(tiny_dataset(n=64), tmp_path / "tiny.shards", records_per_shard=records_per_shard)
    _, chief = _train_on_two_workers(tmp_path, tmp_path / "tiny.shards", epochs=2, batch_size=8)
    run = json.loads((chief / "run.json").read_text())
    assert run["dataset_sha256"] and len(json.loads((chief / "history.json").read_text())["loss"]) == 2
