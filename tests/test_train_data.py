"""Dataset loaders: folders of every image kind, bad files, zips, keras offline, synthetic, npz."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from edge import synthetic
from edge.errors import UserError
from tests.conftest import CIFAR_ZIP, needs_cifar
from train.data import Dataset, LoadReport, file_sha256, load_dataset
from train.data.images import load_image_folder, load_zip


def _png(array: np.ndarray) -> bytes:
    return cv2.imencode(".png", array)[1].tobytes()


def _palette_png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save(buffer, "PNG")
    return buffer.getvalue()


RED_BGR = np.zeros((20, 24, 3), np.uint8)
RED_BGR[..., 2] = 200


def _write_layout(root: Path) -> None:
    """cats/ and dogs/ with every format OpenCV reads plus every kind of bad file."""
    (root / "cats").mkdir(parents=True)
    (root / "dogs" / "session7").mkdir(parents=True)
    gray = np.full((20, 24), 90, np.uint8)
    files = {
        "cats/bgr.png": _png(RED_BGR),
        "cats/photo.jpg": cv2.imencode(".jpg", RED_BGR)[1].tobytes(),
        "cats/gray.png": _png(gray),
        "cats/rgba.png": _png(np.dstack([RED_BGR, np.full((20, 24), 255, np.uint8)])),
        "cats/deep16.png": _png(RED_BGR.astype(np.uint16) * 257),
        "cats/palette.png": _palette_png(np.dstack([np.full((20, 24), 200, np.uint8), *[np.zeros((20, 24), np.uint8)] * 2])),
        "cats/bitmap.bmp": cv2.imencode(".bmp", RED_BGR)[1].tobytes(),
        "dogs/session7/a_frame1.png": _png(gray),
        "dogs/session7/a_frame2.png": _png(gray),
        "dogs/big.png": _png(np.zeros((40, 30, 3), np.uint8)),
        # bad inputs
        "dogs/empty.png": b"",
        "dogs/truncated.jpg": cv2.imencode(".jpg", RED_BGR)[1].tobytes()[:60],
        "dogs/text.png": b"this is not an image at all",
        "dogs/notes.txt": b"hello",
        "dogs/tiny.png": _png(np.zeros((3, 3, 3), np.uint8)),
        "stray.png": _png(gray),
    }
    for name, data in files.items():
        (root / name).write_bytes(data)


EXPECTED_BAD = {"empty.png": "empty file", "truncated.jpg": "truncated", "text.png": "not a readable image",
                "notes.txt": "not an image file", "tiny.png": "too small", "stray.png": "not inside a class folder"}


def _check_layout_dataset(ds: Dataset, report: LoadReport) -> None:
    assert ds.class_names == ["cats", "dogs"]
    assert len(ds) == 10 and ds.images.shape[1:] == (20, 24, 3)
    skipped = {Path(source.split(":")[-1]).name: reason for source, reason in report.skipped}
    assert set(skipped) == set(EXPECTED_BAD)
    for name, reason in EXPECTED_BAD.items():
        assert reason in skipped[name], (name, skipped[name])
    by_name = {Path(s.split(":")[-1]).name: i for i, s in enumerate(ds.sources)}
    for name in ("bgr.png", "photo.jpg", "rgba.png", "deep16.png", "palette.png", "bitmap.bmp"):
        r, g, b = ds.images[by_name[name]].reshape(-1, 3).mean(0)
        assert r > 180 and g < 20 and b < 20, (name, r, g, b)  # red, so BGR was flipped once
    assert (ds.images[by_name["gray.png"]] == 90).all()
    assert "resized" in " ".join(report.notes)  # big.png had another size


def test_folder_loads_every_format_and_reports_every_bad_file(tmp_path):
    _write_layout(tmp_path / "pets")
    report = LoadReport()
    ds = load_image_folder(tmp_path / "pets", report=report, progress=False)
    _check_layout_dataset(ds, report)
    text = report.format()
    assert "skipped 6" in text and "empty.png" in text


def test_zip_loads_without_unpacking(tmp_path):
    _write_layout(tmp_path / "pets")
    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((tmp_path / "pets").rglob("*")):
            if path.is_file():
                zf.write(path, f"wrapper/{path.relative_to(tmp_path / 'pets').as_posix()}")
    report = LoadReport()
    ds = load_zip(archive, report=report, progress=False)
    _check_layout_dataset(ds, report)
    assert ds.sources[0].startswith("pets.zip:wrapper/")


def test_subsets_groups_and_resizing(tmp_path):
    for subset in ("train", "test"):
        for cls in ("go", "stop"):
            for session in ("s1", "s2"):
                folder = tmp_path / "d" / subset / cls / session
                folder.mkdir(parents=True)
                for i in range(2):
                    (folder / f"{session}_f{i}.png").write_bytes(_png(np.full((30, 40, 3), 50 * i, np.uint8)))
    ds = load_dataset(str(tmp_path / "d"), (16, 16), group="level:0", progress=False)
    assert ds.images.shape == (16, 16, 16, 3)
    assert sorted(set(ds.subsets)) == ["test", "train"]
    assert sorted(set(ds.groups)) == ["s1", "s2"]
    by_regex = load_dataset(str(tmp_path / "d"), group=r"regex:^(s\d)_", progress=False)
    assert sorted(set(by_regex.groups)) == ["s1", "s2"] and by_regex.image_size == (30, 40)


def test_no_usable_images_and_single_class_are_clear_errors(tmp_path):
    (tmp_path / "a" / "only").mkdir(parents=True)
    (tmp_path / "a" / "only" / "x.png").write_bytes(_png(np.zeros((10, 10, 3), np.uint8)))
    (tmp_path / "a" / "only" / "y.png").write_bytes(_png(np.zeros((10, 10, 3), np.uint8)))
    with pytest.raises(UserError, match="single class"):
        load_dataset(str(tmp_path / "a"), progress=False)
    (tmp_path / "b" / "c1").mkdir(parents=True)
    (tmp_path / "b" / "c1" / "bad.jpg").write_bytes(b"")
    with pytest.raises(UserError, match="no usable images"):
        load_dataset(str(tmp_path / "b"), progress=False)
    with pytest.raises(UserError, match="not found"):
        load_dataset(str(tmp_path / "missing"))
    (tmp_path / "broken.zip").write_bytes(b"PK not really")
    with pytest.raises(UserError, match="not a readable zip"):
        load_dataset(str(tmp_path / "broken.zip"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_file_is_skipped(tmp_path):
    _write_layout(tmp_path / "pets")
    locked = tmp_path / "pets" / "cats" / "bgr.png"
    locked.chmod(0)
    report = LoadReport()
    load_image_folder(tmp_path / "pets", report=report, progress=False)
    assert any("cannot read" in reason for source, reason in report.skipped if source.endswith("bgr.png"))


def test_npz_round_trip_without_pickle(tmp_path):
    ds = load_dataset("synthetic:n=60,frames=10,seed=2")
    path = ds.save(tmp_path / "ds.npz")
    back = Dataset.load(path)
    assert (back.images == ds.images).all() and (back.labels == ds.labels).all()
    assert back.class_names == synthetic.CLASS_NAMES and (back.groups == ds.groups).all()
    assert back.sources[0] == "synthetic:2/s2-000000/0" and back.info["ref"].startswith("synthetic:")
    assert len(file_sha256(path)) == 64
    # an npz holding a pickled object array is refused, not unpickled
    np.savez(tmp_path / "evil.npz", images=np.zeros((1, 2, 2, 3), np.uint8), labels=np.zeros(1, np.int64),
             class_names=np.array([{"x": 1}], dtype=object))
    with pytest.raises(UserError, match="cannot read dataset"):
        Dataset.load(tmp_path / "evil.npz")


def test_synthetic_is_deterministic_fast_and_grouped():
    a_images, a_labels, a_scenes = synthetic.generate(200, size=(24, 40), seed=5, frames_per_scene=10)
    b_images, _, _ = synthetic.generate(100, size=(24, 40), seed=5, frames_per_scene=10)
    assert a_images.shape == (200, 24, 40, 3) and a_images.dtype == np.uint8
    assert (a_images[:100] == b_images).all()
    assert len(set(a_scenes)) == 20 and np.bincount(a_labels, minlength=4).min() == 50
    c_images, _, _ = synthetic.generate(100, size=(24, 40), seed=6, frames_per_scene=10)
    assert not (c_images == b_images).all()
    night, _, _ = synthetic.generate(100, seed=1, conditions=synthetic.Conditions.preset("night"))
    day, _, _ = synthetic.generate(100, seed=1)
    assert night.mean() < day.mean() * 0.6
    frames = list(synthetic.drive(frame_size=(120, 160), seed=3, fps=10, scene_seconds=(1, 1), n_frames=25))
    assert len(frames) == 25 and frames[0][0].shape == (120, 160, 3)
    assert {truth for _, truth in frames} <= set(synthetic.CLASS_NAMES)
    with pytest.raises(UserError):
        synthetic.Conditions.parse("nightt=1")


def test_keras_builtin_offline_says_where_to_put_the_file(tmp_path, monkeypatch):
    pytest.importorskip("keras")
    import keras

    def offline():
        raise Exception("URL fetch failure: no internet")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(UserError, match=r"save it as .*datasets/mnist\.npz"):
        load_dataset("keras:mnist")
    with pytest.raises(UserError, match="unknown keras dataset"):
        load_dataset("keras:imagenet")


@needs_cifar()
def test_cifar_archive_keeps_train_and_test(tmp_path):
    # a 200-image slice of the real archive, copied into a small zip (fast)
    with zipfile.ZipFile(CIFAR_ZIP) as src, zipfile.ZipFile(tmp_path / "small.zip", "w") as dst:
        names = [n for n in src.namelist() if n.endswith(("0000.jpg", "0001.jpg", "0002.jpg", "0003.jpg"))]
        assert len(names) > 50
        for name in names[:200]:
            dst.writestr(name, src.read(name))
    ds = load_dataset(str(tmp_path / "small.zip"), progress=False)
    assert ds.image_size == (32, 32) and len(ds.class_names) == 10
    assert sorted(set(ds.subsets)) == ["test", "train"]
    assert ds.sources[0].startswith("small.zip:cifar10/")
