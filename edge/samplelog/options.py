"""Building the SampleLogger from options: `[parts.samplelog]` in the TOML config,
`--part samplelog:...`, or the `--log-*` flags of `edgekit run` (flags win).

Keys are the flag names without `--log-` (`low-confidence` or `low_confidence`), plus `dir` and
`shadow`; see edge.samplelog.flags.OPTIONS.

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

import logging
import re
import signal
import threading
from pathlib import Path
from typing import Any

from edge.errors import UserError
from edge.samplelog.flags import OPTIONS
from edge.samplelog.logger import DEFAULT_QUEUE, SampleLogger
from edge.samplelog.policies import LogPolicy
from edge.sizes import parse_bytes

log = logging.getLogger(__name__)


def coerce_options(table: dict[str, Any]) -> dict[str, Any]:
    """Normalise keys and convert text values (from --part k=v) to their types."""
    options: dict[str, Any] = {}
    for raw_key, value in table.items():
        key = raw_key.replace("-", "_")
        if key not in OPTIONS:
            raise UserError(f"unknown sample-log setting {raw_key!r}: known are {', '.join(sorted(OPTIONS))}")
        kind = OPTIONS[key][1]
        try:
            if kind is bool:
                options[key] = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
            else:
                options[key] = kind(value)
        except (TypeError, ValueError) as error:
            raise UserError(f"bad value for sample-log setting {raw_key}: {value!r} ({error})") from error
    return options


def from_options(table: dict[str, Any], context: Any) -> SampleLogger | None:
    """Part factory of the runtime (edge.runtime.part_loading.PART_FACTORIES["samplelog"]).

    Args:
        table: the merged `[parts.samplelog]` table and flags (see edge.samplelog.flags).
        context: the runtime's RunContext (`loaded`: the LoadedModel running at start, `threads`).
    Returns None when no store folder is set.
    """
    options = coerce_options(table)
    session = options.get("session")
    if session is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", session):
        raise UserError(f"--log-session {session!r} is not a plain name: use letters, digits, '.', '_' or '-'")
    loaded = context.loaded
    bundle = getattr(loaded, "bundle", None)
    spec = getattr(loaded, "spec", None)
    return build_logger(
        options, list(loaded.labels), str(loaded.version),
        roi=tuple(spec.roi) if spec is not None else (0.0, 0.0, 1.0, 1.0), primary_spec=spec,
        training_distribution=bundle.training_distribution if bundle is not None else None,
        session_id=session, shadow_threads=1, wait_when_full=not getattr(context, "live", True),
    )


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


def build_logger(options: dict[str, Any], labels: list[str], model_version: str,
                 roi: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0), primary_spec: Any = None,
                 training_distribution: dict[str, float] | None = None, session_id: str | None = None,
                 shadow_threads: int = 1, wait_when_full: bool = False) -> SampleLogger | None:
    """A SampleLogger, or None when no store folder (`dir`) is set.

    Args:
        options: coerced options (see coerce_options).
        labels, model_version: of the primary model.
        roi: the run's region of interest (fractions), stored with each sample.
        primary_spec: the primary's PreprocessSpec (a shadow with another spec preprocesses itself).
        training_distribution: from the bundle manifest, for drift checks.
        session_id: this run's id (default: a new one).
        wait_when_full: the source is not live (file, folder, synthetic): wait for the writer
            instead of dropping samples.
    """
    if not options.get("dir"):
        if any(options.get(k) for k in ("low_confidence", "random", "shadow", "manual_file")):
            raise UserError("sample-log options were given without a store folder: add --log-dir FOLDER")
        return None
    policy = policy_from_options(options)
    if not (policy.low_confidence or policy.random_rate or options.get("shadow") or policy.manual_file):
        log.warning("sample log on but no policy set: only SIGUSR1 marks frames "
                    "(add --log-low-confidence, --log-random, --shadow or --log-manual-file)")
    logger = SampleLogger(
        Path(options["dir"]).expanduser(), policy, labels, session_id=session_id, roi=tuple(roi),
        roi_only=bool(options.get("roi_only")), fmt=str(options.get("format") or "jpeg"),
        quality=int(options.get("quality") or 90), max_bytes=parse_bytes(options.get("max_bytes")),
        min_free=parse_bytes(options.get("min_free")), queue_size=int(options.get("queue") or DEFAULT_QUEUE),
        model_version=model_version, training_distribution=training_distribution,
        reconcile_force=bool(options.get("reconcile_force")), wait_when_full=wait_when_full,
    )
    try:
        if options.get("shadow"):
            attach_shadow_bundle(logger, Path(options["shadow"]), primary_spec,
                                 int(options.get("shadow_threads") or shadow_threads))
        _install_sigusr1(logger)
    except BaseException:
        logger.shutdown()
        raise
    return logger


def attach_shadow_bundle(logger: SampleLogger, path: Path, primary_spec: Any, threads: int = 1) -> None:
    """Verify the shadow bundle (edge.bundle.check_bundle, as for the primary) and run it beside the primary."""
    from edge.bundle import load_verified
    from edge.preprocess import preprocess

    bundle, model, _ = load_verified(path, threads)
    spec = bundle.preprocess
    prepare = None if spec == primary_spec else (lambda image: preprocess(image, spec))
    version = ":".join(p for p in (bundle.name, bundle.version) if p) or "shadow"
    logger.attach_shadow(model.predict, bundle.labels, version, prepare)


def _install_sigusr1(logger: SampleLogger) -> None:
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGUSR1"):
        signal.signal(signal.SIGUSR1, lambda signum, frame: logger.engine.mark_manual())
