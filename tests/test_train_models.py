"""Model specs and presets: the chapter's exact parameter counts, clear spec errors."""

from __future__ import annotations

import json

import pytest

from edge.errors import UserError
from train.models import CHAPTER_PARAMS, PRESETS, ModelSpec, build_model, count_params, load_spec


@pytest.mark.parametrize("name", sorted(CHAPTER_PARAMS))
def test_chapter_preset_has_the_chapters_parameter_count(name):
    assert count_params(load_spec(name)) == CHAPTER_PARAMS[name]


def test_car_default_is_small_and_int8_friendly():
    model = build_model(load_spec("car-small"))
    assert model.count_params() <= 150_000
    allowed = {"InputLayer", "Rescaling", "Conv2D", "SeparableConv2D", "BatchNormalization", "Activation",
               "MaxPooling2D", "GlobalAveragePooling2D", "Dropout", "Dense"}
    assert {type(layer).__name__ for layer in model.layers} <= allowed
    assert {layer.activation.__name__ for layer in model.layers if type(layer).__name__ == "Activation"} == {"relu", "softmax"}


def test_every_model_starts_with_rescaling_and_ends_with_softmax():
    for name in PRESETS:
        model = build_model(load_spec(name), num_classes=4)
        assert type(model.layers[1]).__name__ == "Rescaling"
        assert model.layers[-1].activation.__name__ == "softmax"
        assert model.output_shape == (None, 4)


def test_toml_and_json_specs_load(tmp_path):
    toml = tmp_path / "tiny.toml"
    toml.write_text('input_shape = [16, 16, 3]\n[[layers]]\ntype = "conv"\nfilters = 4\npadding = "same"\n'
                    '[[layers]]\ntype = "maxpool"\n[[layers]]\ntype = "flatten"\n')
    spec = load_spec(toml)
    assert spec.name == "tiny" and spec.output_shapes()[-1] == (256,)
    as_json = tmp_path / "tiny.json"
    as_json.write_text(json.dumps(spec.to_dict()))
    assert count_params(load_spec(as_json)) == count_params(spec) == 112 + 2570


@pytest.mark.parametrize("layers, message", [
    ([{"type": "lstm"}], "unknown layer type 'lstm'"),
    ([{"type": "conv"}], "needs filters"),
    ([{"type": "conv", "filters": 8, "padding": "full"}], "padding"),
    ([{"type": "conv", "filters": 8, "kernel": 7}, {"type": "maxpool"}] * 3, "would output shape"),
    ([{"type": "dense", "units": 8}], "flat input"),
    ([{"type": "conv", "filters": 8}], "must end with"),
    ([{"type": "dropout", "rate": 1.5}, {"type": "flatten"}], "dropout rate"),
    ([{"type": "conv", "filters": 8, "colour": 1}, {"type": "flatten"}], "unknown option"),
])
def test_spec_errors_are_user_errors_before_training(layers, message):
    with pytest.raises(UserError, match=message):
        ModelSpec.from_dict({"name": "bad", "layers": layers})


def test_unknown_preset_or_missing_file(tmp_path):
    with pytest.raises(UserError, match="neither a preset"):
        load_spec(tmp_path / "nope.json")
    broken = tmp_path / "broken.toml"
    broken.write_text("layers = [")
    with pytest.raises(UserError, match="cannot read model spec"):
        load_spec(broken)


# A tiny spec whose costs are counted by hand below: 8x8x3 input, 3 classes.
TINY_LAYERS = [
    {"type": "conv", "filters": 4, "padding": "same"},  # 8x8 out: 64 * (3*3*3) * 4 = 6,912 MACs
    {"type": "residual", "filters": 8, "strides": 2},  # 4x4 out: 16*(3*3*4)*8 + 16*(3*3*8)*8 + 16*4*8 (1x1 shortcut)
    {"type": "conv", "filters": 8, "padding": "same", "separable": True, "batchnorm": True},  # 16*3*3*8 + 16*8*8
    {"type": "gap"},
    {"type": "dense", "units": 5},  # 8 * 5
]
TINY_MACS = 6_912 + (4_608 + 9_216 + 512) + (1_152 + 1_024) + 40 + 5 * 3


def _tiny() -> ModelSpec:
    return ModelSpec.from_dict({"name": "tiny", "input_shape": [8, 8, 3], "layers": TINY_LAYERS})


def test_macs_match_a_hand_count_and_params_match_keras():
    from train.models.params import cost

    spec = _tiny()
    assert cost(spec, 3).macs == TINY_MACS
    assert cost(spec, 3).params == build_model(spec, 3).count_params()
    # the hand count is not vacuous: a wider classifier changes it by exactly its weights
    assert cost(spec, 4).macs == TINY_MACS + 5


def test_residual_block_adds_its_input_and_projects_when_the_shape_changes():
    model = build_model(_tiny(), 3)
    adds = [layer for layer in model.layers if type(layer).__name__ == "Add"]
    assert len(adds) == 1
    shortcut_inputs = {tuple(t.shape[1:]) for t in adds[0].input}
    assert shortcut_inputs == {(4, 4, 8)}
    same = ModelSpec.from_dict({"name": "same", "input_shape": [8, 8, 3], "layers": [
        {"type": "conv", "filters": 8, "padding": "same"}, {"type": "residual", "filters": 8}, {"type": "gap"}]})
    kinds = [type(layer).__name__ for layer in build_model(same, 3).layers]
    assert kinds.count("Conv2D") == 3  # stem + two in the block: no projection when the shape is kept


@pytest.mark.slow
def test_int8_size_is_the_converted_models_tensor_data():
    """The int8 size `edgekit presets` prints is within 2% of a real int8 conversion's tensor data
    (the converter shares identical constant buffers and adds a few shape constants)."""
    import numpy as np

    from convert.tflite import check_full_integer, convert_keras, size_breakdown
    from train.models.params import cost

    for name in ("car-resnet8", "car-small"):
        spec = load_spec(name, input_shape=(16, 16, 3))
        model = build_model(spec)
        rng = np.random.default_rng(0)  # trained-like biases: untrained ones are all zero and shared
        model.set_weights([w + rng.normal(0, 0.1, w.shape).astype(w.dtype) if w.ndim == 1 else w
                           for w in model.get_weights()])
        flatbuffer = convert_keras(model, "int8", rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8))
        check_full_integer(flatbuffer)  # every op runs in int8 (conv, depthwise, add, mean, dense)
        actual = size_breakdown(flatbuffer)["tensor_data"]
        assert abs(cost(spec).int8_bytes - actual) <= 0.02 * actual, (name, cost(spec).int8_bytes, actual)


def test_presets_table_shows_macs_and_int8_size(capsys):
    import argparse

    from train.commands import presets

    presets.run(argparse.Namespace(names=["baseline"], summary=False, classes=10, input_shape="32x32x3"))
    row = capsys.readouterr().out.splitlines()[1].split()
    # baseline by hand: conv 30*30*(3*3*3)*8 + dense 1,800*256 + classifier 256*10
    assert row[:4] == ["baseline", "463,850", "463,850", f"{30 * 30 * 27 * 8 + 1800 * 256 + 2560:,}"]
    assert row[4] == "464.7"  # weights 463,576 bytes + int32 biases (8 + 256 + 10) * 4
