"""Streaming a shard set through tf.data (issue 18.2-3): each split record once per epoch, exact
pixels, and under the multi-worker strategy each worker reads only its share of the files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import run_edgekit
from train.data.dataset import Dataset
from train.data.shards import write_dataset
from train.training.pipeline import eval_dataset, train_dataset


def _distinct(n: int, size: int = 6) -> Dataset:
    """Random images (each different), labels by position, a group per pair."""
    rng = np.random.default_rng(4)
    return Dataset(rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), np.arange(n) % 3, ["a", "b", "c"],
                   np.arange(n) // 2, np.arange(n).astype(str))


def _record_numbers(images: np.ndarray, memory: Dataset) -> list[int]:
    where = {image.tobytes(): i for i, image in enumerate(memory.images)}
    return [where[image.astype(np.uint8).tobytes()] for image in images]


def test_the_training_stream_gives_each_split_record_once_per_epoch(tmp_path):
    memory = _distinct(90)
    shards = write_dataset(memory, tmp_path / "s.shards", records_per_shard=16)
    train_idx = np.sort(np.random.default_rng(0).choice(90, 50, replace=False))
    weights = {0: 3.0, 1: 1.0, 2: 0.5}
    stream = train_dataset(shards.images[train_idx], shards.labels[train_idx], 3, 8, seed=1, class_weight=weights)
    assert stream.cardinality() == 7  # ceil(50 / 8), known from the index
    epochs = []
    for _ in range(2):
        batches = list(stream.as_numpy_iterator())
        images = np.concatenate([b[0] for b in batches])
        numbers = _record_numbers(images, memory)
        assert sorted(numbers) == train_idx.tolist()  # every record of the split once, none from outside it
        onehot, weight = np.concatenate([b[1] for b in batches]), np.concatenate([b[2] for b in batches])
        assert np.array_equal(onehot.argmax(1), memory.labels[numbers])
        assert np.array_equal(weight, [weights[int(k)] for k in memory.labels[numbers]])
        epochs.append(numbers)
    assert epochs[0] != epochs[1]  # reshuffled each epoch
    in_memory = train_dataset(memory.images[train_idx], memory.labels[train_idx], 3, 8, seed=1, class_weight=weights)
    assert stream.element_spec == in_memory.element_spec  # the model cannot tell them apart
    val_idx = np.setdiff1d(np.arange(90), train_idx)
    val = list(eval_dataset(shards.images[val_idx], shards.labels[val_idx], 3, 8).as_numpy_iterator())
    assert _record_numbers(np.concatenate([b[0] for b in val]), memory) == val_idx.tolist()  # in order


@pytest.mark.parametrize(("per_shard", "policy"), [(10, "FILE"), (100, "DATA")])
def test_two_workers_each_read_only_their_share(tmp_path, monkeypatch, per_shard, policy):
    import tensorflow as tf
    from tensorflow.python.data.experimental.ops.distribute import (
        _AutoShardDataset,  # what tf.distribute applies
    )

    cluster = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(cluster))
    memory = _distinct(60)
    shards = write_dataset(memory, tmp_path / "s.shards", records_per_shard=per_shard)
    everything = np.arange(60)
    stream = eval_dataset(shards.images[everything], shards.labels[everything], 3, 4)
    assert stream.options().experimental_distribute.auto_shard_policy == getattr(
        tf.data.experimental.AutoShardPolicy, policy)
    shares = []
    for worker in range(2):
        batches = list(_AutoShardDataset(stream, 2, worker).as_numpy_iterator())
        shares.append(set(_record_numbers(np.concatenate([b[0] for b in batches]), memory)))
    assert not shares[0] & shares[1] and shares[0] | shares[1] == set(range(60))
    if policy == "FILE":  # whole files per worker: every shard's records on one side
        files = [{n // per_shard for n in share} for share in shares]
        assert not files[0] & files[1] and len(files[0]) == len(files[1]) == 3


@pytest.mark.slow
def test_training_on_a_changed_shard_stops_with_one_line(tmp_path):
    shards = write_dataset(_distinct(40, 8), tmp_path / "s.shards", records_per_shard=16)
    victim = shards.shards[1].path
    victim.write_bytes(victim.read_bytes()[:-1] + b"\0")
    result = run_edgekit("train", str(tmp_path / "s.shards"), "--model", "baseline", "--epochs", "1",
                         "--out", str(tmp_path / "run"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "shard-00001.tfrecord does not match its SHA-256" in result.stderr
    assert not (tmp_path / "run" / "model.keras").exists()
