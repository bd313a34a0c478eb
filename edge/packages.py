"""Which version of an installed distribution this Python has (recorded in bundles and reports)."""

from __future__ import annotations

import importlib.metadata


def installed_version(distribution: str) -> str | None:
    """The version of `distribution` or its `-cpu` build (tensorflow-cpu...), None if neither is installed.

    convert/runtime_probe.py repeats these lines: it runs in other Pythons without edgekit.
    """
    for name in (distribution, f"{distribution}-cpu"):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None
