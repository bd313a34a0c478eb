"""`edgekit convert` end to end: load, convert per mode, check, gate, bundle.

Example:
    >>> results = convert(ConvertOptions(source=Path("runs/lights"), modes=["int8", "float32"]))
    >>> [(r.mode, r.bundle) for r in results]
"""

from __future__ import annotations

import datetime as dt
import logging
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convert import accuracy as acc
from convert.bundle_writer import archive_path, publish, staging, write_files
from convert.data import SplitData, load_split_data, representative_positions
from convert.golden import select_golden
from convert.runtime_check import check_runtime, environment_ok, format_reports, summarize
from convert.source import ConversionSource, ensure_rescaling, load_keras_model, resolve_source
from convert.tflite import MODES, check_full_integer, convert_keras
from edge.bundle import (
    DEFAULT_FLOAT_ATOL,
    FORMAT_VERSION,
    GOLDEN_FILE,
    INTEGER_STEPS_OTHER_INTERPRETER,
    MODEL_FILE,
    this_machine,
)
from edge.digest import file_sha256
from edge.errors import UserError
from edge.interpreter import TFLiteModel
from edge.packages import installed_version
from edge.preprocess import PreprocessSpec
from edge.signing import key_id, load_signing_key, public_key_of

log = logging.getLogger(__name__)


@dataclass
class ConvertOptions:
    """Everything `edgekit convert` can be told. Paths may be relative to the working folder."""

    source: Path
    modes: list[str] = field(default_factory=lambda: ["int8"])
    data: str | None = None
    split_file: Path | None = None
    labels: list[str] | None = None
    split: str | None = None  # default "val"; "test" when the data has no val split (e.g. CIFAR archive)
    rep_size: int = 300
    max_eval: int | None = None
    accuracy_check: bool = True
    gate: bool = True
    max_drop: float = 1.0
    max_class_drop: float = 3.0
    check_runtime: list[str] = field(default_factory=list)
    out: Path | None = None
    archive: bool = False
    overwrite: bool = False
    name: str | None = None
    version: str | None = None
    input_scale: float | None = None
    golden_count: int = 16  # raised to the number of classes (one per class at least)
    latency_runs: int = 200
    seed: int = 0
    force: bool = False  # write a bundle the absolute gate refuses (the manifest records it)
    min_class_images: int = 5  # absolute gate: a class with this many images may not have 0 recall


@dataclass
class ModeResult:
    mode: str
    size_bytes: int
    size_ratio: float
    accuracy: dict[str, Any] | None
    latency: dict[str, Any]
    gate_failures: list[str]
    runtime: list[dict[str, Any]]
    bundle: Path | None = None
    archive: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.gate_failures


def _tool_versions(model: TFLiteModel) -> dict[str, Any]:
    ver = installed_version
    return {"tensorflow": ver("tensorflow"), "keras": ver("keras"),
            "interpreter": {"name": model.backend, "version": model.backend_version, "machine": this_machine()},
            "edgekit": ver("edgekit"), "numpy": np.__version__, "python": platform.python_version()}


def _lineage(source: ConversionSource, data: SplitData | None, rep_size: int, seed: int) -> dict[str, Any]:
    info = source.run_info
    dataset_sha = info.get("dataset_sha256")
    if dataset_sha is None and source.dataset and Path(source.dataset).is_file():
        dataset_sha = file_sha256(Path(source.dataset))
    split_sha = info.get("split_sha256")
    if split_sha is None and source.split_file and Path(source.split_file).is_file():
        split_sha = file_sha256(Path(source.split_file))
    return {
        "run_folder": str(source.run_folder) if source.run_folder else None,
        "model_file": str(source.model_path),
        "model_sha256": file_sha256(source.model_path),
        "dataset": source.dataset,
        "dataset_sha256": dataset_sha,
        "split_file": str(source.split_file) if source.split_file else None,
        "split_sha256": split_sha,
        "parent_model": info.get("parent_model"),
        "run": {k: info[k] for k in ("preset", "seed", "epochs", "batch_size") if k in info},
        "representative_set": {"split": "train", "size": rep_size, "seed": seed} if data else None,
    }


def _default_out(source: ConversionSource, mode: str) -> Path:
    if source.run_folder is not None:
        return source.run_folder / "bundles" / mode
    return source.model_path.with_name(f"{source.model_path.stem}-{mode}")


def _default_split(data: SplitData) -> str:
    if len(data.indices.get("val", ())) or not len(data.indices.get("test", ())):
        return "val"
    log.info("the data has no val split: checking accuracy on the test split")
    return "test"


def _destination(options: ConvertOptions, source: ConversionSource, mode: str, n_modes: int) -> Path:
    if options.out is None:
        return _default_out(source, mode)
    return Path(options.out) if n_modes == 1 else Path(options.out) / mode


def _spec_for(model: Any, given: PreprocessSpec | None) -> PreprocessSpec:
    shape = tuple(int(v) for v in model.input_shape[1:])
    if len(shape) != 3 or shape[2] not in (1, 3):
        raise UserError(f"model input shape {shape} is not an image (h, w, 1|3): edgekit converts image classifiers")
    spec = given or PreprocessSpec(input_size=shape[:2], color="rgb" if shape[2] == 3 else "gray")
    if spec.input_shape != shape:
        raise UserError(f"the preprocessing spec gives {spec.input_shape} but the model takes {shape}: "
                        "fix run.json's preprocess or the model")
    return spec


# Golden inputs are chosen from at most this many pool images (model outputs computed per mode).
GOLDEN_POOL = 2000


@dataclass
class GoldenPool:
    """Where golden inputs are chosen from: images, their true classes when known, and what they are."""

    images: np.ndarray
    labels: np.ndarray | None
    source: str


def _golden_pool(options: ConvertOptions, spec: PreprocessSpec, eval_images: np.ndarray | None,
                 eval_labels: np.ndarray | None, split: str | None, representative: np.ndarray | None,
                 representative_labels: np.ndarray | None) -> GoldenPool:
    rng = np.random.default_rng(options.seed)
    if eval_images is not None and len(eval_images):
        pool = GoldenPool(eval_images, eval_labels, f"{split} split")
    elif representative is not None and len(representative):
        pool = GoldenPool(representative, representative_labels, "representative set (train split)")
    else:
        log.warning("no images to choose golden inputs from: using random inputs, which test the model less")
        return GoldenPool(rng.integers(0, 256, size=(256, *spec.input_shape), dtype=np.uint8), None,
                          "random inputs (no data)")
    if len(pool.images) > GOLDEN_POOL:
        keep = np.sort(rng.choice(len(pool.images), GOLDEN_POOL, replace=False))
        pool = GoldenPool(pool.images[keep], None if pool.labels is None else pool.labels[keep], pool.source)
    return GoldenPool(np.asarray(pool.images), pool.labels, pool.source)  # a streamed split: these are loaded


def choose_golden(tflite: TFLiteModel, pool: GoldenPool, count: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(inputs, raw outputs, selection figures) for one converted model; see convert.golden."""
    raw = np.stack([tflite.raw_invoke(x) for x in pool.images])
    probabilities = tflite.dequantize(raw)
    if tflite.is_integer:
        scale = tflite.output_quantization[0] or 1.0
        margin = (2 * INTEGER_STEPS_OTHER_INTERPRETER + 1) * scale
        clamp = float(np.iinfo(tflite.output_dtype).max)
    else:
        margin, clamp = max(2 * DEFAULT_FLOAT_ATOL, 0.01), None
    chosen, stats = select_golden(raw, probabilities, count, margin, pool.labels, clamp, pool.images)
    return pool.images[chosen].copy(), raw[chosen], {"source": pool.source, **stats}


def convert(options: ConvertOptions) -> list[ModeResult]:
    """Convert, check and bundle one model in every requested mode (see module docstring)."""
    modes = _checked_modes(options)
    source = resolve_source(options.source, options.data, options.split_file, options.labels)
    model = load_keras_model(source.model_path)
    model, spec = ensure_rescaling(model, _spec_for(model, source.preprocess), options.input_scale)
    destinations = _destinations(options, source, modes)
    data, class_names = _data_and_labels(options, source, modes, int(model.output_shape[-1]))
    representative = _representative_set(options, data, spec, modes, len(class_names))
    evaluation = _evaluation_set(options, data, spec, model)
    shared = _Shared(
        source=source, model=model, spec=spec, class_names=class_names, data=data, evaluation=evaluation,
        representative=representative, float32=convert_keras(model, "float32"),
        pool=_golden_pool(options, spec, evaluation.images if evaluation else None,
                          evaluation.labels if evaluation else None, evaluation.split if evaluation else None,
                          *(representative or (None, None))),
        signing_key=_signing_key(), name=options.name or source.name,
        version=options.version or dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S"),
        lineage=_lineage(source, data, options.rep_size, options.seed))
    return [_convert_mode(options, shared, mode, destinations[mode]) for mode in modes]


@dataclass(frozen=True)
class _Evaluation:
    """The images accuracy is measured on, and the Keras model's answers to them."""

    split: str
    images: np.ndarray
    labels: np.ndarray
    keras_probs: np.ndarray


@dataclass(frozen=True)
class _Shared:
    """What every mode's conversion shares: prepared once in convert()."""

    source: ConversionSource
    model: Any
    spec: PreprocessSpec
    class_names: list[str]
    data: SplitData | None
    evaluation: _Evaluation | None
    representative: tuple[np.ndarray, np.ndarray] | None
    float32: bytes
    pool: GoldenPool
    signing_key: Any
    name: str
    version: str
    lineage: dict[str, Any]


def _checked_modes(options: ConvertOptions) -> list[str]:
    """The requested modes, once each, after checking them and the --check-runtime Pythons."""
    modes = list(dict.fromkeys(options.modes))
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise UserError(f"unknown mode {unknown}: use one or more of {', '.join(MODES)}")
    for python in options.check_runtime:
        if not Path(python).exists():
            raise UserError(f"--check-runtime {python}: no such Python: give an environment's bin/python")
    return modes


def _destinations(options: ConvertOptions, source: ConversionSource, modes: list[str]) -> dict[str, Path]:
    """Where each mode's bundle goes; refused before any work if one exists (unless --overwrite)."""
    destinations = {mode: _destination(options, source, mode, len(modes)) for mode in modes}
    if not options.overwrite:
        for path in destinations.values():
            for target in (path, archive_path(path)) if options.archive else (path,):
                if target.exists():
                    raise UserError(f"{target} already exists: choose another --out or pass --overwrite")
    return destinations


def _data_and_labels(options: ConvertOptions, source: ConversionSource, modes: list[str],
                     output_size: int) -> tuple[SplitData | None, list[str]]:
    """The split dataset (when accuracy or int8 needs it) and the class names, checked against the model."""
    needs_data = options.accuracy_check or "int8" in modes
    data = load_split_data(source.dataset, source.split_file, source.class_names) if needs_data else None
    class_names = list(source.class_names or (data.class_names if data else []))
    if not class_names:
        raise UserError("no class names: give --labels a,b,c (or convert a run folder)")
    if len(class_names) != output_size:
        raise UserError(f"{len(class_names)} labels ({', '.join(class_names)}) but the model has "
                        f"{output_size} outputs: give the labels the model was trained with")
    return data, class_names


def _representative_set(options: ConvertOptions, data: SplitData | None, spec: PreprocessSpec, modes: list[str],
                        n_classes: int) -> tuple[np.ndarray, np.ndarray] | None:
    """int8's calibration images (train split, classes balanced) and their labels; None without int8."""
    if "int8" not in modes:
        return None
    assert data is not None
    positions = representative_positions(data.labels("train"), options.rep_size, n_classes, options.seed)
    return np.asarray(data.images("train", spec, positions)), data.labels("train")[positions]  # read from shards


def _evaluation_set(options: ConvertOptions, data: SplitData | None, spec: PreprocessSpec,
                    model: Any) -> _Evaluation | None:
    """The accuracy check's images (at most --max-eval, drawn with the seed) and Keras' answers."""
    if not options.accuracy_check:
        return None
    assert data is not None
    split = options.split or _default_split(data)
    labels = data.labels(split)
    subset = None
    if options.max_eval and len(labels) > options.max_eval:
        subset = np.sort(np.random.default_rng(options.seed).choice(len(labels), options.max_eval, False))
        labels = labels[subset]
    images = data.images(split, spec, subset)
    return _Evaluation(split, images, labels, acc.keras_probabilities(model, images))


def _signing_key() -> Any:
    key = load_signing_key()
    if key is not None:
        log.info("bundles are signed with key %s", key_id(public_key_of(key)))
    return key


def _accuracy(options: ConvertOptions, shared: _Shared, tflite: TFLiteModel,
              mode: str) -> tuple[dict[str, Any] | None, list[str] | None, dict[str, Any] | None]:
    """(report, relative-gate failures, absolute gate) of one converted model; Nones without a check."""
    evaluation = shared.evaluation
    if evaluation is None:
        return None, None, None
    tflite_probs = acc.tflite_probabilities(tflite, evaluation.images, mode)
    report = acc.compare(evaluation.keras_probs, tflite_probs, evaluation.labels, shared.class_names)
    report["split"] = evaluation.split
    failures = acc.gate_failures(report, options.max_drop, options.max_class_drop)
    absolute = report["absolute"] = acc.absolute_gate(report, options.min_class_images,
                                                      options.force or not options.gate)
    return report, failures, absolute


def _convert_mode(options: ConvertOptions, shared: _Shared, mode: str, destination: Path) -> ModeResult:
    """Convert to one mode, measure it, gate it and, when it passes, write its bundle."""
    log.info("%s: converting", mode)
    representative = shared.representative[0] if shared.representative else None
    flatbuffer = shared.float32 if mode == "float32" else convert_keras(shared.model, mode, representative)
    if mode == "int8":
        check_full_integer(flatbuffer)
    tflite = TFLiteModel(flatbuffer)
    report, failures, absolute = _accuracy(options, shared, tflite, mode)
    golden_inputs, golden_outputs, selection = choose_golden(tflite, shared.pool, options.golden_count)
    latency = acc.latency(flatbuffer, golden_inputs, options.latency_runs)
    result = ModeResult(mode=mode, size_bytes=len(flatbuffer), size_ratio=round(len(flatbuffer) / len(shared.float32), 4),
                        accuracy=report, latency=latency,
                        gate_failures=((failures or []) if options.gate else [])
                        + (absolute["refused"] if absolute else []), runtime=[])
    if result.gate_failures:
        log.error("%s: accuracy gate FAILED, no bundle written:\n  %s", mode, "\n  ".join(result.gate_failures))
        return result
    manifest = _manifest(options, shared, mode, tflite, result, failures, absolute, selection, len(golden_inputs))
    _write_bundle(options, shared, result, destination, flatbuffer, manifest, golden_inputs, golden_outputs)
    return result


def _manifest(options: ConvertOptions, shared: _Shared, mode: str, tflite: TFLiteModel, result: ModeResult,
              failures: list[str] | None, absolute: dict[str, Any] | None, selection: dict[str, Any],
              golden_count: int) -> dict[str, Any]:
    """The bundle's manifest.json (the fields are documented in /work/shared/DESIGN.md, bundle)."""
    data, source = shared.data, shared.source
    checked = options.gate and options.accuracy_check
    return {
        "format_version": FORMAT_VERSION,
        "name": shared.name,
        "version": shared.version,
        "mode": mode,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "labels": shared.class_names,
        "preprocess": shared.spec.to_dict(),
        "model": {"file": MODEL_FILE, "size_bytes": result.size_bytes, "size_ratio_to_float32": result.size_ratio,
                  **{k: v for k, v in tflite.describe().items() if k in ("input", "output")}},
        "golden": {"file": GOLDEN_FILE, "count": int(golden_count),
                   "rule": ("exact on the interpreter and machine in tools.interpreter (edge.bundle.agreement_rule)"
                            if tflite.is_integer else f"atol={DEFAULT_FLOAT_ATOL:g}"),
                   "atol": 0.0 if tflite.is_integer else DEFAULT_FLOAT_ATOL,
                   "selection": selection},
        "accuracy": result.accuracy,
        "gate": {"enabled": checked, "max_drop": options.max_drop, "max_class_drop": options.max_class_drop,
                 "skipped": not checked, "passed": None if failures is None else not failures,
                 "failures": failures or [], "absolute": absolute},
        "latency_ms": result.latency,
        "tools": _tool_versions(tflite),
        "lineage": shared.lineage,
        "training_distribution": (data.distribution("train") if data and "train" in data.indices
                                  else source.run_info.get("training_distribution", {})),
    }


def _write_bundle(options: ConvertOptions, shared: _Shared, result: ModeResult, destination: Path,
                  flatbuffer: bytes, manifest: dict[str, Any], golden_inputs: np.ndarray,
                  golden_outputs: np.ndarray) -> None:
    """Stage the bundle, check it in other runtimes when asked, then publish it (or leave nothing)."""
    with staging(destination) as folder:
        manifest = write_files(folder, flatbuffer, manifest, golden_inputs, golden_outputs, shared.signing_key)
        if options.check_runtime:
            reports = check_runtime(folder / MODEL_FILE, folder / GOLDEN_FILE, options.check_runtime,
                                    manifest["golden"]["atol"] or DEFAULT_FLOAT_ATOL,
                                    made_by=manifest["tools"]["interpreter"])
            result.runtime = summarize(reports)
            log.info("%s: runtime check\n%s", result.mode, format_reports(reports))
            bad = [r["python"] for r in reports if not environment_ok(r)]
            if bad and options.gate:
                result.gate_failures.append(f"runtime check failed in {', '.join(bad)}")
                log.error("%s: runtime check FAILED, no bundle written", result.mode)
                return
            manifest["runtime_checks"] = result.runtime
            manifest = write_files(folder, flatbuffer, manifest, golden_inputs, golden_outputs, shared.signing_key)
        written = publish(folder, destination, options.archive, options.overwrite)
    result.bundle = written[0]
    result.archive = written[1] if len(written) > 1 else None
