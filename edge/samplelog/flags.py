"""The `--log-*` and `--shadow` flags of `edgekit run` (imports nothing heavy).

`edgekit run` calls `add_arguments(parser)` and, once its config is loaded,
`merge_flags(args, config.parts)`: the flags given on the command line
override the `[parts.samplelog]` table, and turn the part on when `--log-dir` is set.

Example:
    edgekit run --bundle current --source picamera2 --log-dir ~/samples \\
        --log-low-confidence 0.6 --log-random 0.02 --log-min-interval 0.5
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

PART = "samplelog"

# option name -> (flag, type, help)
OPTIONS: dict[str, tuple[str, Any, str]] = {
    "dir": ("--log-dir", Path, "sample store folder: logging is on when this is set"),
    "low_confidence": ("--log-low-confidence", float, "log frames whose top-1 probability is below this (e.g. 0.6)"),
    "random": ("--log-random", float, "log this fraction of frames at random (e.g. 0.02)"),
    "quota_per_class_hour": ("--log-quota-per-class-hour", int, "at most N logged frames per predicted class per hour"),
    "min_interval": ("--log-min-interval", float, "seconds between two logged frames (manual frames excepted)"),
    "manual_file": ("--log-manual-file", Path, "touch this file (or send SIGUSR1) to log the next frames"),
    "manual_frames": ("--log-manual-frames", int, "frames logged per manual trigger (default 30)"),
    "shadow": ("--shadow", Path, "shadow bundle: run it beside the primary, log frames where top-1 differs"),
    "shadow_threads": ("--shadow-threads", int, "interpreter threads of the shadow model (default 1)"),
    "format": ("--log-format", str, "jpeg (default) or png"),
    "quality": ("--log-quality", int, "JPEG quality 1-100 (default 90)"),
    "roi_only": ("--log-roi-only", bool, "store only the region of interest, not the full frame"),
    "max_bytes": ("--log-max-bytes", str, "quota of the store on disk, e.g. 8G; the oldest random samples go first"),
    "min_free": ("--log-min-free", str, "free space to leave on the filesystem, e.g. 500M"),
    "queue": ("--log-queue", int, "samples waiting for the disk (default 8); when full, a live source "
                                  "(camera, stream, --realtime) drops new ones (log.log_dropped), a file, "
                                  "folder or synthetic source waits for the writer and loses none"),
    "seed": ("--log-seed", int, "seed of the random policy"),
    "session": ("--log-session", str, "session id of this run (default: UTC time + random suffix); "
                "the host splits by session, so give each continuous run its own id"),
    "reconcile_force": ("--log-reconcile-force", bool,
                        "let start-up reconciliation remove more than half the store"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the sample-log flags (all default to None, so TOML values and defaults apply)."""
    group = parser.add_argument_group("sample log (docs/samplelog.md)")
    for name, (flag, kind, text) in OPTIONS.items():
        if kind is bool:
            group.add_argument(flag, dest=f"{PART}_{name}", action="store_true", default=None, help=text)
        else:
            group.add_argument(flag, dest=f"{PART}_{name}", type=kind, default=None, help=text,
                               metavar=name.split("_")[-1].upper())


def merge_flags(args: argparse.Namespace, parts: dict[str, dict[str, Any]]) -> None:
    """Put the flags that were given into `parts["samplelog"]` (flags win over the TOML table)."""
    given = {name: getattr(args, f"{PART}_{name}") for name in OPTIONS
             if getattr(args, f"{PART}_{name}", None) is not None}
    if given:
        parts[PART] = {**parts.get(PART, {}), **given}
