"""ModelSpec -> Keras model: Rescaling(1/255) first, Dense(num_classes) + softmax last."""

from __future__ import annotations

from collections import Counter
from typing import Any

from train.models.spec import ModelSpec

# Keras class-style names, numbered per type from 1 like the chapter's summaries (conv2d_1, ...).
_BASE_NAMES = {"conv": "conv2d", "sepconv": "separable_conv2d", "maxpool": "max_pooling2d",
               "avgpool": "average_pooling2d", "flatten": "flatten", "gap": "global_average_pooling2d",
               "dense": "dense", "dropout": "dropout", "batchnorm": "batch_normalization",
               "activation": "activation", "add": "add"}


def build_model(spec: ModelSpec, num_classes: int = 10, bn_momentum: float | None = None) -> Any:
    """A Keras model for raw uint8 images of spec.input_shape.

    bn_momentum: every BatchNormalization layer's momentum (None: Keras' 0.99).

    Example:
        >>> from train.models import load_spec
        >>> build_model(load_spec("baseline")).count_params()
        463850
    """
    import keras
    from keras import layers

    counts: Counter[str] = Counter()
    bn_options = {} if bn_momentum is None else {"momentum": float(bn_momentum)}

    def name(kind: str, given: str | None = None) -> str:
        counts[kind] += 1
        return given or f"{_BASE_NAMES[kind]}_{counts[kind]}"

    inputs = keras.Input(shape=spec.input_shape, name="image")
    x = layers.Rescaling(1.0 / 255, name="rescaling")(inputs)
    for layer in spec.layers:
        kind = layer["type"]
        given = layer.get("name")
        if kind == "conv":
            bn = layer["batchnorm"]
            common = dict(kernel_size=layer["kernel"], strides=layer["strides"], padding=layer["padding"],
                          use_bias=not bn, activation=None if bn else layer["activation"])
            if layer["separable"]:
                x = layers.SeparableConv2D(layer["filters"], name=name("sepconv", given), **common)(x)
            else:
                x = layers.Conv2D(layer["filters"], name=name("conv", given), **common)(x)
            if bn:
                x = layers.BatchNormalization(name=name("batchnorm"), **bn_options)(x)
                x = layers.Activation(layer["activation"], name=name("activation"))(x)
        elif kind == "residual":
            x = _residual(x, layer, name, bn_options)
        elif kind in ("maxpool", "avgpool"):
            pool_cls = layers.MaxPooling2D if kind == "maxpool" else layers.AveragePooling2D
            x = pool_cls(layer["pool"], strides=layer["strides"], padding=layer["padding"],
                         name=name(kind, given))(x)
        elif kind == "flatten":
            x = layers.Flatten(name=name(kind, given))(x)
        elif kind == "gap":
            x = layers.GlobalAveragePooling2D(name=name(kind, given))(x)
        elif kind == "dense":
            bn = layer["batchnorm"]
            x = layers.Dense(layer["units"], use_bias=not bn, activation=None if bn else layer["activation"],
                             name=name(kind, given))(x)
            if bn:
                x = layers.BatchNormalization(name=name("batchnorm"), **bn_options)(x)
                x = layers.Activation(layer["activation"], name=name("activation"))(x)
        elif kind == "dropout":
            x = layers.Dropout(float(layer["rate"]), name=name(kind, given))(x)
        elif kind == "batchnorm":
            x = layers.BatchNormalization(name=name(kind, given), **bn_options)(x)
        elif kind == "activation":
            x = layers.Activation(layer["activation"], name=name(kind, given))(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inputs, outputs, name=spec.name.replace(" ", "_"))


def _residual(x: Any, layer: dict[str, Any], name: Any, bn_options: dict[str, float]) -> Any:
    """A ResNet basic block (see train.models.spec): every op an int8 XNNPACK kernel (conv, add)."""
    from keras import layers

    filters, strides, act = layer["filters"], layer["strides"], layer["activation"]

    def conv(y: Any, size: int, stride: int) -> Any:
        if layer["separable"] and size > 1:
            y = layers.SeparableConv2D(filters, size, strides=stride, padding="same", use_bias=False,
                                       name=name("sepconv"))(y)
        else:
            y = layers.Conv2D(filters, size, strides=stride, padding="same", use_bias=False, name=name("conv"))(y)
        return layers.BatchNormalization(name=name("batchnorm"), **bn_options)(y)

    y = layers.Activation(act, name=name("activation"))(conv(x, 3, strides))
    y = conv(y, 3, 1)
    shortcut = x if strides == 1 and int(x.shape[-1]) == filters else conv(x, 1, strides)
    y = layers.Add(name=name("add"))([y, shortcut])
    return layers.Activation(act, name=name("activation"))(y)


def count_params(spec: ModelSpec, num_classes: int = 10) -> int:
    """Total parameters of the built model."""
    return int(build_model(spec, num_classes).count_params())
