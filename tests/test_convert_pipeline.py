"""edgekit convert: modes, integer I/O, accuracy gates and bad inputs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from convert.accuracy import compare, gate_failures
from convert.data import representative_positions
from convert.pipeline import ConvertOptions, convert
from convert.tflite import QuantizationError, check_full_integer, convert_keras
from edge.bundle import open_bundle
from edge.errors import UserError
from edge.interpreter import TFLiteModel
from tests.conftest import run_edgekit
from tests.convert_helpers import CLASS_NAMES, make_model


def _no_leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".partial" in p.name or p.name.endswith(".old")]


def test_int8_takes_uint8_and_gives_integer_output(bundles):
    bundle = open_bundle(bundles["int8"])
    model = TFLiteModel(bundle.model_path, num_threads=1)
    assert model.input_dtype == np.uint8 and model.output_dtype == np.uint8 and model.is_integer
    assert model.input_quantization == (1.0, 0)  # raw pixels: the Rescaling layer is inside
    red = np.full((16, 16, 3), (220, 40, 40), np.uint8)
    raw = model.raw_invoke(red)
    assert raw.dtype == np.uint8
    probabilities = model.predict(red)
    assert probabilities.dtype == np.float32 and abs(probabilities.sum() - 1) < 0.05
    with np.load(bundle.golden_path) as golden:
        inputs, outputs = golden["inputs"], golden["outputs"]
    assert inputs.dtype == np.uint8 and outputs.dtype == np.uint8
    float_model = TFLiteModel(open_bundle(bundles["float32"]).model_path, num_threads=1)
    int8_top = model.predict_batch(inputs).argmax(1)
    assert (int8_top == outputs.argmax(1)).all()
    assert (int8_top == float_model.predict_batch(inputs).argmax(1)).mean() >= 0.75
    manifest = bundle.manifest
    assert manifest["model"]["input"]["dtype"] == "uint8"
    assert manifest["model"]["output"]["quantization"]["scale"] > 0
    assert manifest["model"]["size_ratio_to_float32"] < 0.8
    assert manifest["gate"]["passed"] is True and manifest["accuracy"]["images"] == 96
    assert len(manifest["accuracy"]["confusion_diff"]) == 4
    assert manifest["tools"]["tensorflow"] and manifest["lineage"]["model_sha256"]


def test_float16_and_dynamic_bundles(bundles):
    sizes = {}
    for mode in ("float16", "dynamic", "float32"):
        bundle = open_bundle(bundles[mode])
        model = TFLiteModel(bundle.model_path, num_threads=1)
        assert model.input_dtype == np.float32 and not model.is_integer
        assert bundle.manifest["mode"] == mode
        assert bundle.manifest["accuracy"]["agreement"] >= 95
        sizes[mode] = bundle.manifest["model"]["size_bytes"]
    assert sizes["dynamic"] < sizes["float32"] and sizes["float16"] < sizes["float32"]


def test_failing_gate_writes_nothing_and_exits_nonzero(tiny, tmp_path):
    out = tmp_path / "gated"
    result = run_edgekit("convert", str(tiny["model"]), "--data", str(tiny["data"]), "--rep-size", "50",
                         "--max-drop", "-5", "--out", str(out), "--latency-runs", "5",
                         "--report", str(tmp_path / "report.json"))
    assert result.returncode == 3, result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report[0]["bundle"] is None and report[0]["gate_failures"]
    assert len(report[0]["accuracy"]["confusion_tflite"]) == 4
    assert "GATE FAILED: overall accuracy dropped" in result.stdout and "over --max-drop -5 by" in result.stdout
    assert not out.exists() and _no_leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_no_gate_is_recorded(tiny, tmp_path):
    results = convert(ConvertOptions(source=tiny["model"], data=str(tiny["data"]), modes=["float32"],
                                     max_drop=-5, gate=False, out=tmp_path / "b", latency_runs=5))
    manifest = open_bundle(results[0].bundle).manifest
    assert manifest["gate"]["skipped"] is True and manifest["gate"]["passed"] is False
    assert manifest["gate"]["failures"]


def test_gate_reports_class_drop():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    keras_probs = np.eye(2)[labels]
    tflite_probs = keras_probs.copy()
    tflite_probs[0] = [0, 1]  # one class-0 image flips: class 0 drops 25 pt, overall 12.5 pt
    report = compare(keras_probs, tflite_probs, labels, ["a", "b"])
    assert report["drop"] == pytest.approx(12.5) and report["agreement"] == pytest.approx(87.5)
    assert report["confusion_diff"] == [[-1, 1], [0, 0]]
    failures = gate_failures(report, max_drop=20, max_class_drop=3)
    assert len(failures) == 1 and "class 'a' dropped 25.00 pt" in failures[0]
    assert gate_failures(report, max_drop=20, max_class_drop=30) == []


def test_missing_and_truncated_keras(tiny, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        convert(ConvertOptions(source=tmp_path / "missing.keras", labels=CLASS_NAMES))
    truncated = tmp_path / "cut.keras"
    data = tiny["model"].read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="truncated or not a .keras file"):
        convert(ConvertOptions(source=truncated, labels=CLASS_NAMES))
    result = run_edgekit("convert", str(truncated), "--labels", ",".join(CLASS_NAMES))
    assert result.returncode == 1 and "Traceback" not in result.stderr and "truncated" in result.stderr


def test_labels_do_not_match_outputs(tiny, tmp_path):
    with pytest.raises(UserError, match="3 labels .* but the model has 4 outputs"):
        convert(ConvertOptions(source=tiny["model"], labels=["a", "b", "c"], modes=["float32"],
                               accuracy_check=False, out=tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_model_without_rescaling_warns_and_records(tiny, tmp_path, caplog):
    model = make_model(tmp_path / "raw.keras", tiny["data"], rescaling=False)  # 1 epoch: the absolute gate refuses it
    with caplog.at_level(logging.WARNING):
        results = convert(ConvertOptions(source=model, labels=CLASS_NAMES, modes=["float32"],
                                         accuracy_check=False, out=tmp_path / "b", latency_runs=5))
    assert "has no Rescaling layer" in caplog.text
    scaling = open_bundle(results[0].bundle).preprocess.extra["scaling"]
    assert scaling == {"in_model": False, "scale": 1.0, "offset": 0.0, "added_by_converter": False}
    results = convert(ConvertOptions(source=model, data=str(tiny["data"]), modes=["int8"], rep_size=50,
                                     input_scale=1 / 255, out=tmp_path / "c", latency_runs=5))
    bundle = open_bundle(results[0].bundle)
    assert bundle.preprocess.extra["scaling"]["added_by_converter"] is True
    assert bundle.input_dtype == "uint8" and results[0].ok


def test_too_few_representative_images(tiny, tmp_path):
    with pytest.raises(UserError, match="only 288 images but the representative set needs 5000"):
        convert(ConvertOptions(source=tiny["model"], data=str(tiny["data"]), rep_size=5000, out=tmp_path / "b"))


def test_representative_set_is_stratified():
    labels = np.array([0] * 80 + [1] * 15 + [2] * 5)
    chosen = labels[representative_positions(labels, 20, 3)]
    assert len(chosen) == 20 and np.bincount(chosen).tolist() == [16, 3, 1]


def test_unquantizable_op_is_named():
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))
    x = keras.layers.Lambda(lambda t: keras.ops.sin(t))(keras.layers.Dense(4)(x))
    model = keras.Model(inputs, keras.layers.Softmax()(x))
    representative = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    with pytest.raises(QuantizationError, match=r"op SIN \(.*\) cannot be quantized"):
        check_full_integer(convert_keras(model, "int8", representative))


def test_manifest_is_plain_json(bundles):
    text = (bundles["int8"] / "manifest.json").read_text()
    manifest = json.loads(text)
    assert set(manifest["files"]) == {"model.tflite", "golden.npz"}
    assert manifest["lineage"]["dataset"].endswith("data.npz")


def test_run_folder_source(tiny, tmp_path):
    run = tmp_path / "runs" / "colours"
    run.mkdir(parents=True)
    (run / "model.keras").write_bytes(tiny["model"].read_bytes())
    spec = {"input_size": [16, 16], "roi": [0, 0, 1, 1], "resize": "stretch", "interpolation": "area", "color": "rgb"}
    (run / "run.json").write_text(json.dumps({
        "dataset": str(tiny["data"]), "dataset_sha256": "d" * 64, "split_file": None, "class_names": CLASS_NAMES,
        "preprocess": spec, "model_name": "colour-net", "preset": "tiny", "seed": 3, "parent_model": None}))
    result = run_edgekit("convert", str(run), "--rep-size", "60", "--split", "test", "--latency-runs", "5",
                         "--version", "7", "--archive")
    assert result.returncode == 0, result.stderr
    assert "accuracy on test (96 images)" in result.stdout
    bundle = open_bundle(run / "bundles" / "int8.tar.gz")
    # issue 13.9: named after the dataset (data.npz), not the preset, as retrain names its bundles
    assert (bundle.name, bundle.version, bundle.labels) == ("data", "7", CLASS_NAMES)
    lineage = bundle.manifest["lineage"]
    assert lineage["run_folder"] == str(run) and lineage["dataset_sha256"] == "d" * 64
    assert lineage["run"] == {"preset": "tiny", "seed": 3}


def test_existing_bundle_is_not_overwritten(bundles, tiny):
    before = (bundles["float32"] / "manifest.json").read_bytes()
    with pytest.raises(UserError, match="already exists: choose another --out or pass --overwrite"):
        convert(ConvertOptions(source=tiny["model"], labels=CLASS_NAMES, modes=["float32"], accuracy_check=False,
                               out=bundles["float32"]))
    assert (bundles["float32"] / "manifest.json").read_bytes() == before


def test_size_breakdown_accounts_for_every_byte(bundles):
    from convert.tflite import size_breakdown

    parts = {mode: size_breakdown((bundles[mode] / "model.tflite").read_bytes()) for mode in ("float32", "int8")}
    for b in parts.values():
        assert b["tensor_data"] + b["quantization"] + b["names"] + b["other"] == b["total"]
        assert min(b["tensor_data"], b["names"], b["other"]) > 0
    assert parts["float32"]["quantization"] == 0 and parts["float32"]["per_channel_scales"] == 0
    assert parts["int8"]["per_channel_scales"] > 0 and parts["int8"]["quantization"] > 0
    # int8 weights take a quarter of float32's; biases stay 32-bit, so a little more
    assert 0.25 <= parts["int8"]["tensor_data"] / parts["float32"]["tensor_data"] < 0.35


def test_bundles_are_named_after_their_dataset_unless_named():
    """Issue 13.9: the README's convert gave `car-small:2026...`, retrain then `lights:v0002`."""
    from convert.source import dataset_name

    assert dataset_name("data/lights.npz") == "lights" and dataset_name("photos/") == "photos"
    assert dataset_name("keras:cifar10") == "cifar10" and dataset_name("synthetic:n=3000,seed=1") == "synthetic"
    assert dataset_name("archive/signs.zip") == "signs" and dataset_name(None) is None
