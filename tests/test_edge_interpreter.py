"""edge.interpreter.TFLiteModel: backends, input handling, dequantized outputs."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from edge import interpreter
from edge.bundle import load_golden, open_bundle
from edge.errors import UserError
from edge.interpreter import TFLiteModel, available_backend


def test_prefers_ai_edge_litert():
    assert available_backend()[0] == "ai_edge_litert"


def test_falls_back_to_tf_lite_when_no_litert(bundles, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(interpreter.importlib.util, "find_spec",
                        lambda name, *a: None if name in ("ai_edge_litert", "tflite_runtime") else real(name, *a))
    bundle = open_bundle(bundles["int8"])
    model = TFLiteModel(bundle.model_path, num_threads=1)
    assert model.backend == "tensorflow.lite"
    inputs, outputs = load_golden(bundle)
    assert (model.predict_batch(inputs).argmax(1) == outputs.argmax(1)).all()


def test_bytes_threads_and_dequantize(bundles):
    bundle = open_bundle(bundles["int8"])
    model = TFLiteModel(bundle.model_path.read_bytes(), num_threads=2)
    assert model.num_threads == 2 and model.input_shape == (16, 16, 3) and model.output_size == 4
    inputs, outputs = load_golden(bundle)
    scale, zero_point = model.output_quantization
    expected = (outputs[0].astype(np.float32) - zero_point) * scale
    np.testing.assert_allclose(model.predict(inputs[0]), expected)
    np.testing.assert_array_equal(model.raw_invoke(inputs[0][None]), outputs[0])
    assert model.predict_batch(inputs[:0]).shape == (0, 4)


def test_float_model_takes_uint8_pixels(bundles):
    model = TFLiteModel(open_bundle(bundles["float32"]).model_path, num_threads=1)
    probabilities = model.predict(np.full((16, 16, 3), 128, np.uint8))
    assert probabilities.dtype == np.float32 and probabilities.sum() == pytest.approx(1, abs=1e-4)


def test_bad_input_and_bad_model(bundles, tmp_path):
    model = TFLiteModel(open_bundle(bundles["int8"]).model_path, num_threads=1)
    with pytest.raises(UserError, match=r"model input must have shape \(16, 16, 3\)"):
        model.predict(np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(UserError, match="does not exist"):
        TFLiteModel(tmp_path / "none.tflite")
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer" * 10)
    with pytest.raises(UserError, match="cannot load"):
        TFLiteModel(junk)
