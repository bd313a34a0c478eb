"""How chatty the libraries under edgekit may be: set once by the CLI, before they are imported.

Without `--verbose`, TensorFlow's C++ log lines (`I0000 ... cpu_feature_guard`, oneDNN notes,
`reader.cc`) and its Python INFO/WARNING logger are hidden. When the output is not a terminal
(a log file, a pipe, CI), progress bars that redraw themselves with carriage returns are turned
into what a file can hold: Keras prints one line per epoch, tqdm bars are off.

Example:
    >>> configure(verbose=False)          # edge.cli does this before running a command
    >>> model.fit(..., verbose=keras_verbosity(1))
"""

from __future__ import annotations

import logging
import os
import sys

QUIET_LOGGERS = ("tensorflow", "absl")


def configure(verbose: bool) -> None:
    """Set the libraries' log levels from the environment they read at import (user settings win)."""
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # C++ INFO and WARNING lines off
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
    if not _is_terminal(sys.stderr):
        os.environ.setdefault("TQDM_DISABLE", "1")  # tqdm >= 4.66 reads TQDM_* defaults


def keras_verbosity(level: int | str) -> int | str:
    """Keras' `verbose` for fit: its progress bar (1) becomes one line per epoch (2) off a terminal."""
    if level in (1, "auto") and not _is_terminal(sys.stdout):
        return 2
    return level


def _is_terminal(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return False
