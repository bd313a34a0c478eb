"""The chapter's ImageDataGenerator vocabulary, as tf ops inside a tf.data pipeline.

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

Augmentation replaces samples, it does not add them: each epoch, every training image is
transformed afresh (random seeds come from `tf.data.Dataset.random(seed,
rerandomize_each_iteration=True)`), so runs are repeatable yet epochs differ.

Example:
    >>> config = AugmentConfig.from_dict({"horizontal_flip": True, "width_shift_range": [-2, 2]})
    >>> config.enabled
    True
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

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


def _shift(tf: Any, value: float | tuple[int, ...], size: Any, batch: int, seed: Any) -> Any:
    if isinstance(value, tuple):
        choices = tf.constant(value, tf.float32)
        index = tf.random.stateless_uniform([batch], seed, 0, len(value), dtype=tf.int32)
        return tf.gather(choices, index)
    if value >= 1:
        return tf.cast(tf.random.stateless_uniform([batch], seed, -int(value), int(value) + 1, dtype=tf.int32), tf.float32)
    return tf.random.stateless_uniform([batch], seed, -value, value) * size


def _integer_shift(tf: Any, x: Any, offsets: Any, axis: int, fill_mode: str) -> Any:
    """Shift each image of x (B, H, W, C) by whole pixels along axis 1 or 2 (a gather, no resampling)."""
    size = tf.shape(x)[axis]
    position = tf.range(size)[None, :] - tf.cast(offsets, tf.int32)[:, None]  # source index, (B, size)
    if fill_mode == "wrap":
        source = tf.math.floormod(position, size)
    elif fill_mode == "reflect":  # d c b a | a b c d | d c b a
        folded = tf.math.floormod(position, 2 * size)
        source = tf.where(folded < size, folded, 2 * size - 1 - folded)
    else:
        source = tf.clip_by_value(position, 0, size - 1)
    x = tf.gather(x, source, batch_dims=1, axis=axis)
    if fill_mode == "constant":
        inside = tf.cast((position >= 0) & (position < size), x.dtype)
        x = x * (inside[:, :, None, None] if axis == 1 else inside[:, None, :, None])
    return x


def augment_batch(images: Any, seed: Any, config: AugmentConfig) -> Any:
    """Augment a uint8 batch (B, H, W, C) with stateless randomness from seed (2 int64s).

    Flips and whole-pixel shifts alone are done with reverse/gather (cheap). Rotation, shear,
    zoom or fractional shifts compose every geometric option into one projective transform
    per image, applied with one `ImageProjectiveTransformV3` op (as Keras' Random* layers do).
    """
    import tensorflow as tf

    seed = tf.cast(seed, tf.int64)
    streams = [tf.stack([seed[0], seed[1] + k]) for k in range(10)]
    batch = tf.shape(images)[0]
    height = tf.cast(tf.shape(images)[1], tf.float32)
    width = tf.cast(tf.shape(images)[2], tf.float32)
    x = tf.cast(images, tf.float32)
    zeros, ones = tf.zeros([batch]), tf.ones([batch])
    dx = _shift(tf, config.width_shift_range, width, batch, streams[3]) if config.width_shift_range else zeros
    dy = _shift(tf, config.height_shift_range, height, batch, streams[4]) if config.height_shift_range else zeros
    flip_x = (tf.where(tf.random.stateless_uniform([batch], streams[5]) < 0.5, -1.0, 1.0)
              if config.horizontal_flip else ones)
    flip_y = (tf.where(tf.random.stateless_uniform([batch], streams[6]) < 0.5, -1.0, 1.0)
              if config.vertical_flip else ones)
    if config.geometric and not config.needs_resampling:
        if config.horizontal_flip:
            x = tf.where((flip_x < 0)[:, None, None, None], tf.reverse(x, [2]), x)
        if config.vertical_flip:
            x = tf.where((flip_y < 0)[:, None, None, None], tf.reverse(x, [1]), x)
        if config.width_shift_range:
            x = _integer_shift(tf, x, dx, 2, config.fill_mode)
        if config.height_shift_range:
            x = _integer_shift(tf, x, dy, 1, config.fill_mode)
    elif config.geometric:
        angle = tf.random.stateless_uniform([batch], streams[0], -1.0, 1.0) * (config.rotation_range * math.pi / 180)
        shear = tf.random.stateless_uniform([batch], streams[1], -1.0, 1.0) * (config.shear_range * math.pi / 180)
        zoom_lo, zoom_hi = ((1 - config.zoom_range, 1 + config.zoom_range)
                            if not isinstance(config.zoom_range, tuple) else config.zoom_range)
        zoom = tf.random.stateless_uniform([batch], streams[2], zoom_lo, zoom_hi) if zoom_lo != zoom_hi else ones * zoom_lo
        cx, cy = (width - 1) / 2, (height - 1) / 2

        def matrix(a, b, c, d, e, f):  # rows [[a, b, c], [d, e, f], [0, 0, 1]] per image
            return tf.stack([tf.stack([a, b, c], -1), tf.stack([d, e, f], -1),
                             tf.stack([zeros, zeros, ones], -1)], -2)

        # forward map (input -> output coordinates), about the image centre:
        # shift . rotate . shear . zoom . flip, then inverted for the sampler (output -> input)
        cos, sin = tf.cos(angle), tf.sin(angle)
        to_centre = matrix(ones, zeros, -cx * ones, zeros, ones, -cy * ones)
        flip = matrix(flip_x, zeros, zeros, zeros, flip_y, zeros)
        scale = matrix(zoom, zeros, zeros, zeros, zoom, zeros)
        shear_m = matrix(ones, -tf.sin(shear), zeros, zeros, tf.cos(shear), zeros)
        rotate = matrix(cos, -sin, zeros, sin, cos, zeros)
        back = matrix(ones, zeros, cx + dx, zeros, ones, cy + dy)
        forward = back @ rotate @ shear_m @ scale @ flip @ to_centre
        inverse = tf.linalg.inv(forward)
        inverse = inverse / inverse[:, 2:3, 2:3]
        transforms = tf.reshape(inverse, [batch, 9])[:, :8]
        x = tf.raw_ops.ImageProjectiveTransformV3(
            images=x, transforms=transforms, output_shape=tf.shape(images)[1:3], fill_value=0.0,
            interpolation="BILINEAR", fill_mode=config.fill_mode.upper())
    if config.brightness_range is not None:
        lo, hi = config.brightness_range
        factor = tf.random.stateless_uniform([batch, 1, 1, 1], streams[7], lo, hi)
        x = x * factor
    return tf.cast(tf.round(tf.clip_by_value(x, 0.0, 255.0)), tf.uint8)
