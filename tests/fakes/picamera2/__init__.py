"""A fake `picamera2` for tests: the calls edgekit makes, with the real memory layouts and checks.

Mirrors picamera2's API as edgekit uses it: `Picamera2(camera_num)`,
`create_video_configuration` / `create_preview_configuration` (main and lores
streams), `configure`, `start`, `capture_array(name)`, `capture_arrays(names)` (one request's
streams and its metadata), `stop`, `close`.
`RGB888` arrays are B,G,R in memory (as libcamera lays them out) and `YUV420`
arrays are I420 planes of shape (h*3/2, w), so a source that forgets to
convert, or converts twice, gives the wrong colours.

Test controls (module attributes): SCENE (RGB image the sensor sees), EVENTS
(every call, in order), FAIL_START, FAIL_CAPTURE_AFTER, FAIL_STOP, reset().
"""

from __future__ import annotations

import cv2
import numpy as np

FORMATS = ("RGB888", "BGR888", "XRGB8888", "XBGR8888", "YUV420")
EVENTS: list[tuple] = []
SCENE: np.ndarray = np.zeros((480, 640, 3), np.uint8)
FAIL_START = False
FAIL_STOP = False
FAIL_CAPTURE_AFTER: int | None = None
CAPTURES = 0


def default_scene(height: int = 480, width: int = 640) -> np.ndarray:
    """Left third pure red, middle pure green, right pure blue (RGB)."""
    scene = np.zeros((height, width, 3), np.uint8)
    third = width // 3
    scene[:, :third, 0] = 255
    scene[:, third:2 * third, 1] = 255
    scene[:, 2 * third:, 2] = 255
    return scene


def reset() -> None:
    global SCENE, FAIL_START, FAIL_STOP, FAIL_CAPTURE_AFTER, CAPTURES
    EVENTS.clear()
    SCENE = default_scene()
    FAIL_START = FAIL_STOP = False
    FAIL_CAPTURE_AFTER = None
    CAPTURES = 0


reset()


def _stream(config: dict | None, name: str) -> dict | None:
    if config is None:
        return None
    config = dict(config)
    size = tuple(config.get("size", (640, 480)))
    fmt = config.get("format", "XBGR8888")
    if fmt not in FORMATS:
        raise ValueError(f"{name}: unknown format {fmt}")
    if len(size) != 2 or size[0] % 2 or size[1] % 2:
        raise ValueError(f"{name}: size must be two even numbers, got {size}")
    return {"size": size, "format": fmt}


class Picamera2:
    def __init__(self, camera_num: int = 0) -> None:
        self.camera_num = camera_num
        self.config: dict | None = None
        self.started = False
        self.closed = False
        EVENTS.append(("init", camera_num))

    def _create(self, use_case: str, main=None, lores=None, controls=None, buffer_count=4, **kwargs) -> dict:
        if self.closed:
            raise RuntimeError("camera closed")
        main = _stream(main or {}, "main")
        lores = _stream(lores, "lores")
        if lores is not None:
            if lores["size"][0] > main["size"][0] or lores["size"][1] > main["size"][1]:
                raise ValueError("lores stream must not be larger than main")
            if lores["format"] != "YUV420" and lores["format"] != "RGB888":
                raise ValueError("lores must be YUV420 (or RGB888 on Pi 5)")
        return {"use_case": use_case, "main": main, "lores": lores, "controls": dict(controls or {}),
                "buffer_count": buffer_count}

    def create_video_configuration(self, main=None, lores=None, controls=None, buffer_count=6, **kwargs) -> dict:
        return self._create("video", main, lores, controls, buffer_count, **kwargs)

    def create_preview_configuration(self, main=None, lores=None, controls=None, buffer_count=4, **kwargs) -> dict:
        return self._create("preview", main, lores, controls, buffer_count, **kwargs)

    def configure(self, config: dict) -> None:
        if self.closed or self.started:
            raise RuntimeError("configure() must come after Picamera2() and before start()")
        self.config = config
        EVENTS.append(("configure", config))

    def start(self) -> None:
        if self.config is None:
            raise RuntimeError("start() before configure()")
        if FAIL_START:
            raise RuntimeError("Failed to start camera: device busy")
        self.started = True
        EVENTS.append(("start",))

    def capture_array(self, name: str = "main") -> np.ndarray:
        self._capture("capture_array", [name])
        return self._array(name)

    def capture_arrays(self, names: list[str] | None = None) -> tuple[list[np.ndarray], dict]:
        """All named streams of one request (the same moment), and its metadata."""
        names = list(names or ["main"])
        self._capture("capture_arrays", names)
        return [self._array(name) for name in names], {"SensorTimestamp": CAPTURES}

    def _capture(self, call: str, names: list[str]) -> None:
        global CAPTURES
        if not self.started:
            raise RuntimeError(f"{call}() before start()")
        for name in names:
            if (self.config.get(name) if self.config else None) is None:
                raise RuntimeError(f"no stream named {name!r} configured")
        if FAIL_CAPTURE_AFTER is not None and CAPTURES >= FAIL_CAPTURE_AFTER:
            raise RuntimeError("Camera frontend has timed out!")
        CAPTURES += 1
        EVENTS.append((call, names[0]) if call == "capture_array" else (call, tuple(names)))

    def _array(self, name: str) -> np.ndarray:
        stream = self.config[name]
        width, height = stream["size"]
        rgb = cv2.resize(SCENE, (width, height), interpolation=cv2.INTER_AREA)
        fmt = stream["format"]
        if fmt == "RGB888":  # libcamera RGB888: B,G,R bytes in memory
            return np.ascontiguousarray(rgb[..., ::-1])
        if fmt == "BGR888":
            return np.ascontiguousarray(rgb)
        if fmt in ("XRGB8888", "XBGR8888"):
            order = rgb[..., ::-1] if fmt == "XRGB8888" else rgb
            return np.dstack([order, np.full((height, width), 255, np.uint8)])
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)

    def stop(self) -> None:
        EVENTS.append(("stop",))
        if FAIL_STOP:
            raise RuntimeError("stop failed")
        self.started = False

    def close(self) -> None:
        self.closed = True
        self.started = False
        EVENTS.append(("close",))
