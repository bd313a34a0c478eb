"""Frame -> model input: the one implementation the host and the car share.

A camera frame (uint8, H x W x 3, RGB) is cropped to the region of interest,
resized to the model input with the spec's mode and interpolation, and
converted to the model's colour mode. The result is still uint8: pixel scaling
lives inside the model (a Rescaling layer), so an int8 model takes it as is.

Example:
    >>> spec = PreprocessSpec(input_size=(32, 32))
    >>> preprocess(np.zeros((480, 640, 3), np.uint8), spec).shape
    (32, 32, 3)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

from edge.errors import UserError, reject_unknown_keys
from edge.frame import Frame

RESIZE_MODES = ("stretch", "center-crop", "letterbox")
INTERPOLATIONS = {
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    "nearest": cv2.INTER_NEAREST,
    "cubic": cv2.INTER_CUBIC,
}
COLOR_MODES = ("rgb", "gray")


@dataclass(frozen=True)
class PreprocessSpec:
    """How a frame becomes model input.

    Args:
        input_size: model input (height, width) in pixels.
        roi: region of interest (x, y, w, h) as fractions of the frame.
        resize: "stretch", "center-crop" (keep aspect, crop the excess) or
            "letterbox" (keep aspect, pad with zeros).
        interpolation: "area", "linear", "nearest" or "cubic".
        color: "rgb" (3 channels) or "gray" (1 channel).
    """

    input_size: tuple[int, int] = (32, 32)
    roi: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
    resize: str = "stretch"
    interpolation: str = "area"
    color: str = "rgb"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        object.__setattr__(self, "roi", tuple(float(v) for v in self.roi))
        height, width = self.input_size
        if height < 1 or width < 1:
            raise UserError(f"model input size must be positive, got {self.input_size}")
        x, y, w, h = self.roi
        if not (0 <= x < 1 and 0 <= y < 1 and 0 < w <= 1 and 0 < h <= 1) or x + w > 1.0001 or y + h > 1.0001:
            raise UserError(
                f"ROI {self.roi} is not inside the frame: give x,y,w,h as fractions with x+w<=1 and y+h<=1"
            )
        if self.resize not in RESIZE_MODES:
            raise UserError(f"unknown resize mode {self.resize!r}: use one of {', '.join(RESIZE_MODES)}")
        if self.interpolation not in INTERPOLATIONS:
            raise UserError(
                f"unknown interpolation {self.interpolation!r}: use one of {', '.join(INTERPOLATIONS)}"
            )
        if self.color not in COLOR_MODES:
            raise UserError(f"unknown colour mode {self.color!r}: use one of {', '.join(COLOR_MODES)}")

    @property
    def channels(self) -> int:
        return 3 if self.color == "rgb" else 1

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (*self.input_size, self.channels)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input_size"] = list(self.input_size)
        data["roi"] = list(self.roi)
        if not data["extra"]:
            data.pop("extra")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessSpec:
        known = {"input_size", "roi", "resize", "interpolation", "color", "extra"}
        reject_unknown_keys(data, known, "preprocessing spec key(s)")
        return cls(**data)


def roi_pixels(frame_height: int, frame_width: int, roi: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """The ROI as integer pixel bounds (x0, y0, x1, y1), never empty."""
    x, y, w, h = roi
    x0 = min(int(round(x * frame_width)), frame_width - 1)
    y0 = min(int(round(y * frame_height)), frame_height - 1)
    x1 = max(min(int(round((x + w) * frame_width)), frame_width), x0 + 1)
    y1 = max(min(int(round((y + h) * frame_height)), frame_height), y0 + 1)
    return x0, y0, x1, y1


def crop_roi(frame: np.ndarray, roi: tuple[float, float, float, float]) -> np.ndarray:
    """A view of the frame's region of interest (no copy)."""
    x0, y0, x1, y1 = roi_pixels(frame.shape[0], frame.shape[1], roi)
    return frame[y0:y1, x0:x1]


# Box averaging as sums beats cv2.resize's INTER_AREA loop from this many source pixels per output pixel.
BOX_AVERAGE_MIN_AREA = 100


def box_average(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """INTER_AREA for whole-number factors of at least BOX_AVERAGE_MIN_AREA pixels, by sums.

    The same bytes as `cv2.resize(..., INTER_AREA)` (rows summed, then columns, then one
    float32 multiply rounded half to even, as OpenCV does), about twice as fast for a
    640x480 frame to 32x32, and the same on every OpenCV build the car or the host has.
    """
    in_h, in_w, channels = image.shape
    factor_y, factor_x = in_h // out_h, in_w // out_w
    rows = np.add.reduce(image.reshape(out_h, factor_y, in_w * channels), axis=1,
                         dtype=np.uint16 if factor_y <= 257 else np.uint32)
    sums = np.add.reduceat(rows.reshape(out_h, in_w, channels), np.arange(0, in_w, factor_x), axis=1,
                           dtype=np.uint32)
    return np.rint(sums.astype(np.float32) * np.float32(1.0 / (factor_x * factor_y))).astype(np.uint8)


def _is_box(in_hw: tuple[int, int], out_hw: tuple[int, int], interpolation: int) -> bool:
    (in_h, in_w), (out_h, out_w) = in_hw, out_hw
    if interpolation != cv2.INTER_AREA or in_h % out_h or in_w % out_w:
        return False
    return BOX_AVERAGE_MIN_AREA <= (in_h // out_h) * (in_w // out_w) <= 65536  # float32 sums stay exact


def _scale(image: np.ndarray, out_h: int, out_w: int, interpolation: int) -> np.ndarray:
    if _is_box(image.shape[:2], (out_h, out_w), interpolation):
        return box_average(image, out_h, out_w)
    return cv2.resize(image, (out_w, out_h), interpolation=interpolation)


def _resize(image: np.ndarray, size_hw: tuple[int, int], mode: str, interpolation: int) -> np.ndarray:
    out_h, out_w = size_hw
    in_h, in_w = image.shape[:2]
    if (in_h, in_w) == (out_h, out_w):
        return image
    if mode == "stretch":
        return _scale(image, out_h, out_w, interpolation)
    if mode == "center-crop":
        scale = max(out_h / in_h, out_w / in_w)
        crop_h = min(in_h, max(1, int(round(out_h / scale))))
        crop_w = min(in_w, max(1, int(round(out_w / scale))))
        top, left = (in_h - crop_h) // 2, (in_w - crop_w) // 2
        cropped = image[top : top + crop_h, left : left + crop_w]
        return _scale(cropped, out_h, out_w, interpolation)
    # letterbox
    scale = min(out_h / in_h, out_w / in_w)
    new_h = max(1, min(out_h, int(round(in_h * scale))))
    new_w = max(1, min(out_w, int(round(in_w * scale))))
    resized = _scale(image, new_h, new_w, interpolation)
    canvas = np.zeros((out_h, out_w) + image.shape[2:], dtype=image.dtype)
    top, left = (out_h - new_h) // 2, (out_w - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = resized
    return canvas


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Any image OpenCV can hold (gray, BGR, BGRA, 16-bit, float) as 8-bit RGB.

    OpenCV decodes colour images as BGR(A); this is the one place that flips them.
    """
    if image.dtype == np.uint16:
        image = (image / 257.0).round().astype(np.uint8)
    elif image.dtype in (np.float32, np.float64):
        scale = 255.0 if image.max(initial=0) <= 1.0 else 1.0
        image = np.clip(image * scale, 0, 255).round().astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    channels = image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def opencv_pixels(image: np.ndarray) -> tuple[np.ndarray, str]:
    """An image as OpenCV decoded it -> (pixels, order) for `edge.frame.Frame`.

    8-bit 3-channel BGR stays as it is (order "bgr": no full-frame conversion); anything
    else (gray, BGRA, 16-bit, float) becomes 8-bit RGB.
    """
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return image, "bgr"
    return to_rgb_uint8(image), "rgb"


def preprocess(frame: np.ndarray, spec: PreprocessSpec, order: str = "rgb") -> np.ndarray:
    """A uint8 frame (H, W, 3), RGB unless `order="bgr"` -> model input (h, w, channels), uint8 RGB/gray.

    A BGR frame is cropped and resized as it is and only the small result changes colour
    order: resizing works per channel, so this equals converting the whole frame first.
    """
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise UserError(
            f"a frame must be uint8 RGB of shape (H, W, 3), got {frame.dtype} {frame.shape}"
        )
    region = crop_roi(frame, spec.roi)
    out = _resize(region, spec.input_size, spec.resize, INTERPOLATIONS[spec.interpolation])
    if spec.color == "gray":
        out = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY if order == "bgr" else cv2.COLOR_RGB2GRAY)[:, :, None]
    elif order == "bgr":
        out = cv2.cvtColor(out, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(out)


def preprocess_frame(frame: Frame, spec: PreprocessSpec) -> np.ndarray:
    """`preprocess` for an `edge.frame.Frame`, in whatever channel order its pixels came."""
    return preprocess(frame.pixels, spec, frame.order)


def preprocess_batch(frames: np.ndarray | list[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
    """Many frames -> one (N, h, w, channels) uint8 array."""
    out = np.empty((len(frames), *spec.input_shape), dtype=np.uint8)
    for index, frame in enumerate(frames):
        out[index] = preprocess(frame, spec)
    return out
