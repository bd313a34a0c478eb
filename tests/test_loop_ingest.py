"""Ingest: labeled field samples join the dataset with sessions as groups; earlier splits never move."""

from __future__ import annotations

import numpy as np

from tests.conftest import run_edgekit
from tests.loop_store import make_store
from tests.tiny_bundles import LABELS, float_tflite, write_bundle
from train.data.dataset import Dataset
from train.labeling.decisions import LabelDB
from train.splits import load_split, make_split


def test_ingest_merges_labeled_samples_and_extends_the_split(tmp_path):
    bundle = write_bundle(tmp_path / "bundle", float_tflite(), name="signals")  # 8x8 model input
    rng = np.random.default_rng(1)
    base = Dataset(rng.integers(0, 256, (40, 8, 8, 3), dtype=np.uint8), np.arange(40) % 4, LABELS,
                   np.asarray([f"scene{i // 2}" for i in range(40)]), np.asarray([f"syn:{i}" for i in range(40)]))
    base.save(tmp_path / "base.npz")
    make_split(base).save(tmp_path / "split.json")
    store = make_store(tmp_path / "store", n=8, sessions=2)  # sessions s0, s1; 16x16 frames
    db = LabelDB(store / "labels.db")
    run_edgekit("label", "auto", str(store), "--from-truth", check=True)
    db.decide("images/s1/000003.png", None, discard=True)  # a person dropped one

    out = run_edgekit("ingest", str(store), "--into", str(tmp_path / "data.npz"), "--base", str(tmp_path / "base.npz"),
                      "--split", str(tmp_path / "split.json"), "--split-out", str(tmp_path / "split2.json"),
                      "--fresh-test", "1", "--bundle", str(bundle), check=True)
    assert "7 labeled samples, 7 new" in out.stdout and "fresh test = sessions s1" in out.stdout
    data = Dataset.load(tmp_path / "data.npz")
    assert len(data) == 47 and data.image_size == (8, 8)
    field = data.sources.tolist().index(f"store:{store.resolve()}/images/s1/000001.png")
    assert data.groups[field] == "s1" and data.class_names[data.labels[field]] == "red"  # truth of sample 1
    old, new = load_split(tmp_path / "split.json"), load_split(tmp_path / "split2.json")
    assert all(new.assignments[g] == s for g, s in old.assignments.items())  # nothing moved
    assert new.assignments["s1"] == "fresh_test" and new.assignments["s0"] in ("train", "val", "test")

    again = run_edgekit("ingest", str(store), "--into", str(tmp_path / "data.npz"), "--bundle", str(bundle),
                        check=True)
    assert "7 new" not in again.stdout and len(Dataset.load(tmp_path / "data.npz")) == 47  # idempotent


def test_ingest_without_labels_is_a_user_error(tmp_path):
    bundle = write_bundle(tmp_path / "bundle", float_tflite(), name="signals")
    store = make_store(tmp_path / "store", n=2)
    result = run_edgekit("ingest", str(store), "--into", str(tmp_path / "d.npz"), "--bundle", str(bundle))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "label them first" in result.stderr
