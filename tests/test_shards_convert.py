"""Convert on a shard set (issue 18.4): the representative set is drawn from the shards and the accuracy
check streams the split; the bundle's figures equal those of the same data as a .npz."""

from __future__ import annotations

import json

import numpy as np
import pytest

from convert.data import SplitImages
from convert.pipeline import ConvertOptions, convert
from tests.convert_helpers import bundles_fixture, tiny_fixture  # noqa: F401
from train.data.dataset import Dataset
from train.data.shards import ShardSet, write_dataset


@pytest.mark.slow
def test_convert_reads_a_shard_set_like_the_npz(tiny, bundles, tmp_path, monkeypatch):
    write_dataset(Dataset.load(tiny["data"]), tmp_path / "data.shards", records_per_shard=50)
    reads: list[int] = []
    original = ShardSet.read

    def counted(self, indices):
        reads.append(len(indices))
        return original(self, indices)

    monkeypatch.setattr(ShardSet, "read", counted)
    monkeypatch.setattr("convert.data.STREAM_BATCH", 40)
    built: list[int] = []
    made = SplitImages.__init__

    def streamed(self, images, spec):
        built.append(len(images))
        made(self, images, spec)

    monkeypatch.setattr(SplitImages, "__init__", streamed)
    [result] = convert(ConvertOptions(source=tiny["model"], data=str(tmp_path / "data.shards"), modes=["int8"],
                                      rep_size=100, out=tmp_path / "bundle", latency_runs=5, version="1"))
    assert result.ok, result.gate_failures
    ours = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    theirs = json.loads((bundles["int8"] / "manifest.json").read_text())
    for key in ("accuracy", "gate"):
        assert ours[key] == theirs[key], key  # same images, same order, same answers
    assert (tmp_path / "bundle" / "model.tflite").read_bytes() == (bundles["int8"] / "model.tflite").read_bytes()
    with np.load(tmp_path / "bundle" / "golden.npz") as a, np.load(bundles["int8"] / "golden.npz") as b:
        assert np.array_equal(a["inputs"], b["inputs"])
    assert 96 in built  # the val split (96 images) was never loaded as an array for the accuracy check:
    assert reads == [100, 96, 96, 40, 40, 16]  # representative set, Keras (a batch of 256), golden pool (up
    # to 2000), then the TFLite pass streamed it 40 + 40 + 16 at a time
