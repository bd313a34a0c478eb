"""The sample log's options for `edgekit run`: flags, the TOML `[parts.samplelog]` table, and the Part.

The runtime calls two functions:

    add_arguments(parser)                      # adds the --log-* and --shadow flags
    part = build_part(options, loaded_model)   # a SampleLogger, or None when --log-dir is unset

`options` is the TOML table merged with the flags given on the command line
(`options_from_args(args)`; flags win). TOML keys are the flag names without
`--log-` (`low-confidence` or `low_confidence`), plus `dir` and `shadow`.

Example TOML:
    [parts.samplelog]
    dir = "/home/pi/edgekit/samples"
    low_confidence = 0.6
    random = 0.02
    quota_per_class_hour = 200
    min_interval = 0.5
    max_bytes = "8G"
    min_free = "500M"
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import threading
from pathlib import Path
from typing import Any

from edge.errors import UserError
from edge.samplelog.logger import SampleLogger
from edge.samplelog.policies import LogPolicy

log = logging.getLogger(__name__)

# option name -> (flag, type, help)
_OPTIONS: dict[str, tuple[str, Any, str]] = {
    "dir": ("--log-dir", Path, "sample store folder: logging is on when this is set"),
    "low_confidence": ("--log-low-confidence", float, "log frames whose top-1 probability is below this (e.g. 0.6)"),
    "random": ("--log-random", float, "log this fraction of frames at random (e.g. 0.02)"),
    "quota_per_class_hour": ("--log-quota-per-class-hour", int, "at most N logged frames per predicted class per hour"),
    "min_interval": ("--log-min-interval", float, "seconds between two logged frames (manual frames excepted)"),
    "manual_file": ("--log-manual-file", Path, "touch this file (or send SIGUSR1) to log the next frames"),
    "manual_frames": ("--log-manual-frames", int, "frames logged per manual trigger (default 30)"),
    "shadow": ("--shadow", Path, "shadow bundle: run it beside the primary, log frames where top-1 differs"),
    "format": ("--log-format", str, "jpeg (default) or png"),
    "quality": ("--log-quality", int, "JPEG quality 1-100 (default 90)"),
    "roi_only": ("--log-roi-only", bool, "store only the region of interest, not the full frame"),
    "max_bytes": ("--log-max-bytes", str, "quota of the store on disk, e.g. 8G; the oldest random samples go first"),
    "min_free": ("--log-min-free", str, "free space to leave on the filesystem, e.g. 500M"),
    "queue": ("--log-queue", int, "samples waiting for the disk before new ones are dropped (default 32)"),
    "seed": ("--log-seed", int, "seed of the random policy"),
    "reconcile_force": ("--log-reconcile-force", bool,
                        "let start-up reconciliation remove more than half the store"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the sample-log flags to `edgekit run`'s parser (all default to None: TOML or defaults apply)."""
    group = parser.add_argument_group("sample log (see docs/samplelog.md)")
    for name, (flag, kind, text) in _OPTIONS.items():
        if kind is bool:
            group.add_argument(flag, dest=f"samplelog_{name}", action="store_true", default=None, help=text)
        else:
            group.add_argument(flag, dest=f"samplelog_{name}", type=kind, default=None, help=text)


def options_from_args(args: argparse.Namespace, table: dict[str, Any] | None = None) -> dict[str, Any]:
    """The TOML table (keys normalised) overridden by the flags that were given."""
    options = {key.replace("-", "_"): value for key, value in (table or {}).items()}
    unknown = set(options) - set(_OPTIONS)
    if unknown:
        raise UserError(f"unknown sample-log settings {sorted(unknown)} in the config: known are {sorted(_OPTIONS)}")
    for name in _OPTIONS:
        value = getattr(args, f"samplelog_{name}", None)
        if value is not None:
            options[name] = value
    return options


def parse_size(value: str | int | None) -> int | None:
    """'8G', '500M', '64k' or a number of bytes -> bytes."""
    if value is None or isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)[bB]?\s*", str(value))
    if not match:
        raise UserError(f"cannot read the size {value!r}: give bytes or a number with K, M, G or T (e.g. 8G)")
    factor = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}[match.group(2).lower()]
    return int(float(match.group(1)) * factor)


def policy_from_options(options: dict[str, Any]) -> LogPolicy:
    return LogPolicy(
        low_confidence=options.get("low_confidence"),
        random_rate=float(options.get("random") or 0.0),
        quota_per_class_hour=options.get("quota_per_class_hour"),
        min_interval=float(options.get("min_interval") or 0.0),
        manual_frames=int(options.get("manual_frames") or 30),
        manual_file=options.get("manual_file"),
        seed=options.get("seed"),
    )


def build_part(options: dict[str, Any], loaded: Any, session_id: str | None = None,
               threads: int | None = 1) -> SampleLogger | None:
    """A SampleLogger for the running model, or None when no store folder is set.

    Args:
        options: merged options (see options_from_args).
        loaded: the runtime's loaded model (attributes labels, version, spec, bundle).
        session_id: the run's session id (default: a new one).
        threads: interpreter threads of the shadow model.
    """
    if not options.get("dir"):
        if any(options.get(k) for k in ("low_confidence", "random", "shadow", "manual_file")):
            raise UserError("sample-log options were given without --log-dir: add --log-dir FOLDER")
        return None
    policy = policy_from_options(options)
    if not (policy.low_confidence or policy.random_rate or options.get("shadow") or policy.manual_file):
        log.warning("sample log on but no policy set: only SIGUSR1 marks frames "
                    "(add --log-low-confidence, --log-random, --shadow or --log-manual-file)")
    bundle = getattr(loaded, "bundle", None)
    logger = SampleLogger(
        Path(options["dir"]).expanduser(), policy, list(loaded.labels), session_id=session_id,
        roi=tuple(loaded.spec.roi), roi_only=bool(options.get("roi_only")),
        fmt=str(options.get("format") or "jpeg"), quality=int(options.get("quality") or 90),
        max_bytes=parse_size(options.get("max_bytes")), min_free=parse_size(options.get("min_free")),
        queue_size=int(options.get("queue") or 32), model_version=str(loaded.version),
        training_distribution=bundle.training_distribution if bundle is not None else None,
        reconcile_force=bool(options.get("reconcile_force")),
    )
    try:
        if options.get("shadow"):
            attach_shadow_bundle(logger, Path(options["shadow"]), loaded.spec, threads)
        _install_sigusr1(logger)
    except BaseException:
        logger.shutdown()
        raise
    return logger


def attach_shadow_bundle(logger: SampleLogger, path: Path, primary_spec: Any, threads: int | None = 1) -> None:
    """Verify the shadow bundle (checksums + golden self-test) and run it beside the primary."""
    from edge.bundle import open_bundle, self_test
    from edge.interpreter import TFLiteModel
    from edge.preprocess import preprocess

    bundle = open_bundle(path, verify=True)
    model = TFLiteModel(bundle.model_path, num_threads=threads)
    self_test(bundle, model)
    spec = bundle.preprocess
    prepare = None if spec == primary_spec else (lambda image: preprocess(image, spec))
    version = ":".join(p for p in (bundle.name, bundle.version) if p) or "shadow"
    logger.attach_shadow(model.predict, bundle.labels, version, prepare)


def _install_sigusr1(logger: SampleLogger) -> None:
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGUSR1"):
        signal.signal(signal.SIGUSR1, lambda signum, frame: logger.engine.mark_manual())
