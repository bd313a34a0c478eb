"""Parameter counts from a spec alone, by arithmetic: `edgekit presets` prints its table without
importing TensorFlow (which alone takes seconds). tests/test_quiet_output.py checks every preset
against Keras' own count_params()."""

from __future__ import annotations

from train.models.spec import ModelSpec

BATCHNORM = 4  # gamma, beta, moving mean, moving variance per channel


def param_count(spec: ModelSpec, num_classes: int = 10) -> int:
    """What `build_model(spec, num_classes).count_params()` gives, without building it."""
    total = 0
    shape: tuple[int, ...] = spec.input_shape
    for layer, out in zip(spec.layers, spec.output_shapes(), strict=True):
        kind, channels_in = layer["type"], shape[-1]
        if kind == "conv":
            k, filters, bn = layer["kernel"], layer["filters"], layer["batchnorm"]
            weights = (k * k * channels_in + channels_in * filters if layer["separable"]
                       else k * k * channels_in * filters)
            total += weights + (BATCHNORM * filters if bn else filters)
        elif kind == "dense":
            units, bn = layer["units"], layer["batchnorm"]
            total += channels_in * units + (BATCHNORM * units if bn else units)
        elif kind == "batchnorm":
            total += BATCHNORM * channels_in
        shape = out
    return total + shape[-1] * num_classes + num_classes
