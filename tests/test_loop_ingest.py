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


def _smooth(rng: np.random.Generator, size: int) -> np.ndarray:
    import cv2

    return cv2.resize(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), (size, size), interpolation=cv2.INTER_CUBIC)


def test_ingest_refuses_near_copies_of_test_images_or_drops_them(tmp_path):
    """Issue 13.6: 25 field samples that were re-encoded copies of test images went in without a word."""
    import cv2

    from edge.samplelog.imagefile import encode_image
    from edge.samplelog.store import SampleStore

    bundle = write_bundle(tmp_path / "bundle", float_tflite(), name="signals")  # 8x8 model input
    rng = np.random.default_rng(3)
    base = Dataset(np.stack([_smooth(rng, 8) for _ in range(40)]), np.arange(40) % 4, LABELS,
                   np.asarray([f"scene{i // 2}" for i in range(40)]), np.asarray([f"syn:{i}" for i in range(40)]))
    base.save(tmp_path / "base.npz")
    split = make_split(base)
    split.save(tmp_path / "split.json")
    test = split.indices(base)["test"][:5]
    with SampleStore(tmp_path / "store", create=True) as store:
        frames = [("copies", base.images[i], LABELS[base.labels[i]]) for i in test]
        frames += [("fresh", _smooth(rng, 16), LABELS[k % 4]) for k in range(4)]
        for k, (session, image, truth) in enumerate(frames):
            meta = {"session_id": session, "frame_index": k, "capture_time": 1000.0 + k, "reasons": "random",
                    "priority": 0, "model_version": "v0001", "label": truth, "confidence": 0.5, "labels": LABELS,
                    "truth": truth}
            big = cv2.resize(image, (16, 16), interpolation=cv2.INTER_CUBIC)  # the car's camera is larger
            store.add(encode_image(big, meta, "jpeg", 90), meta, f"{k:06d}.jpg")
    run_edgekit("label", "auto", str(tmp_path / "store"), "--from-truth", check=True)
    args = [str(tmp_path / "store"), "--into", str(tmp_path / "data.npz"), "--base", str(tmp_path / "base.npz"),
            "--split", str(tmp_path / "split.json"), "--split-out", str(tmp_path / "split2.json"),
            "--fresh-test", "1", "--bundle", str(bundle)]

    refused = run_edgekit("ingest", *args)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert "near-copies of images in another split" in refused.stderr and "nothing was written" in refused.stderr
    assert "5 new samples are near-copies" in refused.stdout and "new in train ~ old in test: 5 pairs" in refused.stdout
    assert not (tmp_path / "data.npz").exists() and not (tmp_path / "split2.json").exists()

    dropped = run_edgekit("ingest", *args, "--drop-leaks", check=True)
    assert "dropped 5 leaking new samples" in dropped.stdout, dropped.stdout
    data = Dataset.load(tmp_path / "data.npz")
    assert len(data) == 44 and not any("/images/copies/" in s for s in data.sources.tolist())
    run_edgekit("audit", str(tmp_path / "data.npz"), "--split", str(tmp_path / "split2.json"), "--pairs",
                str(tmp_path / "pairs.csv"), check=True)
    assert "/images/" not in (tmp_path / "pairs.csv").read_text()  # no field sample in any cross-split pair
