"""Shard sets (issue 18.1): TFRecord shards + an SQLite index, read through the Dataset API; every
check of the index and of the shard bytes fails on a damaged or edited set."""

from __future__ import annotations

import hashlib
import sqlite3

import cv2
import numpy as np
import pytest

from edge.errors import UserError
from tests.conftest import run_edgekit
from train.audit import dhash
from train.data import load_dataset
from train.data.dataset import Dataset
from train.data.shard_build import build_shards
from train.data.shards import INDEX_NAME, ShardSet, write_dataset
from train.splits import class_weights, make_split


@pytest.fixture(scope="module")
def small() -> Dataset:
    return load_dataset("synthetic:n=60,size=12x16,frames=5")


@pytest.fixture
def shard_set(tmp_path, small) -> ShardSet:
    return write_dataset(small, tmp_path / "set.shards", records_per_shard=16)


def _sql(shards: ShardSet, statement: str) -> None:
    with sqlite3.connect(shards.root / INDEX_NAME) as connection:
        connection.execute(statement)
    connection.close()


def test_a_shard_set_reads_like_the_in_memory_dataset(shard_set, small):
    assert [s.records for s in shard_set.shards] == [16, 16, 16, 12]
    assert len(shard_set) == 60 and shard_set.image_size == (12, 16) and shard_set.class_names == small.class_names
    for column in ("labels", "groups", "sources", "subsets"):
        assert np.array_equal(getattr(shard_set, column), getattr(small, column)), column
    assert np.array_equal(shard_set.class_counts(), small.class_counts())
    picked = np.array([59, 3, 17, 16, 3, 40])
    assert np.array_equal(shard_set.read(picked), small.images[picked])  # PNG: exact pixels, in the order asked
    view = shard_set.images[picked]  # the Dataset API: images[idx] then batches by slices
    assert view.shape == (6, 12, 16, 3) and np.array_equal(view[1:4], small.images[picked[1:4]])
    assert np.array_equal(np.asarray(shard_set.images), small.images)
    # index-only work: stored dHashes (the audit), per-record SHA-256, split and class weights
    assert np.array_equal(shard_set.dhash, dhash(small.images))
    assert shard_set.sha256[0] == hashlib.sha256(cv2.imencode(".png", small.images[0][..., ::-1],
                                                               [cv2.IMWRITE_PNG_COMPRESSION, 3])[1]).hexdigest()
    assert make_split(shard_set).assignments == make_split(small).assignments  # a group's split: its hash, as before
    assert class_weights(shard_set.labels, 4) == class_weights(small.labels, 4)
    assert isinstance(load_dataset(str(shard_set.root)), ShardSet)
    with pytest.raises(UserError, match="holds 12x16 images, not 8x8"):
        load_dataset(str(shard_set.root), (8, 8))


def test_a_changed_shard_is_refused_before_its_images_are_used(shard_set):
    shard_set.read([0])  # the first shard is verified
    victim = shard_set.shards[1].path
    data = bytearray(victim.read_bytes())
    data[-10] ^= 0xFF
    victim.write_bytes(bytes(data))
    opened = ShardSet.open(shard_set.root)  # the index alone is still fine
    assert np.array_equal(opened.read([0]), shard_set.read([0]))
    with pytest.raises(UserError, match=r"shard-00001.tfrecord does not match its SHA-256"):
        opened.read([20])
    victim.unlink()
    with pytest.raises(UserError, match="is missing"):
        ShardSet.open(shard_set.root).read([20])


@pytest.mark.parametrize(("statement", "message"), [
    ("UPDATE shards SET records = 15 WHERE id = 0", "says 15 records"),
    ("UPDATE records SET label = (label + 1) % 4 WHERE idx = 0", r"says 16 records from #0 \(\["),  # per-class counts disagree
    ("UPDATE shards SET file = '../elsewhere.tfrecord' WHERE id = 2", "outside its folder"),
    ("UPDATE shards SET file = '/etc/passwd.tfrecord' WHERE id = 2", "outside its folder"),
    ("UPDATE records SET label = 9 WHERE idx = 3", "labels outside the 4 classes"),
    ("DELETE FROM records WHERE idx = 59", "says 12 records"),
    ("UPDATE shards SET sha256 = 'x' WHERE id = 1", "no valid SHA-256"),
    ("UPDATE meta SET value = '7' WHERE key = 'format_version'", "shard format 7"),
])
def test_an_edited_index_is_refused_when_opened(shard_set, statement, message):
    ShardSet.open(shard_set.root)
    _sql(shard_set, statement)
    with pytest.raises(UserError, match=message):
        ShardSet.open(shard_set.root)


def test_a_symlinked_shard_pointing_outside_is_refused(shard_set, tmp_path):
    outside = tmp_path / "outside.tfrecord"
    shard = shard_set.shards[0].path
    outside.write_bytes(shard.read_bytes())
    shard.unlink()
    shard.symlink_to(outside)
    with pytest.raises(UserError, match="outside"):
        ShardSet.open(shard_set.root).read([0])


def test_appending_adds_shards_and_never_rewrites_old_ones(shard_set, small):
    before = {s.path.name: (s.path.stat().st_mtime_ns, s.sha256) for s in shard_set.shards}
    write_dataset(small.subset(np.arange(10)), shard_set.root, records_per_shard=16, append=True)
    grown = ShardSet.open(shard_set.root)
    assert len(grown) == 70 and len(grown.shards) == 5 and grown.shards[-1].first_index == 60
    assert {s.path.name: (s.path.stat().st_mtime_ns, s.sha256) for s in grown.shards[:4]} == before
    assert np.array_equal(grown.read([65]), small.images[[5]])
    with pytest.raises(UserError, match="is a shard set already"):
        write_dataset(small, shard_set.root)
    other = Dataset(small.images[:4, :8], small.labels[:4], small.class_names, small.groups[:4], small.sources[:4])
    with pytest.raises(UserError, match="cannot join a shard set"):
        write_dataset(other, shard_set.root, append=True)


def test_a_folder_of_jpegs_is_sharded_keeping_the_bytes(tmp_path):
    rng = np.random.default_rng(0)
    for k, name in enumerate(("go", "stop")):
        folder = tmp_path / "photos" / name / "session1"
        folder.mkdir(parents=True)
        for i in range(6):
            image = cv2.resize(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), (20, 16))
            image[..., k] = 255
            cv2.imwrite(str(folder / f"{i}.jpg"), image)
        cv2.imwrite(str(folder / "odd.png"), np.zeros((32, 40), np.uint16))  # 16-bit grey, other size: re-encoded
    (tmp_path / "photos" / "go" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    shards = build_shards(str(tmp_path / "photos"), tmp_path / "p.shards", group="level:0", records_per_shard=5)
    memory = load_dataset(str(tmp_path / "photos"), group="level:0")
    assert len(shards) == 14 and len(memory) == 14 and shards.image_size == (16, 20)
    order = np.argsort(memory.sources)
    assert np.array_equal(shards.sources, memory.sources[order]) and np.array_equal(shards.groups, memory.groups[order])
    jpeg = next(i for i, s in enumerate(shards.sources.tolist()) if s.endswith("go/session1/0.jpg"))
    assert shards.sha256[jpeg] == hashlib.sha256((tmp_path / "photos/go/session1/0.jpg").read_bytes()).hexdigest()
    assert np.array_equal(shards.read(np.arange(14)), memory.images[order])  # TF decodes JPEG as OpenCV does


@pytest.mark.slow
def test_the_commands_build_split_and_audit_a_shard_set_from_its_index(tmp_path):
    out = run_edgekit("dataset", "build", "--source", "synthetic:n=40,size=8x8,frames=4", "--out",
                      str(tmp_path / "s.shards"), "--records-per-shard", "16", check=True)
    assert "shard set of 3 shards" in out.stdout
    run_edgekit("dataset", "build", "--source", str(tmp_path / "s.shards"), "--out", str(tmp_path / "back.npz"),
                check=True)  # and back into memory
    assert np.array_equal(Dataset.load(tmp_path / "back.npz").images, ShardSet.open(tmp_path / "s.shards").read(
        np.arange(40)))
    (tmp_path / "s.shards" / "shard-00000.tfrecord").write_bytes(b"gone")  # index-only commands never read it
    split = run_edgekit("split", str(tmp_path / "s.shards"), "--out", str(tmp_path / "split.json"), check=True)
    assert "class weights (train)" in split.stdout
    audit = run_edgekit("audit", str(tmp_path / "s.shards"), "--split", str(tmp_path / "split.json"), check=True)
    assert "audited 40 images" in audit.stdout
    bad = run_edgekit("dataset", "build", "--source", "synthetic:n=8", "--out", str(tmp_path / "s.shards"))
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and "is a shard set already" in bad.stderr


@pytest.mark.slow
def test_ingest_appends_field_samples_as_new_shards_and_refuses_leaks(tmp_path):
    from edge.samplelog.imagefile import encode_image
    from edge.samplelog.store import SampleStore
    from tests.test_loop_ingest import _smooth
    from tests.tiny_bundles import LABELS, float_tflite, write_bundle

    bundle = write_bundle(tmp_path / "bundle", float_tflite(), name="signals")  # 8x8 model input
    rng = np.random.default_rng(3)
    base = Dataset(np.stack([_smooth(rng, 8) for _ in range(40)]), np.arange(40) % 4, LABELS,
                   np.asarray([f"scene{i // 2}" for i in range(40)]), np.asarray([f"syn:{i}" for i in range(40)]))
    shards = write_dataset(base, tmp_path / "set.shards", records_per_shard=16)
    before = {s.path.name: s.path.read_bytes() for s in shards.shards}
    split = make_split(base)
    split.save(tmp_path / "split.json")
    test = split.indices(base)["test"][:3]
    with SampleStore(tmp_path / "store", create=True) as store:
        frames = [("copies", base.images[i], LABELS[base.labels[i]]) for i in test]
        frames += [("fresh", _smooth(rng, 8), LABELS[k % 4]) for k in range(4)]
        for k, (session, image, truth) in enumerate(frames):
            meta = {"session_id": session, "frame_index": k, "capture_time": 1000.0 + k, "reasons": "random",
                    "priority": 0, "model_version": "v0001", "label": truth, "confidence": 0.5, "labels": LABELS,
                    "truth": truth}
            store.add(encode_image(image, meta, "png", 0), meta, f"{k:06d}.png")
    run_edgekit("label", "auto", str(tmp_path / "store"), "--from-truth", check=True)
    args = [str(tmp_path / "store"), "--into", str(tmp_path / "set.shards"), "--split", str(tmp_path / "split.json"),
            "--split-out", str(tmp_path / "split2.json"), "--bundle", str(bundle)]
    refused = run_edgekit("ingest", *args)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert "nothing was written" in refused.stderr and "new in train ~ old in test: 3 pairs" in refused.stdout
    assert len(ShardSet.open(tmp_path / "set.shards")) == 40 and not (tmp_path / "split2.json").exists()

    dropped = run_edgekit("ingest", *args, "--drop-leaks", check=True)
    assert "dropped 3 leaking new samples" in dropped.stdout and "44 samples (+4)" in dropped.stdout, dropped.stdout
    grown = ShardSet.open(tmp_path / "set.shards")
    assert len(grown.shards) == 4 and {s.path.name: s.path.read_bytes() for s in grown.shards[:3]} == before
    assert set(grown.groups[40:].tolist()) == {"fresh"} and np.array_equal(grown.read([0]), base.images[[0]])
    new = load_split_file(tmp_path / "split2.json")
    assert all(new.assignments[g] == s for g, s in split.assignments.items())
    again = run_edgekit("ingest", *args, "--drop-leaks", check=True)  # the 4 added are known; the copies dropped again
    assert "7 labeled samples, 3 new" in again.stdout and "44 samples (+0)" in again.stdout, again.stdout
    assert len(ShardSet.open(tmp_path / "set.shards").shards) == 4


def load_split_file(path):
    from train.splits import load_split

    return load_split(path)


def test_loading_a_whole_shard_set_is_refused_above_the_memory_limit(shard_set, small, monkeypatch):
    back = shard_set.load()
    assert np.array_equal(back.images, small.images) and np.array_equal(back.groups, small.groups)
    monkeypatch.setattr("train.data.shards.MAX_IN_MEMORY_BYTES", len(small) * 12 * 16 * 3 - 1)
    with pytest.raises(UserError, match="use a command that streams"):
        shard_set.load()
    assert shard_set.images[np.arange(10)][2:5].shape == (3, 12, 16, 3)  # batches still read
