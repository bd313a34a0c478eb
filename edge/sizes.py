"""Sizes written as text: bytes ("8G") and images, whose order is in the name (HxW for models, WxH for cameras).

A model's input is height x width (Keras' `input_shape`); a camera's frame is width x height (what
cameras, OpenCV and picamera2 call a resolution). One function for each so the order never drifts.
"""

from __future__ import annotations

import re

from edge.errors import UserError

_BYTES = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)[bB]?\s*")
_FACTORS = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}


def parse_bytes(value: str | int | None) -> int | None:
    """'8G', '500M', '64k' or a number of bytes -> bytes (decimal units); None stays None."""
    if value is None or isinstance(value, int):
        return value
    match = _BYTES.fullmatch(str(value))
    if not match:
        raise UserError(f"cannot read the size {value!r}: give bytes or a number with K, M, G or T (e.g. 8G)")
    return int(float(match.group(1)) * _FACTORS[match.group(2).lower()])


def _two_sides(value: str | list | tuple, order: str) -> tuple[int, int]:
    items = value if isinstance(value, list | tuple) else str(value).lower().replace(",", "x").split("x")
    try:
        sides = [int(v) for v in items]
    except (TypeError, ValueError):
        raise UserError(f"size {value!r} is not {order}, e.g. 32x32") from None
    if len(sides) == 1:
        sides *= 2
    if len(sides) != 2 or min(sides) < 1:
        raise UserError(f"size {value!r} is not {order} with positive whole numbers, e.g. 32x32")
    return sides[0], sides[1]


def parse_size_hxw(value: str | list | tuple | None) -> tuple[int, int] | None:
    """A model's image size: "32x32", "48x64" (height x width) or "32" -> (height, width); None or "" -> None."""
    if value is None or value == "":
        return None
    return _two_sides(value, "HxW (height x width)")


def parse_size_wxh(value: str | list | tuple) -> tuple[int, int]:
    """A camera frame size: "640x480" (width x height) -> (width, height)."""
    return _two_sides(value, "WxH (width x height)")
