"""The runtime's settings: one typed dataclass, filled from a TOML file and/or the command line.

TOML keys are the command-line option names (`max_fps` or `max-fps`); parts
get a table each:

    bundle = "/home/pi/edgekit/current"
    source = "picamera2"
    roi = [0.25, 0.0, 0.5, 0.5]
    max_fps = 15
    threads = 2
    quiet = true

    [parts.jpeg]
    folder = "/home/pi/edgekit/frames"
    every = 10

Example:
    >>> config = load_config(Path("edgekit.toml"), overrides={"quiet": True})
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.errors import UserError
from edge.sizes import parse_size_wxh
from edge.view.settings import ViewSettings, view_settings


@dataclass
class RuntimeConfig:
    """Everything `edgekit run` needs.

    Args:
        bundle: bundle folder/archive, or a `current` symlink to one (watched for hot swap).
        source: source string (see edge.sources).
        roi: region of interest (x, y, w, h) as fractions; None keeps the bundle's.
        max_fps: process at most this many frames per second (None: as fast as possible).
        threads: interpreter threads (None: all cores but one, which the capture thread uses).
        duration: stop after this many seconds.
        frames: stop after this many results.
        realtime: pace file sources to their frame rate (then they drop frames like a camera).
        quiet: no per-frame JSON lines.
        size: camera frame (width, height).
        fps: camera frame rate to request.
        lores: "auto" or "off": let picamera2's ISP scale to near the model input.
        lores_format: "YUV420" (every Pi) or "RGB888" (Pi 5).
        top_k: how many (label, probability) pairs each result lists.
        stats_interval: seconds between stats lines (0: only at exit).
        max_failures: consecutive source failures before exiting non-zero.
        open_timeout: seconds a network stream may take to open or to give a frame.
        backoff: first reopen delay in seconds (doubles up to backoff_max).
        backoff_max: longest reopen delay.
        watch_interval: seconds between checks of the bundle path for a hot swap (0: never).
        parts: part name -> options (see edge.runtime.part_factories).
        view: the live view (`--view [HOST:]PORT`, `view = "8080"` or a `[view]` table; see edge.view).
    """

    bundle: Path | None = None
    source: str | None = None
    roi: tuple[float, float, float, float] | None = None
    max_fps: float | None = None
    threads: int | None = None
    duration: float | None = None
    frames: int | None = None
    realtime: bool = False
    quiet: bool = False
    size: tuple[int, int] = (640, 480)
    fps: float = 30.0
    lores: str = "auto"
    lores_format: str = "YUV420"
    top_k: int = 3
    stats_interval: float = 10.0
    max_failures: int = 5
    open_timeout: float = 5.0
    backoff: float = 0.5
    backoff_max: float = 10.0
    watch_interval: float = 1.0
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)
    view: ViewSettings | None = None

    @property
    def interpreter_threads(self) -> int:
        """`threads`, or every core but the one the capture thread decodes on."""
        return self.threads or max(1, (os.cpu_count() or 1) - 1)

    def validate(self) -> RuntimeConfig:
        """Raise UserError for missing or impossible settings; return self."""
        if self.bundle is None:
            raise UserError("no bundle given: pass --bundle PATH or set bundle in the config file")
        if self.source is None:
            raise UserError("no source given: pass --source (e.g. picamera2, /dev/video0, video.mp4, synthetic)")
        if self.duration is not None and self.frames is not None:
            raise UserError("give either duration or frames, not both")
        for name in ("max_fps", "threads", "duration", "frames", "fps", "top_k", "max_failures",
                     "open_timeout"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UserError(f"{name} must be positive, got {value}")
        for name in ("stats_interval", "backoff", "backoff_max", "watch_interval"):
            if getattr(self, name) < 0:
                raise UserError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.lores not in ("auto", "off"):
            raise UserError(f"lores must be auto or off, got {self.lores!r}")
        return self


def parse_numbers(text: str | list | tuple, count: int, name: str, kind: type = float) -> tuple:
    """"0.25,0,0.5,0.5" or "640x480" or a list -> a tuple of `count` numbers."""
    items = text if isinstance(text, list | tuple) else str(text).replace("x", ",").split(",")
    try:
        values = tuple(kind(v) for v in items)
    except (TypeError, ValueError) as error:
        raise UserError(f"bad {name} {text!r}: expected {count} numbers") from error
    if len(values) != count:
        raise UserError(f"bad {name} {text!r}: expected {count} numbers, got {len(values)}")
    return values


_FIELDS = {f.name: f for f in dataclasses.fields(RuntimeConfig)}


def _coerce(name: str, value: Any) -> Any:
    if value is None:
        return None
    try:
        if name == "bundle":
            return Path(value).expanduser()
        if name == "roi":
            return parse_numbers(value, 4, "roi")
        if name == "size":
            return parse_size_wxh(value)
        if name == "view":
            return view_settings(value)
        if name == "parts":
            if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
                raise UserError("parts must be tables, e.g. [parts.jpeg] folder = \"frames\"")
            return {str(k): dict(v) for k, v in value.items()}
        default = _FIELDS[name].default
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise UserError(f"{name} must be true or false, got {value!r}")
            return value
        if name in ("threads", "frames", "top_k", "max_failures"):
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise UserError(f"{name} must be a whole number, got {value!r}")
            return int(float(value))
        if name in ("source", "lores", "lores_format"):
            return str(value)
        return float(value)
    except (TypeError, ValueError) as error:
        raise UserError(f"bad value for {name}: {value!r} ({error})") from error


def config_from_mapping(data: dict[str, Any], base: RuntimeConfig | None = None) -> RuntimeConfig:
    """A config from a dict of settings (TOML or CLI); unknown keys are an error."""
    values: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = raw_key.replace("-", "_")
        if key not in _FIELDS:
            raise UserError(f"unknown setting {raw_key!r}: known are {', '.join(sorted(_FIELDS))}")
        values[key] = _coerce(key, value)
    return dataclasses.replace(base or RuntimeConfig(), **values)


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> RuntimeConfig:
    """Settings from a TOML file (if any), then `overrides` (CLI values that are not None).

    Example:
        >>> load_config(None, {"bundle": "current", "source": "synthetic"}).source
        'synthetic'
    """
    config = RuntimeConfig()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"config file {path} does not exist: check the path")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise UserError(f"config file {path} is not valid TOML: {error}") from error
        config = config_from_mapping(data, config)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    return config_from_mapping(overrides, config).validate()
