"""Reading and verifying a model bundle: what gets flashed onto the car.

A bundle is a directory (or a .tar.gz of one) holding:

    model.tflite    the converted model
    manifest.json   format version, name, version, labels, preprocessing spec,
                    input/output dtypes + quantization, accuracy figures, the
                    SHA-256 of every other file, tool versions, lineage
    golden.npz      a few model inputs ("inputs", uint8) with the raw outputs
                    ("outputs") the converter's interpreter gave for them

Nothing here trusts a bundle before its checksums are verified, and archives
are extracted only after every member was checked (no absolute paths, no
`..`, no links or devices).

Example:
    >>> report = verify_bundle(Path("bundles/lights-v3.tar.gz"))
    >>> report["self_test"]
    'ok'
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
import weakref
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from edge.errors import UserError
from edge.interpreter import TFLiteModel
from edge.jsonfile import read_json_object
from edge.preprocess import PreprocessSpec

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODEL_FILE = "model.tflite"
GOLDEN_FILE = "golden.npz"
DEFAULT_FLOAT_ATOL = 1e-3
# Integer kernels differ between interpreter builds (tflite-runtime 2.14 vs LiteRT 2.x give
# outputs a few quantization steps apart on the same int8 model). The interpreter that made the
# golden outputs must reproduce them exactly; any other must agree on every top-1 label and stay
# within this many steps.
INTEGER_STEPS_OTHER_INTERPRETER = 8
_CHUNK = 1 << 20


class BundleError(UserError):
    """A bundle that is missing, corrupt, tampered with or inconsistent."""


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_archive(path: Path) -> bool:
    return path.name.endswith((".tar.gz", ".tgz"))


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or member.name.startswith(("/", "\\")) or ":" in name.parts[0]:
        raise BundleError(f"{archive} holds an absolute path {member.name!r}: refusing to extract it")
    if ".." in name.parts:
        raise BundleError(f"{archive} holds a path leaving the bundle {member.name!r}: refusing to extract it")
    if not (member.isfile() or member.isdir()):
        raise BundleError(
            f"{archive} holds {member.name!r}, which is a link or special file: bundles contain only plain files"
        )


def extract_archive(archive: Path, destination: Path) -> Path:
    """Safely extract a bundle archive into `destination`; the folder holding manifest.json.

    Every member is checked before anything is written. Raises BundleError for
    a truncated or corrupt archive, or a member with an absolute path, `..`,
    a link or a device.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise BundleError(f"bundle archive {archive} does not exist: check the path")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()  # reads to the end: a truncated archive fails here
            for member in members:
                _check_member(member, archive)
            destination.mkdir(parents=True, exist_ok=True)
            tar.extractall(destination, members=members, filter="data")
    except BundleError:
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise BundleError(
            f"{archive} is truncated or not a .tar.gz bundle ({type(error).__name__}: {error}): copy it again"
        ) from error
    return _bundle_root(destination, archive)


def _bundle_root(folder: Path, source: Path) -> Path:
    if (folder / MANIFEST).is_file():
        return folder
    candidates = [p for p in folder.iterdir() if p.is_dir() and (p / MANIFEST).is_file()]
    if len(candidates) == 1:
        return candidates[0]
    raise BundleError(f"{source} has no {MANIFEST}: not an edgekit bundle")


@dataclass
class Bundle:
    """An opened bundle. For archives, `root` is a temporary folder removed with the object."""

    root: Path
    manifest: dict[str, Any]
    source: Path
    _tempdir: Path | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return str(self.manifest.get("name", ""))

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", ""))

    @property
    def labels(self) -> list[str]:
        return list(self.manifest["labels"])

    @property
    def preprocess(self) -> PreprocessSpec:
        return PreprocessSpec.from_dict(self.manifest["preprocess"])

    @property
    def model_path(self) -> Path:
        return self.root / self.manifest.get("model", {}).get("file", MODEL_FILE)

    @property
    def golden_path(self) -> Path:
        return self.root / self.manifest.get("golden", {}).get("file", GOLDEN_FILE)

    @property
    def input_dtype(self) -> str:
        return str(self.manifest["model"]["input"]["dtype"])

    @property
    def output_size(self) -> int:
        return int(self.manifest["model"]["output"]["shape"][-1])

    @property
    def training_distribution(self) -> dict[str, float]:
        return dict(self.manifest.get("training_distribution", {}))


def reported_version(manifest: dict[str, Any]) -> str:
    """"name:version" from a manifest (or whichever of the two it has): the runtime's `model_version`."""
    return ":".join(str(manifest[key]) for key in ("name", "version") if manifest.get(key)) or "unversioned"


def read_manifest(root: Path) -> dict[str, Any]:
    """manifest.json of a bundle folder, with its format version checked."""
    path = root / MANIFEST
    if not path.is_file():
        raise BundleError(f"{root} has no {MANIFEST}: not an edgekit bundle")
    manifest = read_json_object(path, "the bundle is corrupt, rebuild it", BundleError)
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"{path} has bundle format version {version!r}; this edgekit reads version {FORMAT_VERSION}: "
            "convert the model again with this edgekit, or upgrade edgekit on this machine"
        )
    for key in ("labels", "preprocess", "model", "files"):
        if key not in manifest:
            raise BundleError(f"{path} lacks {key!r}: the bundle is incomplete, rebuild it")
    return manifest


def verify_files(root: Path, manifest: dict[str, Any]) -> int:
    """Check the SHA-256 of every file the manifest lists, and that no other file is present."""
    listed: dict[str, str] = manifest["files"]
    for name, expected in listed.items():
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise BundleError(f"manifest lists a file outside the bundle: {name!r}")
        path = root / relative
        if not path.is_file():
            raise BundleError(f"{root} lacks {name}, listed in its manifest: the bundle is incomplete")
        actual = file_sha256(path)
        if actual != expected:
            raise BundleError(
                f"{name} in {root} does not match its checksum (SHA-256 {actual[:12]}... != {expected[:12]}...): "
                "the file was changed or damaged, copy the bundle again"
            )
    for path in root.rglob("*"):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and relative != MANIFEST and relative not in listed and not path.name.startswith("."):
            raise BundleError(f"{root} holds {relative}, which its manifest does not list: rebuild the bundle")
    for required in (MODEL_FILE, GOLDEN_FILE):
        if required not in listed:
            raise BundleError(f"manifest of {root} does not list {required}: the bundle is incomplete")
    return len(listed)


def check_labels(manifest: dict[str, Any], output_size: int | None = None) -> None:
    """Labels must be distinct strings, as many as the model has outputs."""
    labels = manifest["labels"]
    if not isinstance(labels, list) or not all(isinstance(v, str) for v in labels):
        raise BundleError("manifest labels must be a list of strings: rebuild the bundle")
    if len(set(labels)) != len(labels):
        raise BundleError(f"manifest labels repeat a name: {labels}")
    sizes = {int(manifest["model"]["output"]["shape"][-1])}
    if output_size is not None:
        sizes.add(int(output_size))
    for size in sizes:
        if size != len(labels):
            raise BundleError(
                f"the bundle has {len(labels)} labels but the model gives {size} outputs: "
                "the labels do not belong to this model, rebuild the bundle"
            )


def open_bundle(path: Path | str, verify: bool = True, extract_to: Path | None = None) -> Bundle:
    """Open a bundle folder or .tar.gz archive.

    Args:
        path: bundle folder, or a .tar.gz / .tgz archive of one.
        verify: check every checksum and the labels (always done for the format version).
        extract_to: where to extract an archive; default a temporary folder removed
            when the Bundle is garbage-collected.

    Example:
        >>> bundle = open_bundle("bundles/lights-v3")
        >>> bundle.labels, bundle.preprocess.input_size
    """
    source = Path(path)
    tempdir: Path | None = None
    if is_archive(source):
        if extract_to is None:
            tempdir = Path(tempfile.mkdtemp(prefix="edgekit-bundle-"))
            target = tempdir
        else:
            target = Path(extract_to)
        try:
            root = extract_archive(source, target)
        except BaseException:
            if tempdir is not None:
                shutil.rmtree(tempdir, ignore_errors=True)
            raise
    elif source.is_dir():
        root = source
    elif source.exists():
        raise BundleError(f"{source} is neither a bundle folder nor a .tar.gz archive")
    else:
        raise BundleError(f"bundle {source} does not exist: check the path")
    try:
        manifest = read_manifest(root)
        if verify:
            verify_files(root, manifest)
            check_labels(manifest)
            PreprocessSpec.from_dict(manifest["preprocess"])
    except BaseException:
        if tempdir is not None:
            shutil.rmtree(tempdir, ignore_errors=True)
        raise
    bundle = Bundle(root=root, manifest=manifest, source=source, _tempdir=tempdir)
    if tempdir is not None:
        weakref.finalize(bundle, shutil.rmtree, str(tempdir), True)
    return bundle


def load_golden(bundle: Bundle) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, raw outputs) from golden.npz, read without pickle."""
    try:
        with np.load(bundle.golden_path, allow_pickle=False) as data:
            return np.asarray(data["inputs"]), np.asarray(data["outputs"])
    except (OSError, ValueError, KeyError) as error:
        raise BundleError(f"{bundle.golden_path} is unreadable ({error}): rebuild the bundle") from error


def self_test(bundle: Bundle, model: TFLiteModel) -> dict[str, Any]:
    """Check that `model` reproduces the bundle's golden outputs.

    Integer models must match exactly on the interpreter (name and version) that
    made the golden outputs; on another interpreter they must agree on every top-1
    label and stay within INTEGER_STEPS_OTHER_INTERPRETER quantization steps.
    Float models must match within the manifest's golden tolerance (default 1e-3
    absolute on probabilities). Raises BundleError on a mismatch; returns the figures.
    """
    inputs, expected = load_golden(bundle)
    check_labels(bundle.manifest, model.output_size)
    if len(inputs) == 0:
        raise BundleError(f"{bundle.golden_path} holds no inputs: rebuild the bundle")
    actual = np.stack([model.raw_invoke(x) for x in inputs])
    if actual.shape != expected.shape:
        raise BundleError(f"golden outputs have shape {expected.shape}, the model gives {actual.shape}")
    integer = model.is_integer and np.issubdtype(expected.dtype, np.integer)
    made_by = bundle.manifest.get("tools", {}).get("interpreter", {})
    # A manifest that does not name the interpreter gets the strict rule.
    same_interpreter = not made_by or (made_by.get("name"), made_by.get("version")) == (
        model.backend, model.backend_version)
    diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    max_diff = float(diff.max())
    top1_agreement = float((actual.argmax(-1) == expected.argmax(-1)).mean())
    if integer and same_interpreter:
        rule, ok = "exact", max_diff == 0
    elif integer:
        steps = INTEGER_STEPS_OTHER_INTERPRETER
        rule = f"top-1 equal and within {steps} steps (golden made by {made_by.get('name')} {made_by.get('version')})"
        ok = max_diff <= steps and top1_agreement == 1.0
    else:
        atol = float(bundle.manifest.get("golden", {}).get("atol", DEFAULT_FLOAT_ATOL))
        rule, ok = f"atol={atol:g}", max_diff <= atol
    if not ok:
        raise BundleError(
            f"self-test failed: {model.backend} {model.backend_version} does not reproduce the golden "
            f"outputs ({rule}; max difference {max_diff:g}, top-1 agreement {top1_agreement:.0%} over "
            f"{len(inputs)} inputs): do not run this model on this interpreter"
        )
    return {"golden_inputs": int(len(inputs)), "max_abs_diff": max_diff,
            "top1_agreement": top1_agreement, "rule": rule}


def load_verified(path: Path | str, num_threads: int | None = None) -> tuple[Bundle, TFLiteModel, dict[str, Any]]:
    """Open a bundle (checksums checked), build its interpreter and run the golden self-test.

    Returns (bundle, model, self-test report); raises BundleError on the first failure.

    Example:
        >>> bundle, model, golden = load_verified("current", num_threads=2)
    """
    bundle = open_bundle(path, verify=True)
    try:
        model = TFLiteModel(bundle.model_path, num_threads=num_threads)
    except BundleError:
        raise
    except UserError as error:
        raise BundleError(str(error)) from error
    return bundle, model, self_test(bundle, model)


def verify_bundle(path: Path | str, num_threads: int | None = None) -> dict[str, Any]:
    """Everything a device checks before it trusts a bundle; raises BundleError on the first failure.

    Checks: format version, every checksum, labels == output size, and that
    this machine's interpreter reproduces the golden outputs.

    Example:
        >>> verify_bundle("bundles/lights-v3.tar.gz")["self_test"]
        'ok'
    """
    bundle, model, golden = load_verified(path, num_threads)
    return {
        "path": str(bundle.source),
        "name": bundle.name,
        "version": bundle.version,
        "format_version": bundle.manifest["format_version"],
        "files_checked": len(bundle.manifest["files"]),
        "checksums": "ok",
        "labels": bundle.labels,
        "input": f"{model.input_dtype.name} {list(model.input_shape)}",
        "output": f"{model.output_dtype.name} [{model.output_size}]",
        "interpreter": f"{model.backend} {model.backend_version}",
        "self_test": "ok",
        **golden,
    }
