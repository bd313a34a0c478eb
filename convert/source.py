"""What to convert: a training run folder, or a bare .keras file plus its data.

A run folder (see docs/train.md) holds model.keras and run.json, which names
the dataset, the split file, the class names, the preprocessing spec and the
lineage. A bare .keras file needs the same facts from the command line.

Example:
    >>> source = resolve_source(Path("runs/lights"))
    >>> model = load_keras_model(source.model_path)
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.errors import UserError
from edge.jsonfile import read_json_object
from edge.preprocess import PreprocessSpec

log = logging.getLogger(__name__)


@dataclass
class ConversionSource:
    """Everything the converter needs to know about the model and its data."""

    model_path: Path
    name: str
    class_names: list[str] | None
    preprocess: PreprocessSpec | None
    dataset: str | None
    split_file: Path | None
    run_folder: Path | None = None
    run_info: dict[str, Any] = field(default_factory=dict)


def _read_run_json(folder: Path) -> dict[str, Any]:
    path = folder / "run.json"
    if not path.is_file():
        raise UserError(f"{folder} has no run.json: give a run folder from `edgekit train` or a .keras file")
    return read_json_object(path, "fix or re-create the run")


def dataset_name(ref: str | None) -> str | None:
    """The name a bundle gets by default: its dataset's (`data/lights.npz` -> lights,
    `keras:cifar10` -> cifar10, `synthetic:n=3000` -> synthetic), the same on every path
    (convert, retrain with the registry's name, demo); `--name` overrides it."""
    if not ref:
        return None
    text = str(ref).rstrip("/")
    kind, sep, rest = text.partition(":")
    if sep and kind == "keras":
        return rest.split(",")[0] or None
    if sep and kind == "synthetic":
        return "synthetic"
    return Path(text).stem or None


def resolve_source(
    path: Path,
    data: str | None = None,
    split_file: Path | None = None,
    labels: list[str] | None = None,
    preprocess: PreprocessSpec | None = None,
) -> ConversionSource:
    """A run folder or .keras file, with command-line overrides, as a ConversionSource.

    Args:
        path: run folder (with model.keras and run.json) or a .keras file.
        data, split_file, labels, preprocess: override (or, for a bare model, supply) run.json's facts.
    """
    path = Path(path)
    if path.is_dir():
        info = _read_run_json(path)
        model_path = path / "model.keras"
        if not model_path.exists():
            raise UserError(f"{path} has no model.keras: did training finish? (train again or give a .keras file)")
        split = split_file or (Path(info["split_file"]) if info.get("split_file") else None)
        if split is not None and not split.is_absolute() and not split.exists() and (path / split).exists():
            split = path / split
        spec = preprocess or (PreprocessSpec.from_dict(info["preprocess"]) if info.get("preprocess") else None)
        return ConversionSource(
            model_path=model_path,
            name=dataset_name(data or info.get("dataset")) or path.name,
            class_names=labels or info.get("class_names"),
            preprocess=spec,
            dataset=data or info.get("dataset"),
            split_file=split,
            run_folder=path,
            run_info=info,
        )
    if path.suffix != ".keras":
        if not path.exists():
            raise UserError(f"{path} does not exist: give a run folder or a .keras model file")
        raise UserError(f"{path} is neither a run folder nor a .keras file")
    return ConversionSource(
        model_path=path, name=dataset_name(data) or path.stem, class_names=labels, preprocess=preprocess,
        dataset=data, split_file=split_file,
    )


def load_keras_model(path: Path) -> Any:
    """Load a .keras model with safe_mode=True; a missing or damaged file is a UserError."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file {path} does not exist: check the path or train the model first")
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path} is truncated or not a .keras file (not a valid zip): copy or train it again")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for a damaged or unsafe file
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(f"cannot load {path}: {first_line[:300]}: copy or train it again") from error


def find_rescaling(model: Any) -> tuple[float, float] | None:
    """(scale, offset) of the model's first Rescaling layer, or None if it has none."""
    import keras

    stack = list(model.layers)
    while stack:
        layer = stack.pop(0)
        if isinstance(layer, keras.layers.Rescaling):
            import numpy as np

            return float(np.ravel(layer.scale)[0]), float(np.ravel(layer.offset)[0])
        stack.extend(getattr(layer, "layers", []))
    return None


def ensure_rescaling(model: Any, spec: PreprocessSpec, input_scale: float | None,
                     input_offset: float = 0.0) -> tuple[Any, PreprocessSpec]:
    """Make sure pixel scaling lives inside the model, and record it in the spec.

    A model without a Rescaling layer gets a warning. If `input_scale` is given
    (the scaling its training used), a Rescaling layer is put in front so the
    converted model still takes raw uint8 pixels; otherwise it is assumed to
    take raw 0-255 values. Either way the spec's `extra["scaling"]` says so.
    """
    import keras

    found = find_rescaling(model)
    if found is not None:
        scaling = {"in_model": True, "scale": found[0], "offset": found[1]}
        return model, _with_extra(spec, scaling)
    if input_scale is None:
        log.warning(
            "warning: %s has no Rescaling layer: assuming it takes raw 0-255 pixels "
            "(if training scaled them, pass --input-scale, e.g. 0.00392156862745098 for 1/255)", model.name,
        )
        return model, _with_extra(spec, {"in_model": False, "scale": 1.0, "offset": 0.0,
                                         "added_by_converter": False})
    log.warning("warning: %s has no Rescaling layer: adding Rescaling(%g, %g) in front of it",
                model.name, input_scale, input_offset)
    inputs = keras.Input(shape=model.input_shape[1:], name="image")
    x = keras.layers.Rescaling(input_scale, input_offset, name="rescaling")(inputs)
    wrapped = keras.Model(inputs, model(x), name=model.name)
    return wrapped, _with_extra(spec, {"in_model": True, "scale": input_scale, "offset": input_offset,
                                       "added_by_converter": True})


def _with_extra(spec: PreprocessSpec, scaling: dict[str, Any]) -> PreprocessSpec:
    data = spec.to_dict()
    data["extra"] = {**spec.extra, "scaling": scaling}
    return PreprocessSpec.from_dict(data)
