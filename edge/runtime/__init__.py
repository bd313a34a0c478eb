"""The car's runtime: a source, a verified model, results out, parts fed, hot swaps between frames.

Example (an in-process driving loop):
    >>> from edge.runtime import Runtime, load_config
    >>> runtime = Runtime(load_config(None, {"bundle": "current", "source": "picamera2"}), output=None)
    >>> for result in runtime.results():
    ...     if result.label == "red" and result.confidence > 0.8:
    ...         brake()
"""

from edge.runtime.config import RuntimeConfig, load_config
from edge.runtime.loop import Runtime, make_result
from edge.runtime.model import LoadedModel, load_model

__all__ = ["LoadedModel", "Runtime", "RuntimeConfig", "load_config", "load_model", "make_result"]
