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
