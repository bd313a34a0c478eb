"""The chapter's (docs/training.md#the-chapter) ImageDataGenerator vocabulary, as tf ops (and OpenCV) inside a tf.data pipeline.

Meaning of each option (all off by default):

- brightness_range [lo, hi]: multiply pixels by a factor drawn from [lo, hi] (1 = unchanged).
- rotation_range r: rotate by an angle drawn from [-r, r] degrees.
- width_shift_range / height_shift_range: a list of pixel offsets, one picked at random
  (the chapter's advice, e.g. [-4, -2, 2, 4]); a number < 1 is a fraction of the width/height
  (offset drawn from [-f, f] * size); an integer n >= 1 draws whole pixels from [-n, n].
- shear_range s: shear angle drawn from [-s, s] degrees.
- zoom_range [lo, hi] (or z meaning [1-z, 1+z]): scale factor; > 1 enlarges (zooms in).
- horizontal_flip / vertical_flip: flip with probability 1/2.
- fill_mode: how pixels that come from outside the image are filled: nearest, constant,
  reflect, wrap.

Output: float32 pixels 0..255 (the model's Rescaling layer scales them).
Augmentation replaces samples, it does not add them: each epoch, every training image is
transformed afresh (random seeds come from `tf.data.Dataset.random(seed,
rerandomize_each_iteration=True)`), so runs are repeatable yet epochs differ.

Example:
    >>> config = AugmentConfig.from_dict({"horizontal_flip": True, "width_shift_range": [-2, 2]})
    >>> config.enabled
    True
"""

from __future__ import annotations

import functools
import json
import math
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import UserError, reject_unknown_keys

FILL_MODES = ("nearest", "constant", "reflect", "wrap")


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation options, named as in Keras' old ImageDataGenerator."""

    brightness_range: tuple[float, float] | None = None
    rotation_range: float = 0.0
    width_shift_range: float | tuple[int, ...] = 0.0
    height_shift_range: float | tuple[int, ...] = 0.0
    shear_range: float = 0.0
    zoom_range: float | tuple[float, float] = 0.0
    horizontal_flip: bool = False
    vertical_flip: bool = False
    fill_mode: str = "nearest"

    def __post_init__(self) -> None:
        if self.brightness_range is not None:
            lo, hi = _pair("brightness_range", self.brightness_range)
            if not 0 <= lo <= hi:
                raise UserError(f"brightness_range must be [lo, hi] with 0 <= lo <= hi, got {[lo, hi]}")
            object.__setattr__(self, "brightness_range", (lo, hi))
        for key in ("width_shift_range", "height_shift_range"):
            value = getattr(self, key)
            if isinstance(value, list | tuple):
                if not value or not all(isinstance(v, int | float) for v in value):
                    raise UserError(f"{key} as a list must hold pixel offsets, e.g. [-4, -2, 2, 4]; got {value!r}")
                object.__setattr__(self, key, tuple(int(v) for v in value))
            elif not isinstance(value, int | float) or value < 0:
                raise UserError(f"{key} must be a list of pixel offsets or a non-negative number, got {value!r}")
        if isinstance(self.zoom_range, list | tuple):
            lo, hi = _pair("zoom_range", self.zoom_range)
            if not 0 < lo <= hi:
                raise UserError(f"zoom_range must be [lo, hi] with 0 < lo <= hi, got {[lo, hi]}")
            object.__setattr__(self, "zoom_range", (lo, hi))
        elif not 0 <= float(self.zoom_range) < 1:
            raise UserError(f"zoom_range as one number z means [1-z, 1+z] and must be in [0, 1), got {self.zoom_range}")
        for key in ("rotation_range", "shear_range"):
            if float(getattr(self, key)) < 0:
                raise UserError(f"{key} is in degrees and must be >= 0, got {getattr(self, key)}")
        if self.fill_mode not in FILL_MODES:
            raise UserError(f"fill_mode must be one of {', '.join(FILL_MODES)}, got {self.fill_mode!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> AugmentConfig:
        data = dict(data or {})
        reject_unknown_keys(data, (f.name for f in fields(cls)), "augmentation option(s)")
        return cls(**data)

    @classmethod
    def parse(cls, text: str | None) -> AugmentConfig:
        """A JSON object, a .json/.toml file, or "none" -> AugmentConfig."""
        if not text or text.strip().lower() in ("none", "off", "false"):
            return cls()
        path = Path(text)
        try:
            if path.suffix.lower() in (".json", ".toml") and path.exists():
                raw = path.read_text()
                data = tomllib.loads(raw) if path.suffix.lower() == ".toml" else json.loads(raw)
            else:
                data = json.loads(text)
        except (OSError, ValueError) as error:
            raise UserError(f"cannot read augmentation options {text!r}: {error} "
                            "(give a JSON object such as '{\"horizontal_flip\": true}' or a .json/.toml file)") from error
        if not isinstance(data, dict):
            raise UserError("augmentation options must be a JSON object / TOML table")
        return cls.from_dict(data.get("augment", data))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in data.items()}

    @property
    def enabled(self) -> bool:
        return self.brightness_range is not None or self.geometric

    @property
    def geometric(self) -> bool:
        return bool(self.rotation_range or self.shear_range or self.horizontal_flip or self.vertical_flip
                    or self.zoom_range or self.width_shift_range or self.height_shift_range)

    @property
    def needs_resampling(self) -> bool:
        """Rotation, shear, zoom or fractional shifts: needs the projective transform."""
        fractional = any(isinstance(v, float) and 0 < v < 1 for v in (self.width_shift_range, self.height_shift_range))
        return bool(self.rotation_range or self.shear_range or self.zoom_range or fractional)

    def only(self, key: str) -> AugmentConfig:
        """A config with just one option of this one kept (for previews)."""
        return AugmentConfig(**{key: getattr(self, key), "fill_mode": self.fill_mode})

    def active_options(self) -> list[str]:
        default = AugmentConfig()
        return [f.name for f in fields(self) if f.name != "fill_mode" and getattr(self, f.name) != getattr(default, f.name)]


def _pair(name: str, value: Any) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise UserError(f"{name} must be a list [lo, hi], got {value!r}")
    return float(value[0]), float(value[1])


# The chapter's example values (Figures 5.1 to 5.3), for `edgekit augment-preview`.
CHAPTER_EXAMPLE = AugmentConfig(
    brightness_range=(0.1, 1.5), rotation_range=60, width_shift_range=(-50, -25, 25, 50),
    height_shift_range=(-75, -35, 35, 75), shear_range=60, zoom_range=(0.5, 2.0),
    horizontal_flip=True, vertical_flip=True,
)
CHAPTER_COMBINED = AugmentConfig(
    brightness_range=(0.1, 1.5), rotation_range=60, width_shift_range=(-50, -25, 25, 50), horizontal_flip=True,
)


def _offsets(tf: Any, value: float | tuple[int, ...], size: Any, u: Any) -> Any:
    """Per-image shift in pixels (float32) from uniform draws u in [0, 1)."""
    if isinstance(value, tuple):
        index = tf.cast(u * len(value), tf.int32)
        return tf.gather(tf.constant(value, tf.float32), tf.minimum(index, len(value) - 1))
    if value >= 1:
        return tf.floor(u * (2 * int(value) + 1)) - int(value)
    return (2 * u - 1) * value * size


def _fold(tf: Any, position: Any, size: Any, fill_mode: str) -> tuple[Any, Any]:
    """Integer pixel positions -> source indices inside [0, size) by fill_mode, and the inside mask."""
    if fill_mode == "wrap":
        source = tf.math.floormod(position, size)
    elif fill_mode == "reflect":  # d c b a | a b c d | d c b a
        folded = tf.math.floormod(position, 2 * size)
        source = tf.where(folded < size, folded, 2 * size - 1 - folded)
    else:
        source = tf.clip_by_value(position, 0, size - 1)
    inside = (position >= 0) & (position < size) if fill_mode == "constant" else None
    return source, inside


def _source_index(tf: Any, size: Any, offsets: Any, flip: Any, fill_mode: str) -> tuple[Any, Any]:
    """Source index (B, size) of each output row/column after flip-then-shift, and the inside mask.

    A flipped image shifted by d takes output index j from flipped index j - d, i.e. from
    original index size - 1 - (j - d); outside positions are folded by fill_mode first.
    """
    source, inside = _fold(tf, tf.range(size)[None, :] - tf.cast(offsets, tf.int32)[:, None], size, fill_mode)
    if flip is not None:
        source = tf.where(flip[:, None], size - 1 - source, source)
    return source, inside


BORDERS = {"nearest": "BORDER_REPLICATE", "constant": "BORDER_CONSTANT", "reflect": "BORDER_REFLECT",
           "wrap": "BORDER_WRAP"}


def _warp(images: np.ndarray, transforms: np.ndarray, fill_mode: str) -> np.ndarray:
    """Bilinear warp of each uint8 image (H, W, C) by its inverse affine transform (OpenCV)."""
    import cv2

    if cv2.getNumThreads() != 1:  # a 32x32 image is too small to split; tf.data runs batches in parallel
        cv2.setNumThreads(1)
    border = getattr(cv2, BORDERS[fill_mode])
    height, width = images.shape[1:3]
    out = np.empty_like(images)
    for index, (image, matrix) in enumerate(zip(images, transforms.reshape(-1, 2, 3), strict=True)):
        out[index] = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                    borderMode=border).reshape(image.shape)
    return out


def _resample(tf: Any, images: Any, transforms: Any, fill_mode: str) -> Any:
    """Warp each uint8 image by its (B, 6) output -> input affine transform -> float32."""
    warped = tf.numpy_function(functools.partial(_warp, fill_mode=fill_mode), [images, transforms], tf.uint8,
                               stateful=False)
    return tf.cast(tf.ensure_shape(warped, images.shape), tf.float32)


def _inverse_transforms(tf: Any, width: Any, height: Any, dx: Any, dy: Any, flip_x: Any, flip_y: Any,
                        angle: Any, shear: Any, zoom: Any) -> Any:
    """The sampler's (output -> input) affine transforms, (B, 6), in closed form.

    Forward map about the image centre c: out = R(angle) Sh(shear) zoom F(flip) (in - c) + c + d,
    with Sh = [[1, -sin s], [0, cos s]]; its inverse is in = L^-1 (out - c - d) + c.
    """
    cos, sin = tf.cos(angle), tf.sin(angle)
    tan_s, sec_s = tf.tan(shear), 1 / tf.cos(shear)
    a0 = flip_x * (cos - tan_s * sin) / zoom
    a1 = flip_x * (sin + tan_s * cos) / zoom
    b0 = -flip_y * sec_s * sin / zoom
    b1 = flip_y * sec_s * cos / zoom
    cx, cy = (width - 1) / 2, (height - 1) / 2
    ox, oy = cx + dx, cy + dy
    return tf.stack([a0, a1, cx - a0 * ox - a1 * oy, b0, b1, cy - b0 * ox - b1 * oy], axis=1)


def augment_batch(images: Any, seed: Any, config: AugmentConfig) -> Any:
    """Augment a uint8 batch (B, H, W, C) with stateless randomness from seed (2 ints) -> float32 0..255.

    Flips and whole-pixel shifts alone are one gather of source pixels (no resampling).
    Rotation, shear, zoom or fractional shifts compose every geometric option into one
    affine transform per image, applied bilinearly by OpenCV's `warpAffine` (the same samples
    as TensorFlow's `ImageProjectiveTransformV3`, at a fraction of the CPU time).
    Brightness is one multiply. All draws come from one random op.

    Example:
        >>> augment_batch(np.zeros((2, 8, 8, 3), np.uint8), [1, 2], AugmentConfig(horizontal_flip=True)).shape
        TensorShape([2, 8, 8, 3])
    """
    import tensorflow as tf

    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    u = tf.unstack(tf.random.stateless_uniform([8, batch], seed), num=8)  # one draw per image and option
    flip_x = u[5] < 0.5 if config.horizontal_flip else None
    flip_y = u[6] < 0.5 if config.vertical_flip else None
    factor = None
    if config.brightness_range is not None:
        lo, hi = config.brightness_range
        factor = (lo + (hi - lo) * u[7])[:, None, None, None]
    if config.needs_resampling:
        w, h = tf.cast(width, tf.float32), tf.cast(height, tf.float32)
        dx = _offsets(tf, config.width_shift_range, w, u[3]) if config.width_shift_range else 0.0
        dy = _offsets(tf, config.height_shift_range, h, u[4]) if config.height_shift_range else 0.0
        zoom_lo, zoom_hi = ((1 - config.zoom_range, 1 + config.zoom_range)
                            if not isinstance(config.zoom_range, tuple) else config.zoom_range)
        transforms = _inverse_transforms(
            tf, w, h, dx, dy,
            flip_x=tf.where(flip_x, -1.0, 1.0) if flip_x is not None else 1.0,
            flip_y=tf.where(flip_y, -1.0, 1.0) if flip_y is not None else 1.0,
            angle=(2 * u[0] - 1) * (config.rotation_range * math.pi / 180),
            shear=(2 * u[1] - 1) * (config.shear_range * math.pi / 180),
            zoom=zoom_lo + (zoom_hi - zoom_lo) * u[2])
        x = _resample(tf, images, transforms, config.fill_mode)
    elif config.geometric:
        dx = _offsets(tf, config.width_shift_range, None, u[3]) if config.width_shift_range else tf.zeros([batch])
        dy = _offsets(tf, config.height_shift_range, None, u[4]) if config.height_shift_range else tf.zeros([batch])
        rows, rows_inside = _source_index(tf, height, dy, flip_y, config.fill_mode)
        cols, cols_inside = _source_index(tf, width, dx, flip_x, config.fill_mode)
        pixels = tf.reshape(images, [batch, height * width, -1])
        index = tf.reshape(rows[:, :, None] * width + cols[:, None, :], [batch, -1])
        x = tf.cast(tf.reshape(tf.gather(pixels, index, batch_dims=1), shape), tf.float32)
        if config.fill_mode == "constant":
            inside = tf.cast(rows_inside[:, :, None, None] & cols_inside[:, None, :, None], tf.float32)
            factor = inside if factor is None else inside * factor
    else:
        x = tf.cast(images, tf.float32)
    if factor is not None:
        x = tf.minimum(x * factor, 255.0)
    return x
