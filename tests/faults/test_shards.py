"""Fault replays for shard sets (issue 18 with issue 14's bar): an edited index, a swapped shard, an
append that dies half-way. Each is refused in one line or leaves the set as it was."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from edge.errors import UserError
from tests.conftest import run_edgekit
from train.data.dataset import Dataset
from train.data.shards import (
    INDEX_NAME,
    ShardSet,
    append_records,
    records_from_arrays,
    write_dataset,
)


def _set(tmp_path, name: str = "set.shards", seed: int = 0) -> tuple[Dataset, ShardSet]:
    rng = np.random.default_rng(seed)
    data = Dataset(rng.integers(0, 256, (24, 6, 6, 3), dtype=np.uint8), np.arange(24) % 3, ["a", "b", "c"],
                   np.arange(24) // 3, np.asarray([f"src{seed}:{i}" for i in range(24)]))
    return data, write_dataset(data, tmp_path / name, records_per_shard=8)


@pytest.mark.fault("shard set: index edited to name a file outside its folder")
def test_an_index_naming_a_file_outside_is_refused_in_one_line(tmp_path):
    _, shards = _set(tmp_path)
    (tmp_path / "secret.tfrecord").write_bytes(b"not yours")
    with sqlite3.connect(shards.root / INDEX_NAME) as connection:
        connection.execute("UPDATE shards SET file = '../secret.tfrecord' WHERE id = 1")
    connection.close()
    result = run_edgekit("split", str(shards.root), "--out", str(tmp_path / "split.json"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "outside its folder" in result.stderr
    assert not (tmp_path / "split.json").exists()


@pytest.mark.fault("shard set: a shard swapped for another set's valid shard")
def test_a_valid_shard_from_another_set_is_refused(tmp_path):
    _, ours = _set(tmp_path, "ours.shards", seed=0)
    _, theirs = _set(tmp_path, "theirs.shards", seed=1)
    ours.shards[1].path.write_bytes(theirs.shards[1].path.read_bytes())  # same size, valid TFRecord
    with pytest.raises(UserError, match="does not match its SHA-256"):
        ShardSet.open(ours.root).read([9])


@pytest.mark.fault("shard set: append dies half-way")
def test_an_append_that_dies_half_way_leaves_the_set_as_it_was(tmp_path):
    data, shards = _set(tmp_path)
    def files() -> list[str]:
        return sorted(p.name for p in shards.root.iterdir() if not p.name.startswith(INDEX_NAME + "-"))  # not WAL

    before = files()

    def dying():
        records = records_from_arrays(data.images, data.labels, data.groups, data.sources, data.subsets)
        for count, record in enumerate(records):
            if count == 20:  # two new shards written, the third open
                raise KeyboardInterrupt
            yield record

    with pytest.raises(KeyboardInterrupt):
        append_records(shards.root, dying(), records_per_shard=8)
    assert files() == before
    again = ShardSet.open(shards.root)
    assert len(again) == 24 and np.array_equal(again.read(np.arange(24)), data.images)
    # a crash after a shard's rename but before the index commit leaves a file the index does not name:
    (shards.root / "shard-00003.tfrecord").write_bytes(b"orphan")
    added = append_records(shards.root, records_from_arrays(data.images[:5], data.labels[:5], data.groups[:5],
                                                            data.sources[:5], data.subsets[:5]))
    grown = ShardSet.open(shards.root)
    assert added == 5 and len(grown) == 29 and np.array_equal(grown.read([26]), data.images[[2]])
