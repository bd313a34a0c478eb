"""Model specs: a small declarative list of layers, checked before any training.

A spec is a dict (read from JSON or TOML) like::

    {"name": "baseline", "input_shape": [32, 32, 3],
     "layers": [{"type": "conv", "filters": 8, "kernel": 3, "activation": "relu"},
                {"type": "maxpool"}, {"type": "flatten"},
                {"type": "dense", "units": 256, "activation": "relu"}]}

Every model built from it starts with Rescaling(1/255) (raw uint8 in) and ends
with Dense(num_classes) + softmax, which the spec does not list.

Example:
    >>> spec = ModelSpec.from_dict({"name": "m", "layers": [{"type": "flatten"}]})
    >>> spec.output_shapes()[-1]
    (3072,)
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.errors import UserError

ACTIVATIONS = ("relu", "relu6", "linear", "sigmoid", "tanh", "elu", "selu", "gelu", "swish")
PADDINGS = ("valid", "same")

# layer type -> (required keys, optional keys with defaults)
LAYER_KEYS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "conv": (("filters",), {"kernel": 3, "strides": 1, "padding": "valid", "activation": "relu",
                            "separable": False, "batchnorm": False}),
    # a ResNet basic block: conv 3x3 (strides) - BN - act - conv 3x3 - BN, plus the input (through a
    # 1x1 conv + BN when the shape changes), then act; 'same' padding throughout
    "residual": (("filters",), {"strides": 1, "activation": "relu", "separable": False}),
    "maxpool": ((), {"pool": 2, "strides": None, "padding": "valid"}),
    "avgpool": ((), {"pool": 2, "strides": None, "padding": "valid"}),
    "flatten": ((), {}),
    "gap": ((), {}),
    "dense": (("units",), {"activation": "relu", "batchnorm": False}),
    "dropout": (("rate",), {}),
    "batchnorm": ((), {}),
    "activation": (("activation",), {}),
}


@dataclass(frozen=True)
class ModelSpec:
    """A checked model spec.

    Args:
        name: the model's name (a preset name or the spec file's stem).
        layers: the body's layers, each a dict with "type" and its options.
        input_shape: (height, width, channels) of the raw uint8 input.
        description: free text shown by `edgekit presets`.
    """

    name: str
    layers: tuple[dict[str, Any], ...]
    input_shape: tuple[int, int, int] = (32, 32, 3)
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    sized: bool = False  # True when the spec (not a default) fixed input_shape

    @property
    def image_size(self) -> tuple[int, int] | None:
        """The (height, width) the spec asks for, or None if it takes any size."""
        return (self.input_shape[0], self.input_shape[1]) if self.sized else None

    @classmethod
    def from_dict(cls, data: dict[str, Any], input_shape: tuple[int, int, int] | None = None) -> ModelSpec:
        if not isinstance(data, dict) or not isinstance(data.get("layers"), list):
            raise UserError("a model spec needs a 'layers' list: see docs/training.md for the format")
        layers = tuple(_check_layer(index, layer) for index, layer in enumerate(data["layers"]))
        shape = tuple(int(v) for v in (input_shape or data.get("input_shape") or (32, 32, 3)))
        if len(shape) != 3 or min(shape) < 1:
            raise UserError(f"input_shape must be [height, width, channels], got {list(shape)}")
        known = {"name", "layers", "input_shape", "description"}
        spec = cls(name=str(data.get("name", "model")), layers=layers, input_shape=shape,  # type: ignore[arg-type]
                   description=str(data.get("description", "")),
                   extra={k: v for k, v in data.items() if k not in known},
                   sized=bool(input_shape or data.get("input_shape")))
        spec.output_shapes()  # raises on a shape that collapses
        return spec

    def with_input_shape(self, input_shape: tuple[int, int, int]) -> ModelSpec:
        return ModelSpec.from_dict({**self.to_dict(), "input_shape": list(input_shape)})

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "input_shape": list(self.input_shape), "layers": [dict(layer) for layer in self.layers],
                **self.extra}

    def output_shapes(self) -> list[tuple[int, ...]]:
        """The output shape of every body layer; UserError if one collapses below 1x1."""
        shape: tuple[int, ...] = self.input_shape
        shapes = []
        for index, layer in enumerate(self.layers):
            shape = _next_shape(shape, layer)
            if any(dim < 1 for dim in shape):
                raise UserError(
                    f"model {self.name!r}: layer {index} ({layer['type']}) would output shape "
                    f"{list(shape)} from a {self.input_shape[0]}x{self.input_shape[1]} input: "
                    "use 'same' padding, fewer pooling layers or a larger input"
                )
            shapes.append(shape)
        if len(shape) != 1:
            raise UserError(f"model {self.name!r} must end with 'flatten', 'gap' or 'dense' before the classifier")
        return shapes


def _check_layer(index: int, layer: Any) -> dict[str, Any]:
    if not isinstance(layer, dict) or "type" not in layer:
        raise UserError(f"layer {index} must be a table/object with a 'type', got {layer!r}")
    kind = layer["type"]
    if kind not in LAYER_KEYS:
        raise UserError(f"layer {index}: unknown layer type {kind!r}: use one of {', '.join(LAYER_KEYS)}")
    required, optional = LAYER_KEYS[kind]
    missing = [key for key in required if key not in layer]
    if missing:
        raise UserError(f"layer {index} ({kind}) needs {', '.join(missing)}")
    unknown = set(layer) - {"type", "name", *required, *optional}
    if unknown:
        raise UserError(f"layer {index} ({kind}): unknown option(s) {sorted(unknown)}; known: {sorted([*required, *optional])}")
    checked = {"type": kind, **optional, **layer}
    if checked.get("activation") is not None and checked["activation"] not in ACTIVATIONS:
        raise UserError(f"layer {index}: unknown activation {checked['activation']!r}: use one of {', '.join(ACTIVATIONS)}")
    if "padding" in checked and checked["padding"] not in PADDINGS:
        raise UserError(f"layer {index}: padding must be 'valid' or 'same', got {checked['padding']!r}")
    for key in ("filters", "units", "kernel", "strides", "pool"):
        value = checked.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise UserError(f"layer {index} ({kind}): {key} must be a positive integer, got {value!r}")
    if kind == "dropout" and not (0 <= float(checked["rate"]) < 1):
        raise UserError(f"layer {index}: dropout rate must be in [0, 1), got {checked['rate']!r}")
    return checked


def _conv_size(size: int, kernel: int, stride: int, padding: str) -> int:
    if padding == "same":
        return -(-size // stride)
    return (size - kernel) // stride + 1


def _next_shape(shape: tuple[int, ...], layer: dict[str, Any]) -> tuple[int, ...]:
    kind = layer["type"]
    if kind in ("dense",):
        if len(shape) != 1:
            raise UserError(f"a dense layer needs a flat input: add 'flatten' or 'gap' before it (shape {list(shape)})")
        return (layer["units"],)
    if kind in ("dropout", "batchnorm", "activation"):
        return shape
    if len(shape) != 3:
        raise UserError(f"layer type {kind!r} needs an image-shaped input, got shape {list(shape)}")
    height, width, channels = shape
    if kind == "residual":
        s = layer["strides"]
        return (_conv_size(height, 3, s, "same"), _conv_size(width, 3, s, "same"), layer["filters"])
    if kind == "conv":
        k, s, p = layer["kernel"], layer["strides"], layer["padding"]
        return (_conv_size(height, k, s, p), _conv_size(width, k, s, p), layer["filters"])
    if kind in ("maxpool", "avgpool"):
        k, p = layer["pool"], layer["padding"]
        s = layer["strides"] or k
        return (_conv_size(height, k, s, p), _conv_size(width, k, s, p), channels)
    if kind == "flatten":
        return (height * width * channels,)
    return (channels,)  # gap


def load_spec(ref: str | Path, input_shape: tuple[int, int, int] | None = None) -> ModelSpec:
    """A preset name or a .json/.toml spec file -> checked ModelSpec.

    Example:
        >>> load_spec("baseline").name
        'baseline'
    """
    from train.models.presets import PRESETS

    ref_str = str(ref)
    if ref_str in PRESETS:
        return ModelSpec.from_dict({"name": ref_str, **PRESETS[ref_str]}, input_shape)
    path = Path(ref_str)
    if not path.exists():
        raise UserError(f"{ref_str!r} is neither a preset ({', '.join(PRESETS)}) nor an existing spec file")
    try:
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise UserError(f"cannot read model spec {path}: {error}") from error
    if isinstance(data, dict):
        data.setdefault("name", path.stem)
    return ModelSpec.from_dict(data, input_shape)
