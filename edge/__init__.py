"""edgekit's car side: frames in, results and samples out. Never imports TensorFlow."""

import _signal  # the C module: `signal` would first import enum, which takes a while
import os as _os
import sys as _sys

__version__ = "0.1.0"


def interrupted_while_starting(signum: int, frame: object) -> None:
    """Ctrl-C while the `edgekit` command starts (its imports take a moment): one line, exit 130,
    no traceback. Installed here, the first edgekit code to run; edge.cli hands SIGINT back to
    Python's KeyboardInterrupt just before the command runs. Exits at once: an exception raised
    here can land in an import's weakref callback, where Python prints it as "Exception ignored"
    with a traceback and goes on; nothing is written yet while the command starts."""
    _os.write(2, b"edgekit: interrupted\n")
    _os._exit(130)


if _sys.argv[:1] and _sys.argv[0].endswith("edgekit") or _sys.orig_argv[1:3] == ["-m", "edge.cli"]:
    try:
        _signal.signal(2, interrupted_while_starting)  # SIGINT
    except ValueError:  # not the main thread: leave Python's handler
        pass
