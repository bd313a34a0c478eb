"""Frame sources: one module per kind, and `make_source` to pick one from a string.

Source strings:
    picamera2[:N]          the Pi camera N (default 0), via picamera2
    /dev/video0, 0         a V4L2 device (path or index), via OpenCV
    rtsp://..., http://... a network stream, via OpenCV
    "... ! appsink"        a GStreamer pipeline, via OpenCV
    path/to/video.mp4      a video file (every frame, or real time with --realtime)
    path/to/folder/        an image folder, sorted by name
    synthetic[:seed=1,frames=300,fps=30,conditions=night=0.5;fog=0.2]  a generated drive

Example:
    >>> source = make_source("synthetic:seed=1,frames=10", SourceOptions(size=(320, 240)))
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.errors import UserError
from edge.keyvalue import parse_key_values
from edge.sources.base import Source, SourceError, SourceGaveUp, make_frame
from edge.sources.resilient import Backoff, ResilientSource

__all__ = ["Backoff", "ResilientSource", "Source", "SourceError", "SourceGaveUp", "SourceOptions",
           "make_frame", "make_source"]

URL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://")


@dataclass(frozen=True)
class SourceOptions:
    """Settings that apply to whichever source is chosen.

    Args:
        size: camera frame (width, height); generated drives use it too.
        fps: camera/drive frame rate; image folders replay at this rate with --realtime.
        lores: "auto" (picamera2 asks the ISP for a small stream when the ROI allows) or "off".
        lores_format: "YUV420" (every Pi) or "RGB888" (Pi 5 only).
        model_input_hw: the model's (height, width), to size the lores stream.
        roi: region of interest (fractions), to size the lores stream.
        want_main: picamera2 with a lores stream: when this returns True, frames also carry the main
            stream (`Frame.main`) for people to look at (the live view, while someone watches).
        open_timeout: seconds a network stream may take to open or to deliver a frame (OpenCV's
            own default is 30 s per try: a stream that accepts connections and never answers
            would hold the car that long before each reopen).
    """

    size: tuple[int, int] = (640, 480)
    fps: float = 30.0
    lores: str = "auto"
    lores_format: str = "YUV420"
    model_input_hw: tuple[int, int] | None = None
    roi: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
    want_main: Callable[[], bool] | None = None
    open_timeout: float = 5.0


def _parse_params(text: str, kind: str) -> dict[str, str]:
    return parse_key_values(text, f"{kind} source option", f"{kind}:seed=1")


def _synthetic(params: dict[str, str], options: SourceOptions) -> Source:
    from edge.sources.synthetic import SyntheticSource

    unknown = set(params) - {"seed", "frames", "fps", "conditions"}
    if unknown:
        raise UserError(f"unknown synthetic source option(s) {sorted(unknown)}: use seed, frames, fps, conditions")
    try:
        seed = int(params.get("seed", 0))
        frames = int(params["frames"]) if "frames" in params else None
        fps = float(params.get("fps", options.fps))
    except ValueError as error:
        raise UserError(f"bad synthetic source option: {error}; e.g. synthetic:seed=1,frames=300") from error
    extra = {}
    if "conditions" in params:
        from edge.synthetic import Conditions

        extra["conditions"] = Conditions.parse(params["conditions"])  # e.g. night, or night=0.5;fog=0.2
    return SyntheticSource(size=options.size, seed=seed, fps=fps, frames=frames, **extra)


def _picamera(camera: str, options: SourceOptions) -> Source:
    from edge.sources.picamera import PiCameraSource, lores_size_for

    lores = None
    if options.lores == "auto" and options.model_input_hw is not None:
        lores = lores_size_for(options.size, options.model_input_hw, options.roi)
    elif options.lores not in ("auto", "off"):
        raise UserError(f"unknown lores setting {options.lores!r}: use auto or off")
    return PiCameraSource(size=options.size, fps=options.fps, lores=lores,
                          lores_format=options.lores_format, camera=int(camera or 0), want_main=options.want_main)


def make_source(text: str, options: SourceOptions = SourceOptions()) -> Source:
    """The source a string names (see the module docstring); a UserError if it names nothing."""
    text = text.strip()
    kind, _, rest = text.partition(":")
    if kind == "synthetic":
        return _synthetic(_parse_params(rest, kind), options)
    if kind == "picamera2":
        if rest and not rest.isdigit():
            raise UserError(f"bad camera number {rest!r}: use picamera2 or picamera2:1")
        return _picamera(rest, options)
    from edge.sources.opencv_capture import OpenCVCaptureSource

    if text.isdigit():
        return OpenCVCaptureSource(int(text), size=options.size)
    if text.lower().startswith(URL_SCHEMES):
        return OpenCVCaptureSource(text, size=options.size, timeout=options.open_timeout)
    if "!" in text or re.fullmatch(r"/dev/video\d+", text):
        return OpenCVCaptureSource(text, size=options.size)
    path = Path(text).expanduser()
    if path.is_dir():
        from edge.sources.image_folder import ImageFolderSource

        return ImageFolderSource(path, fps=options.fps)
    if path.is_file():
        from edge.sources.video_file import VideoFileSource

        return VideoFileSource(path)
    raise UserError(
        f"source {text!r} not found: give picamera2, a device (/dev/video0 or 0), an rtsp/http URL, "
        "a GStreamer pipeline, a video file, an image folder or synthetic[:seed=N]"
    )
