"""Building parts from their config tables, and calling them safely.

A part factory takes the part's options (its TOML table `[parts.NAME]` or
`--part NAME:key=value`) and the RunContext, and returns an `edge.part_contract.Part`
(or None: nothing to do). Factories are named "module:callable" so that
nothing is imported unless the part is used.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import UserError
from edge.frame import Frame, Result
from edge.keyvalue import parse_key_values
from edge.part_contract import Part

log = logging.getLogger(__name__)

# A part that fails on this many results in a row is switched off (inference goes on).
MAX_ERRORS_IN_A_ROW = 10

PART_FACTORIES: dict[str, str] = {
    "jpeg": "edge.runtime.jpeg_part:JpegWriter.from_options",
    "samplelog": "edge.samplelog.options:from_options",
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
    live: bool = True  # False when every frame is processed (file, folder, synthetic): parts may wait

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
    name = name.strip()
    return name, dict(parse_key_values(rest, f"{name} part option", f"{name}:every=10"))


def part_name(part: Part) -> str:
    return getattr(part, "name", type(part).__name__)


class PartGuard:
    """Tells parts about each result; a part that raises never stops inference.

    Its first error is logged as one line (part name, frame, error), every error is
    counted (`<part>.errors` in the stats), and after `max_in_a_row` failures in a row
    the part is switched off (`<part>.disabled`); it is still shut down at the end.

    Example:
        >>> guard = PartGuard()
        >>> guard.notify(parts, frame, model_input, result)
        >>> guard.stats(parts)
        {'jpeg.errors': 2}
    """

    def __init__(self, max_in_a_row: int = MAX_ERRORS_IN_A_ROW) -> None:
        self.max_in_a_row = max_in_a_row
        self._errors: dict[int, int] = {}    # id(part) -> errors in all
        self._in_a_row: dict[int, int] = {}  # id(part) -> errors since its last success
        self._disabled: set[int] = set()

    def notify(self, parts: list[Part], frame: Frame, model_input: np.ndarray, result: Result) -> None:
        for part in parts:
            key = id(part)
            if key in self._disabled:
                continue
            try:
                part.on_result(frame, model_input, result)
            except Exception as error:
                self._failed(part, key, frame, error)
            else:
                self._in_a_row[key] = 0

    def _failed(self, part: Part, key: int, frame: Frame, error: Exception) -> None:
        name = part_name(part)
        self._errors[key] = self._errors.get(key, 0) + 1
        self._in_a_row[key] = self._in_a_row.get(key, 0) + 1
        if self._errors[key] == 1:
            log.error("part %s failed on frame %d: %s: %s (inference goes on; errors are counted in %s.errors)",
                      name, frame.index, type(error).__name__, error, name)
            log.debug("part %s error", name, exc_info=error)
        if self._in_a_row[key] >= self.max_in_a_row:
            self._disabled.add(key)
            log.error("part %s switched off after %d errors in a row (last: %s: %s)",
                      name, self._in_a_row[key], type(error).__name__, error)

    def stats(self, parts: list[Part]) -> dict[str, Any]:
        """`<part>.errors` (and `<part>.disabled`) for every part that failed."""
        counters: dict[str, Any] = {}
        for part in parts:
            if self._errors.get(id(part)):
                counters[f"{part_name(part)}.errors"] = self._errors[id(part)]
                if id(part) in self._disabled:
                    counters[f"{part_name(part)}.disabled"] = True
        return counters


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
