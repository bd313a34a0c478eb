"""Building parts from their config tables, and calling them safely.

A part factory takes the part's options (its TOML table `[parts.NAME]` or
`--part NAME:key=value`) and the RunContext, and returns an `edge.parts.Part`
(or None: nothing to do). Factories are named "module:callable" so that
nothing is imported unless the part is used.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import UserError
from edge.parts import Part

log = logging.getLogger(__name__)

PART_FACTORIES: dict[str, str] = {
    "jpeg": "edge.runtime.jpeg_part:JpegWriter.from_options",
    "samplelog": "edge.samplelog.part:from_options",
}


@dataclass(frozen=True)
class RunContext:
    """What a part may want to know about the run it joins.

    `loaded` is the model running at start (edge.runtime.LoadedModel: bundle,
    labels, spec, version); a hot swap later changes `Result.model_version`.
    """

    bundle: Path
    source: str
    loaded: Any
    threads: int | None = None

    @property
    def labels(self) -> list[str]:
        return list(self.loaded.labels)

    @property
    def model_version(self) -> str:
        return str(self.loaded.version)

    @property
    def roi(self) -> tuple[float, float, float, float]:
        """The region of interest in use (the bundle's, or --roi)."""
        return tuple(self.loaded.spec.roi)


def _resolve(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for name in attribute.split("."):
        obj = getattr(obj, name)
    return obj


def build_parts(tables: dict[str, dict[str, Any]], context: RunContext) -> list[Part]:
    """One part per table, in order. Unknown names are a UserError."""
    parts: list[Part] = []
    try:
        for name, options in tables.items():
            if name not in PART_FACTORIES:
                raise UserError(f"unknown part {name!r}: known are {', '.join(sorted(PART_FACTORIES))}")
            try:
                factory = _resolve(PART_FACTORIES[name])
            except (ImportError, AttributeError) as error:
                raise UserError(f"part {name!r} is not available in this installation ({error})") from error
            part = factory(dict(options), context)
            if part is not None:
                parts.append(part)
    except BaseException:
        shutdown_all(parts)
        raise
    return parts


def parse_part_option(text: str) -> tuple[str, dict[str, Any]]:
    """"jpeg:folder=frames,every=10" -> ("jpeg", {"folder": "frames", "every": "10"})."""
    name, _, rest = text.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"bad part option {item!r}: write --part {name}:key=value,key=value")
        options[key.strip()] = value.strip()
    return name.strip(), options


def part_name(part: Part) -> str:
    return getattr(part, "name", type(part).__name__)


def shutdown_all(parts: list[Part]) -> None:
    """Shut every part down, even if one fails (the failure is logged)."""
    for part in parts:
        try:
            part.shutdown()
        except Exception as error:
            log.error("part %s failed to shut down: %s: %s", part_name(part), type(error).__name__, error)


def collect_stats(parts: list[Part]) -> dict[str, Any]:
    """Every part's counters, prefixed with its name ("jpeg.written=12")."""
    merged: dict[str, Any] = {}
    for part in parts:
        try:
            counters = part.stats() or {}
        except Exception as error:
            counters = {"stats_error": type(error).__name__}
        merged.update({f"{part_name(part)}.{key}": value for key, value in counters.items()})
    return merged
