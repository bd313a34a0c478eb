"""A verified bundle with its interpreter: what the runtime infers with."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from edge.bundle import Bundle, BundleError, load_verified, reported_version
from edge.interpreter import TFLiteModel
from edge.preprocess import PreprocessSpec


@dataclass(frozen=True)
class LoadedModel:
    """A bundle whose checksums and golden self-test passed, with its interpreter built once."""

    bundle: Bundle
    model: TFLiteModel
    spec: PreprocessSpec
    labels: list[str]
    version: str
    identity: tuple


def bundle_identity(path: Path) -> tuple:
    """What changes when the bundle behind `path` changes: the symlink target, the file, the manifest."""
    real = os.path.realpath(path)
    try:
        if not os.path.isdir(real):
            stat = os.stat(real)
            return (real, stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with os.scandir(real) as entries:
            files = sorted((e.name, e.inode(), e.stat().st_mtime_ns, e.stat().st_size)
                           for e in entries if e.is_file())
        return (real, *files)
    except OSError:
        return (real, None)


def load_model(path: Path, threads: int | None = None,
               roi: tuple[float, float, float, float] | None = None) -> LoadedModel:
    """Open, verify (checksums, labels, golden self-test) and build the interpreter; BundleError if not.

    Args:
        path: bundle folder/archive or symlink to one.
        threads: interpreter threads.
        roi: replaces the bundle's region of interest (the camera is mounted differently).

    Example:
        >>> loaded = load_model(Path("current"), threads=2)
        >>> loaded.version
        'lights:v0003'
    """
    identity = bundle_identity(path)
    bundle, model, _ = load_verified(os.path.realpath(path), threads)
    spec = bundle.preprocess
    if roi is not None:
        spec = dataclasses.replace(spec, roi=roi)
    if tuple(model.input_shape) != spec.input_shape:
        raise BundleError(
            f"the model takes {list(model.input_shape)} but the bundle's preprocessing makes "
            f"{list(spec.input_shape)}: rebuild the bundle"
        )
    return LoadedModel(bundle=bundle, model=model, spec=spec, labels=bundle.labels,
                       version=reported_version(bundle.manifest), identity=identity)
