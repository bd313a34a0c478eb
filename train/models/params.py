"""A spec's cost by arithmetic: parameters, multiply-accumulates per frame, int8 size.

`edgekit presets` prints its table without importing TensorFlow (which alone takes seconds).
tests/test_quiet_output.py checks every preset's parameters against Keras' own count_params(),
tests/test_train_models.py the MACs against a hand count and the int8 size against a converted model.

- MACs: one multiply-accumulate per weight use in conv, depthwise conv and dense layers (what the
  car's int8 kernels spend their time on); BatchNorm (folded into the conv by the converter),
  pooling, adds and activations are not counted.
- int8 size: the tensor data of the int8 flatbuffer (convert.tflite.size_breakdown "tensor_data"):
  one byte a weight and an int32 bias per output channel of every conv, depthwise conv and dense,
  BatchNorm folded in. Quantization scales (24 bytes a channel) and names are not counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from train.models.spec import ModelSpec

BATCHNORM = 4  # gamma, beta, moving mean, moving variance per channel
INT32 = 4


@dataclass(frozen=True)
class WeightedOp:
    """One conv, depthwise conv or dense op of the built model."""

    weights: int
    out_channels: int
    positions: int  # output pixels (1 for dense)
    keras_extra: int  # Keras parameters beside the weights: bias, or BatchNorm's four per channel
    int8_bias: bool = True  # the flatbuffer stores an int32 bias for it

    @property
    def macs(self) -> int:
        return self.weights * self.positions


@dataclass(frozen=True)
class Cost:
    params: int
    macs: int
    int8_bytes: int


def weighted_ops(spec: ModelSpec, num_classes: int = 10) -> Iterator[WeightedOp]:
    """Every conv / depthwise / dense op of `build_model(spec, num_classes)`, the classifier last."""
    shape: tuple[int, ...] = spec.input_shape
    for layer, out in zip(spec.layers, spec.output_shapes(), strict=True):
        kind, channels_in = layer["type"], shape[-1]
        positions = out[0] * out[1] if len(out) == 3 else 1
        if kind == "conv":
            extra = BATCHNORM * layer["filters"] if layer["batchnorm"] else layer["filters"]
            yield from _conv(layer["kernel"], channels_in, layer["filters"], positions, layer["separable"], extra)
        elif kind == "residual":
            filters = layer["filters"]
            yield from _conv(3, channels_in, filters, positions, layer["separable"], BATCHNORM * filters)
            yield from _conv(3, filters, filters, positions, layer["separable"], BATCHNORM * filters)
            if layer["strides"] != 1 or channels_in != filters:
                yield from _conv(1, channels_in, filters, positions, False, BATCHNORM * filters)
        elif kind == "dense":
            units = layer["units"]
            yield WeightedOp(channels_in * units, units, 1, BATCHNORM * units if layer["batchnorm"] else units)
        elif kind == "batchnorm":  # a BatchNorm on its own: parameters, no MACs (a per-channel mul + add)
            yield WeightedOp(0, channels_in, 0, BATCHNORM * channels_in, int8_bias=False)
        shape = out
    yield WeightedOp(shape[-1] * num_classes, num_classes, 1, num_classes)


def _conv(kernel: int, channels_in: int, filters: int, positions: int, separable: bool,
          extra: int) -> Iterator[WeightedOp]:
    if separable:  # SeparableConv2D: depthwise k x k, then pointwise 1x1 (one bias, the pointwise's)
        yield WeightedOp(kernel * kernel * channels_in, channels_in, positions, 0)
        yield WeightedOp(channels_in * filters, filters, positions, extra)
    else:
        yield WeightedOp(kernel * kernel * channels_in * filters, filters, positions, extra)


def cost(spec: ModelSpec, num_classes: int = 10) -> Cost:
    """Parameters (as Keras counts them), MACs per frame and int8 tensor bytes of the built model.

    Example:
        >>> from train.models.spec import load_spec
        >>> cost(load_spec("baseline")).macs
        657760
    """
    ops = list(weighted_ops(spec, num_classes))
    return Cost(params=sum(op.weights + op.keras_extra for op in ops),
                macs=sum(op.macs for op in ops),
                int8_bytes=sum(op.weights + (INT32 * op.out_channels if op.int8_bias else 0) for op in ops))


def param_count(spec: ModelSpec, num_classes: int = 10) -> int:
    """What `build_model(spec, num_classes).count_params()` gives, without building it."""
    return cost(spec, num_classes).params
