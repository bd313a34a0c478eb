"""One TFLite model, run by whichever LiteRT interpreter this machine has.

Backends, in order of preference: `ai_edge_litert` (what the car runs),
`tflite_runtime` (older Raspberry Pi OS installs), then `tensorflow.lite`
(imported through importlib, only when neither of the others exists).

The model input is always a preprocessed uint8 image (see edge.preprocess):
an integer model with uint8 input takes it as is, a float model gets the same
pixel values as float32 (the Rescaling layer is inside the model). Outputs are
dequantized to float32 probabilities.

Example:
    >>> model = TFLiteModel(Path("bundle/model.tflite"), num_threads=1)
    >>> probabilities = model.predict(np.zeros(model.input_shape, np.uint8))
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import UserError
from edge.packages import installed_version

# (backend name, module holding `Interpreter`, distribution for the version)
_BACKENDS: tuple[tuple[str, str, str], ...] = (
    ("ai_edge_litert", "ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite_runtime", "tflite_runtime.interpreter", "tflite-runtime"),
    ("tensorflow.lite", "tensorflow", "tensorflow"),
)


def _version(distribution: str, module: Any = None) -> str:
    return installed_version(distribution) or str(getattr(module, "__version__", "unknown"))


def _find_backend() -> tuple[str, str, str]:
    for name, module_name, distribution in _BACKENDS:
        if importlib.util.find_spec(module_name.split(".")[0]) is not None:
            return name, module_name, distribution
    raise UserError(
        "no TFLite interpreter is installed: pip install ai-edge-litert "
        "(or tflite-runtime on an older Raspberry Pi OS)"
    )


def available_backend() -> tuple[str, str]:
    """(name, version) of the interpreter TFLiteModel will use, e.g. ("ai_edge_litert", "2.3.0")."""
    name, _, distribution = _find_backend()
    return name, _version(distribution)


def _interpreter_class() -> tuple[type, str, str]:
    name, module_name, distribution = _find_backend()
    module = importlib.import_module(module_name)
    cls = module.lite.Interpreter if name == "tensorflow.lite" else module.Interpreter
    return cls, name, _version(distribution, module)


def _quantization(detail: dict[str, Any]) -> tuple[float, int]:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return float(scale), int(zero_point)


class TFLiteModel:
    """A TFLite classifier with one image input and one probability output.

    Args:
        model: path to a .tflite file, or its bytes.
        num_threads: interpreter threads; None means all cores.

    Example:
        >>> model = TFLiteModel(Path("model.tflite"), num_threads=1)
        >>> model.predict(image_uint8).argmax()
    """

    def __init__(self, model: Path | str | bytes, num_threads: int | None = None) -> None:
        cls, self.backend, self.backend_version = _interpreter_class()
        self.num_threads = int(num_threads or os.cpu_count() or 1)
        source = "<bytes>" if isinstance(model, bytes) else str(model)
        if not isinstance(model, bytes) and not Path(model).is_file():
            raise UserError(f"model file {model} does not exist: check the path")
        try:
            if isinstance(model, bytes):
                self._interpreter = cls(model_content=model, num_threads=self.num_threads)
            else:
                self._interpreter = cls(model_path=str(model), num_threads=self.num_threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UserError(
                f"{self.backend} {self.backend_version} cannot load {source}: {first_line} "
                "(a newer converter than this interpreter? run `edgekit check-runtime`)"
            ) from error
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise UserError(
                f"{source} has {len(inputs)} inputs and {len(outputs)} outputs: "
                "edgekit runs image classifiers with exactly one of each"
            )
        self._input, self._output = inputs[0], outputs[0]
        shape = tuple(int(v) for v in self._input["shape"])
        self.input_shape: tuple[int, ...] = shape[1:] if len(shape) == 4 else shape
        self.input_dtype = np.dtype(self._input["dtype"])
        self.output_dtype = np.dtype(self._output["dtype"])
        self.output_size = int(self._output["shape"][-1])
        self.input_quantization = _quantization(self._input)
        self.output_quantization = _quantization(self._output)
        self.is_integer = np.issubdtype(self.input_dtype, np.integer) and np.issubdtype(
            self.output_dtype, np.integer
        )

    def _to_input(self, model_input: np.ndarray) -> np.ndarray:
        """A uint8 image (h, w, c) or batch of one -> the input tensor's dtype and shape."""
        x = np.asarray(model_input)
        if x.shape != self.input_shape and x.shape != (1, *self.input_shape):
            raise UserError(
                f"model input must have shape {self.input_shape}, got {x.shape}: "
                "preprocess the frame with the bundle's preprocessing spec"
            )
        if x.dtype == self.input_dtype:
            tensor = x
        elif np.issubdtype(self.input_dtype, np.integer):
            scale, zero_point = self.input_quantization
            info = np.iinfo(self.input_dtype)
            values = x.astype(np.float32)
            if scale > 0 and (scale, zero_point) != (1.0, 0):
                values = np.round(values / scale) + zero_point
            tensor = np.clip(values, info.min, info.max).astype(self.input_dtype)
        else:
            tensor = x.astype(self.input_dtype)
        return tensor.reshape(1, *self.input_shape)

    def raw_invoke(self, model_input: np.ndarray) -> np.ndarray:
        """Run one input; the output tensor as the model gives it (quantized for integer models)."""
        self._interpreter.set_tensor(self._input["index"], self._to_input(model_input))
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output["index"])[0].copy()

    def dequantize(self, raw_output: np.ndarray) -> np.ndarray:
        """Raw output -> float32 (for integer outputs: (q - zero_point) * scale)."""
        scale, zero_point = self.output_quantization
        if np.issubdtype(raw_output.dtype, np.integer) and scale > 0:
            return ((raw_output.astype(np.float32) - zero_point) * scale).astype(np.float32)
        return raw_output.astype(np.float32)

    def predict(self, model_input: np.ndarray) -> np.ndarray:
        """One preprocessed uint8 image (h, w, c) -> float32 probabilities (output_size,)."""
        return self.dequantize(self.raw_invoke(model_input))

    def predict_batch(self, inputs: Iterable[np.ndarray]) -> np.ndarray:
        """Many inputs (N, h, w, c) -> probabilities (N, output_size), float32."""
        rows = [self.predict(x) for x in inputs]
        return np.stack(rows) if rows else np.empty((0, self.output_size), np.float32)

    def ops(self) -> list[dict[str, Any]]:
        """The model's operators (name, inputs, outputs) as the interpreter lists them."""
        get_ops = getattr(self._interpreter, "_get_ops_details", None)
        return list(get_ops()) if get_ops else []

    def tensor_details(self) -> list[dict[str, Any]]:
        """Every tensor's name, index, dtype and quantization."""
        return list(self._interpreter.get_tensor_details())

    def describe(self) -> dict[str, Any]:
        """Input/output dtypes, shapes and quantization, as JSON-ready values."""
        return {
            "backend": self.backend,
            "backend_version": self.backend_version,
            "input": {
                "shape": [int(v) for v in self._input["shape"]],
                "dtype": self.input_dtype.name,
                "quantization": {"scale": self.input_quantization[0], "zero_point": self.input_quantization[1]},
            },
            "output": {
                "shape": [int(v) for v in self._output["shape"]],
                "dtype": self.output_dtype.name,
                "quantization": {"scale": self.output_quantization[0], "zero_point": self.output_quantization[1]},
            },
        }
