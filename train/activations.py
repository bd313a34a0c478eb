"""Activation maps of chosen layers for the first k images, like the chapter's Figures 5.7-5.10
(the chapter: docs/training.md#the-chapter)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import UserError

MAP_LAYERS = ("Conv2D", "SeparableConv2D", "DepthwiseConv2D", "MaxPooling2D", "AveragePooling2D", "Activation")


def default_layers(model: Any) -> list[str]:
    """Every conv and pooling layer (for batch-normed convs: the activation after them)."""
    names = []
    for layer in model.layers:
        kind = type(layer).__name__
        shape = getattr(layer, "output", None)
        if kind in MAP_LAYERS and shape is not None and len(layer.output.shape) == 4:
            if kind == "Activation" and names and names[-1].startswith(("conv", "separable")):
                continue
            names.append(layer.name)
    return names


def activation_grids(model: Any, images: np.ndarray, layer_names: list[str], out_dir: Path) -> list[Path]:
    """One PNG per layer: a row per image, its channels side by side (viridis).

    Example:
        >>> activation_grids(model, x_test[:10], ["conv2d_1"], Path("acts"))  # doctest: +SKIP
    """
    import keras
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    known = {layer.name: layer for layer in model.layers}
    missing = [name for name in layer_names if name not in known]
    if missing:
        raise UserError(f"no layer named {missing}: the model's layers are {', '.join(known)}")
    flat = [name for name in layer_names if len(known[name].output.shape) != 4]
    if flat:
        raise UserError(f"layer(s) {flat} do not output image-shaped maps: pick conv or pooling layers")
    probe = keras.Model(model.inputs, [known[name].output for name in layer_names])
    outputs = probe.predict(images, verbose=0)
    if len(layer_names) == 1:
        outputs = [outputs]
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, acts in zip(layer_names, outputs, strict=True):
        rows = [np.concatenate([act[:, :, c] for c in range(act.shape[2])], axis=1) for act in acts]
        grid = np.concatenate(rows, axis=0)
        height, width = acts.shape[1:3]
        fig_w = min(40.0, max(4.0, grid.shape[1] / 12))
        fig, ax = plt.subplots(figsize=(fig_w, max(2.0, fig_w * grid.shape[0] / grid.shape[1])))
        ax.matshow(grid, cmap="viridis")
        ax.set_title(f"{name}: {acts.shape[3]} channels, {height}x{width}, {len(acts)} images")
        ax.set_xticks([])
        ax.set_yticks([])
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths
