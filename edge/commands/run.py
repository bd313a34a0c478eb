"""`edgekit run`: camera frames in, results out (JSON lines on stdout, stats on stderr)."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "run"
HELP = "run a bundle on a camera, stream, video, image folder or synthetic drive"
NEEDS = ()
NO_BLAS_THREADS = True  # see edge.cli


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by `run` and `bench-device`."""
    parser.add_argument("--source", help="picamera2, /dev/video0 or 0, rtsp/http URL, GStreamer pipeline, "
                        "video file, image folder, or synthetic[:seed=N,frames=N]")
    parser.add_argument("--roi", help="region of interest x,y,w,h as fractions (default: the bundle's)")
    parser.add_argument("--size", help="camera frame size WxH (default 640x480)")
    parser.add_argument("--threads", type=int, help="interpreter threads (default: all cores but one, for the capture thread)")
    parser.add_argument("--realtime", action="store_true", default=None,
                        help="pace file sources to their frame rate (drops frames like a camera)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", type=Path, help="bundle folder/archive, or a `current` symlink (hot-swapped)")
    add_source_arguments(parser)
    parser.add_argument("--max-fps", type=float, help="process at most N frames per second")
    parser.add_argument("--open-timeout", type=float, metavar="S",
                        help="seconds a network stream may take to open or to give a frame (default 5)")
    limit = parser.add_mutually_exclusive_group()
    limit.add_argument("--duration", type=float, help="stop after S seconds")
    limit.add_argument("--frames", type=int, help="stop after N results")
    parser.add_argument("--config", type=Path, help="TOML file with the same keys (command-line options win)")
    parser.add_argument("--quiet", action="store_true", default=None, help="no per-frame JSON lines")
    parser.add_argument("--stats-interval", type=float, help="seconds between stats lines (default 10)")
    parser.add_argument("--view", metavar="[HOST:]PORT",
                        help="serve a live view of the car (frames, ROI, labels, figures) on this address; "
                        "default host 127.0.0.1, any other needs the printed token (docs/edge.md)")
    parser.add_argument("--part", action="append", default=[], metavar="NAME:K=V,...",
                        help="add a part, e.g. jpeg:folder=frames,every=10 (repeatable)")
    from edge.samplelog.flags import add_arguments as add_sample_log_arguments

    add_sample_log_arguments(parser)


def config_overrides(args: argparse.Namespace) -> dict:
    keys = ("bundle", "source", "roi", "size", "threads", "realtime", "max_fps", "duration", "frames",
            "quiet", "stats_interval", "open_timeout")
    return {key: getattr(args, key, None) for key in keys}


def run(args: argparse.Namespace) -> int:
    from edge.runtime import Runtime, load_config
    from edge.runtime.part_loading import RunContext, build_parts, parse_part_option
    from edge.runtime.signals import stop_on_signals
    from edge.samplelog.flags import merge_flags

    config = load_config(args.config, config_overrides(args))
    if getattr(args, "view", None):
        from edge.view.settings import with_listen

        config.view = with_listen(config.view, args.view)
    for text in args.part:
        name, options = parse_part_option(text)
        config.parts[name] = {**config.parts.get(name, {}), **options}
    merge_flags(args, config.parts)
    runtime = Runtime(config)
    context = RunContext(bundle=config.bundle, source=config.source, loaded=runtime.current,
                         threads=config.interpreter_threads, live=runtime.capture.latest_only)
    with stop_on_signals(runtime.stop_event):
        runtime.parts = build_parts(config.parts, context)
        runtime.run()
    return 0
