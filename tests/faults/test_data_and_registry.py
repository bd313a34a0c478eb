"""Fault replays for the registry, the image-folder source and dataset loading (issue 14, items 8-10)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import run_edgekit
from tests.tiny_bundles import float_tflite, write_bundle
from train.registry import Registry, RegistryError


def _registry(tmp_path: Path, versions: int = 2) -> tuple[Registry, str]:
    reg = Registry(tmp_path / "models")
    for n in range(versions):
        reg.register("signals", write_bundle(tmp_path / f"b{n}", float_tflite(), name="signals", version=f"t{n}"))
    reg.promote("signals", "v0001")
    return reg, str(tmp_path / "models")


@pytest.mark.fault("registry: production names a deleted version")
def test_registry_with_production_naming_a_deleted_version_still_lists_and_promotes(tmp_path):
    reg, models = _registry(tmp_path)
    shutil.rmtree(reg.get("signals", "v0001").path)
    listing = run_edgekit("models", "list", "--registry", models, check=True).stdout
    assert "BROKEN" in listing and "'v0001', which is not a version" in listing and "v0002" in listing
    shown = run_edgekit("models", "show", "v0002", "--registry", models, check=True)
    assert "v0002" in shown.stdout
    production = run_edgekit("models", "show", "--registry", models)
    assert production.returncode != 0 and "Traceback" not in production.stderr
    assert "promote one" in production.stderr
    run_edgekit("models", "promote", "v0002", "--registry", models, check=True)
    assert reg.production("signals").version == "v0002"


@pytest.mark.fault("registry: promote an empty version folder")
def test_promote_of_an_empty_version_folder_is_refused(tmp_path):
    reg, models = _registry(tmp_path, versions=1)
    (tmp_path / "models" / "signals" / "v0003").mkdir()
    result = run_edgekit("models", "promote", "v0003", "--registry", models)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "v0003 is damaged" in result.stderr and "no bundle" in result.stderr
    assert reg.production("signals").version == "v0001"
    listing = run_edgekit("models", "list", "--registry", models, check=True).stdout
    assert "v0003  DAMAGED" in listing and "* v0001" in listing


@pytest.mark.fault("registry: promote a version whose model is truncated")
def test_promote_of_a_truncated_model_is_refused(tmp_path):
    reg, models = _registry(tmp_path)
    model = reg.get("signals", "v0002").bundle_path / "model.tflite"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    with pytest.raises(RegistryError, match="v0002 is damaged: model.tflite .* does not match its checksum"):
        reg.promote("signals", "v0002")
    assert reg.production("signals").version == "v0001"
    assert [r["version"] for r in reg.history("signals")] == ["v0001"]


@pytest.mark.fault("registry: bundle swapped after registration")
def test_promote_of_a_version_whose_bundle_was_swapped_is_refused(tmp_path):
    """Another valid bundle (its own checksums intact) put in a version's place: only the manifest
    hash recorded at registration can tell."""
    reg, _ = _registry(tmp_path)
    bundle = reg.get("signals", "v0002").bundle_path
    shutil.rmtree(bundle)
    write_bundle(bundle, float_tflite(seed=1), name="signals", version="someone-else")
    with pytest.raises(RegistryError, match="no longer matches the SHA-256 recorded"):
        reg.promote("signals", "v0002")
    assert reg.production("signals").version == "v0001"


@pytest.mark.fault("registry: unreadable metadata")
def test_a_version_with_unreadable_metadata_is_listed_as_damaged(tmp_path):
    reg, models = _registry(tmp_path)
    (reg.get("signals", "v0002").path / "metrics.json").write_text("{not json")
    (tmp_path / "models" / "signals" / "history.jsonl").write_text('[1, 2]\n{"torn": ')
    listing = run_edgekit("models", "list", "--registry", models, check=True).stdout
    assert "v0002  DAMAGED" in listing and "* v0001" in listing
    shown = run_edgekit("models", "show", "v0002", "--registry", models, check=True).stdout
    assert "DAMAGED" in shown and "not readable JSON" in shown
    refused = run_edgekit("models", "promote", "v0002", "--registry", models)
    assert refused.returncode != 0 and "v0002 is damaged" in refused.stderr


# --- dataset loading (issue 14.10) -----------------------------------------------------------


def _jpeg(seed: int) -> bytes:
    import cv2
    import numpy as np

    image = np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def _two_classes(root: Path, per_class: int = 4) -> Path:
    for c, name in enumerate(("go", "stop")):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            (root / name / f"{i}.jpg").write_bytes(_jpeg(c * 100 + i))
    return root


@pytest.mark.fault("data: non-UTF-8 file names")
def test_non_utf8_file_names_build_split_and_bad_list(tmp_path):
    import os

    root = _two_classes(tmp_path / "photos")
    os.rename(root / "go" / "0.jpg", os.fsencode(root / "go") + b"/caf\xe9.jpg")
    (Path(os.fsdecode(os.fsencode(root / "stop") + b"/bad\xff.jpg"))).write_bytes(b"not an image")
    data, bad = tmp_path / "d.npz", tmp_path / "bad.txt"
    built = run_edgekit("dataset", "build", "--source", str(root), "--out", str(data), "--bad-list", str(bad),
                        env={"LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8"})
    assert built.returncode == 0, built.stderr
    assert "bad\\xff.jpg\tnot a readable image" in bad.read_text(encoding="utf-8")
    split = run_edgekit("split", str(data), "--out", str(tmp_path / "s.json"), env={"LC_ALL": "C.UTF-8"})
    assert split.returncode == 0 and "Traceback" not in split.stderr, split.stderr
    from train.data import Dataset

    assert any(s.endswith("go/caf\\xe9.jpg") for s in Dataset.load(data).sources.tolist())


@pytest.mark.fault("data: truncated JPEG with an end marker")
def test_truncated_jpeg_that_still_ends_in_an_end_marker_is_counted_as_damaged(tmp_path):
    from train.data import LoadReport
    from train.data.images import load_image_folder

    root = _two_classes(tmp_path / "photos")
    whole = (root / "go" / "1.jpg").read_bytes()
    (root / "go" / "1.jpg").write_bytes(whole[: len(whole) // 2] + b"\xff\xd9")
    report = LoadReport()
    dataset = load_image_folder(root, report=report, progress=False)
    assert len(dataset) == 7
    assert [(Path(s).name, r.split(" (")[0]) for s, r in report.skipped] == [("1.jpg", "damaged JPEG data")]


@pytest.mark.fault("data: zip member with an absolute path or '..'")
def test_zip_members_with_absolute_paths_or_dotdot_are_reported_not_used(tmp_path):
    import zipfile

    from train.data import LoadReport
    from train.data.images import load_zip

    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for c, name in enumerate(("go", "stop")):
            for i in range(3):
                zf.writestr(f"{name}/{i}.jpg", _jpeg(c * 10 + i))
        zf.writestr("/etc/evil.jpg", _jpeg(99))
        zf.writestr("go/../../escape.jpg", _jpeg(98))
    report = LoadReport()
    dataset = load_zip(archive, report=report, progress=False)
    assert dataset.class_names == ["go", "stop"] and len(dataset) == 6
    reasons = dict(report.skipped)
    assert reasons == {"photos.zip:/etc/evil.jpg": "unsafe path in archive (absolute): skipped",
                       "photos.zip:go/../../escape.jpg": "unsafe path in archive (contains '..'): skipped"}
    assert report.seen == 8


# --- the image-folder source (issue 14.9) ------------------------------------------------------


def _frames_folder(root: Path, good: int, bad: int) -> Path:
    """good + bad PNG files, the bad ones spread over the folder."""
    import cv2
    import numpy as np

    root.mkdir(parents=True)
    total = good + bad
    damaged = {3 + k * (total // bad) for k in range(bad)} if bad else set()
    for i in range(total):
        path = root / f"{i:04d}.png"
        if i in damaged:
            path.write_bytes(b"\x89PNG damaged")
        else:
            cv2.imwrite(str(path), np.full((8, 8, 3), i % 256, np.uint8))
    return root


@pytest.mark.fault("source: unreadable files in an image folder")
def test_run_on_a_folder_with_unreadable_files_reads_every_good_frame(tmp_path):
    bundle = write_bundle(tmp_path / "bundle", float_tflite())
    folder = _frames_folder(tmp_path / "frames", good=94, bad=6)
    result = run_edgekit("run", "--bundle", str(bundle), "--source", str(folder), "--quiet")
    assert result.returncode == 0, result.stderr
    final = [line for line in result.stderr.splitlines() if line.startswith("stats ")][-1]
    assert " frames=94 " in final and " source_skipped=6 " in final and " reopens=0 " in final, final
    assert result.stderr.count("skipped ") >= 6 and "Traceback" not in result.stderr


@pytest.mark.fault("source: image files vanish mid-run")
def test_files_that_vanish_mid_run_are_skipped(tmp_path):
    from edge.sources import Backoff, ResilientSource
    from edge.sources.image_folder import ImageFolderSource

    folder = tmp_path / "frames"
    _frames_folder(folder / "red", good=20, bad=0)
    inner = ImageFolderSource(folder)
    source = ResilientSource(inner, Backoff(max_failures=1, initial=30))
    first = source.read()
    for i in range(5, 15):  # another process empties part of the folder while the car replays it
        (folder / "red" / f"{i:04d}.png").unlink()
    rest = []
    while (frame := source.read()) is not None:
        rest.append(frame.file)
    assert first.file == "red/0000.png" and len(rest) == 9 and inner.skipped == 10 and source.reopens == 0
