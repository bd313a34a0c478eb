"""Keras model -> TFLite flatbuffer in one of four modes.

- float32: plain conversion.
- float16: weights stored as float16, computed in float32.
- dynamic: dynamic-range quantization (int8 weights, float activations).
- int8: full-integer quantization from a representative dataset; uint8 input
  (raw pixels, the Rescaling layer is inside the model) and uint8 output.
  An op that cannot run in integer arithmetic is an error naming the op.

Example:
    >>> flatbuffer = convert_keras(model, "int8", representative=images_uint8)
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from tqdm import tqdm

from edge.errors import UserError

MODES = ("float32", "float16", "dynamic", "int8")
# Delegate placeholders the interpreter adds after loading carry no real tensors.
_IGNORED_OPS = {"DELEGATE"}
# The converter wraps an op it cannot quantize in these; the op inside is the culprit.
_WRAPPERS = {"QUANTIZE", "DEQUANTIZE"}


class QuantizationError(UserError):
    """An op could not be quantized to integers."""


def _op_from_message(message: str) -> str | None:
    for pattern in (r"TF Select ops: ([A-Za-z0-9_]+)", r"'tf\.([A-Za-z0-9_]+)' op", r"op: '([^']+)'",
                    r"operator ([A-Z_0-9]+)", r"'tfl\.([a-z_0-9]+)'"):
        match = re.search(pattern, message)
        if match:
            return match.group(1).upper()
    return None


def convert_keras(model: Any, mode: str, representative: np.ndarray | None = None) -> bytes:
    """Convert a Keras model; `representative` (N, h, w, c) uint8 is required for int8.

    Raises QuantizationError naming the op when int8 cannot be full-integer.
    """
    import tensorflow as tf

    if mode not in MODES:
        raise UserError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "int8":
        if representative is None or len(representative) == 0:
            raise UserError("int8 conversion needs a representative dataset")
        images = representative

        def representative_dataset() -> Iterator[list[np.ndarray]]:
            for image in tqdm(images, desc="int8 calibration", unit="img", leave=False):
                yield [image[None].astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    try:
        tf.get_logger().setLevel(logging.ERROR)
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Statistics for quantized inputs were expected" etc.
            return bytes(converter.convert())
    except Exception as error:  # the converter raises ConverterError, RuntimeError, ValueError...
        message = " ".join(str(error).split())
        op = _op_from_message(message)
        detail = f"op {op} has no TFLite builtin kernel" if op else f"the converter failed: {message[:300]}"
        cls = QuantizationError if mode == "int8" else UserError
        raise cls(f"{mode}: {detail}: replace that layer"
                  + (", or use --mode dynamic/float16" if mode == "int8" else "")) from error


def float_ops(flatbuffer: bytes) -> list[str]:
    """Ops of a converted model that compute in float32, as "OP (output tensor name)".

    QUANTIZE/DEQUANTIZE wrappers are named only when no other op is float.
    """
    from edge.interpreter import TFLiteModel

    model = TFLiteModel(flatbuffer, num_threads=1)
    tensors = {t["index"]: t for t in model.tensor_details()}
    found: list[tuple[str, str]] = []
    for op in model.ops():
        if op["op_name"] in _IGNORED_OPS:
            continue
        indices = [i for i in list(op["inputs"]) + list(op["outputs"]) if i >= 0 and i in tensors]
        if any(np.dtype(tensors[i]["dtype"]) == np.float32 for i in indices):
            outputs = [tensors[i]["name"] for i in op["outputs"] if i in tensors]
            found.append((op["op_name"], outputs[0] if outputs else "?"))
    real = [f for f in found if f[0] not in _WRAPPERS] or found
    return [f"{name} ({tensor})" for name, tensor in real]


def check_full_integer(flatbuffer: bytes) -> None:
    """Raise QuantizationError naming every op left in float by an int8 conversion."""
    left = float_ops(flatbuffer)
    if left:
        raise QuantizationError(
            f"int8: op{'s' if len(left) > 1 else ''} {', '.join(left)} cannot be quantized and would run in float: "
            "replace that layer, or use --mode dynamic/float16"
        )


def size_breakdown(flatbuffer: bytes) -> dict[str, int]:
    """Where a flatbuffer's bytes go: tensor data, quantization parameters, tensor names, the rest.

    Per-channel int8 stores, for every output channel of every conv/dense layer, a float32
    scale and an int64 zero point for the weights and again for the int32 bias: 24 bytes a
    channel on top of the weights, which float32 does not pay. On small models with many
    channels this, not the weights, decides the size ratio.

    Example:
        >>> size_breakdown(flatbuffer)["quantization"]
        26592
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    data = sum(len(b.data) for b in model.buffers if b.data is not None)
    tensors = [t for graph in model.subgraphs for t in graph.tensors]
    names = sum(len(t.name) for t in tensors if t.name)
    quantization = sum(np.asarray(getattr(t.quantization, key)).nbytes
                       for t in tensors if t.quantization is not None
                       for key in ("scale", "zeroPoint", "min", "max") if getattr(t.quantization, key) is not None)
    channels = sum(len(t.quantization.scale) for t in tensors
                   if t.quantization is not None and t.quantization.scale is not None and len(t.quantization.scale) > 1)
    return {"total": len(flatbuffer), "tensor_data": data, "quantization": quantization, "names": names,
            "other": len(flatbuffer) - data - quantization - names, "per_channel_scales": channels}
