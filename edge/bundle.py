"""Reading and verifying a model bundle: what gets flashed onto the car.

A bundle is a directory (or a .tar.gz of one) holding:

    model.tflite      the converted model
    golden.npz        model inputs ("inputs", uint8) chosen to tell models apart, with the raw
                      outputs ("outputs") the converter's interpreter gave for them
    manifest.json     format version, name, version, labels, preprocessing spec, input/output
                      dtypes + quantization, accuracy figures, the SHA-256 of every other file,
                      tool versions (with the interpreter and machine that made the golden outputs)
    manifest.sha256   the bundle digest: SHA-256 of manifest.json's exact bytes
    manifest.sig      (optional) Ed25519 signature of manifest.json (edge.signing)

Every byte the car acts on is covered by the bundle digest: the manifest directly, the model and
golden data through the hashes it lists. `check_bundle` is the one check that `edgekit bundle
verify`, deploy (which runs verify on the car) and the runtime's load and hot swap all use.

Nothing here trusts a bundle before its digests are verified, and archives are extracted only
after every member was checked (no absolute paths, no `..`, no links or devices).

Example:
    >>> report = verify_bundle(Path("bundles/lights-v3.tar.gz"))
    >>> report["self_test"]
    'ok'
"""

from __future__ import annotations

import json
import platform
import shutil
import tarfile
import tempfile
import weakref
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from edge.digest import bytes_sha256, file_sha256, is_sha256_hex
from edge.errors import UserError
from edge.interpreter import TFLiteModel
from edge.preprocess import PreprocessSpec
from edge.signing import SIGNATURE_FILE, SignatureError, check_signature, trusted_keys

FORMAT_VERSION = 2  # 2: manifest.sha256 covers the manifest; golden outputs name their machine
MANIFEST = "manifest.json"
DIGEST_FILE = "manifest.sha256"
MODEL_FILE = "model.tflite"
GOLDEN_FILE = "golden.npz"
# Written by deploy on the car once a release passed verify: the digest the workstation sent.
# Every later load of that folder (runtime start, hot swap, rollback) must find the same manifest.
ACCEPTED_FILE = ".accepted-digest"
NOT_LISTED = {MANIFEST, DIGEST_FILE, SIGNATURE_FILE}  # cannot list their own hashes
DEFAULT_FLOAT_ATOL = 1e-3
# Integer kernels differ between interpreter builds, and the same build can differ between
# architectures. Measured (tests/car/test_agreement.py replays held-out images on x86 and on the
# emulated Pi 4/5; docs/edge.md, "The emulated car"): tflite-runtime 2.14 vs LiteRT 2.3 up to 14
# steps on 9,294 field images (issue 15), 12 on one car-small bundle's golden inputs, 9 on 300
# of its held-out images; LiteRT 2.3 arm64 vs x86 1 step (56 of 9,294 outputs; 2 of 1,200);
# tflite-runtime 2.14 arm64 vs x86 up to 5 steps (319 of 1,200). See agreement_rule().
INTEGER_STEPS_OTHER_INTERPRETER = 16
INTEGER_STEPS_OTHER_MACHINE = 1
INTEGER_STEPS_OTHER_MACHINE_FOR = {"tflite_runtime": 8}

# Sane sizes: anything larger is not a bundle edgekit made for a car.
MAX_MANIFEST_BYTES = 1 << 20
MAX_MODEL_BYTES = 256 << 20
MAX_GOLDEN_BYTES = 64 << 20
MAX_JSON_DEPTH = 16
MAX_INPUT_SIDE = 2048
MAX_LABELS = 1000
MAX_LABEL_CHARS = 100
MAX_GOLDEN_INPUTS = 1024
MAX_FLOAT_ATOL = 0.01  # a looser golden tolerance would let another float model pass
FILE_LIMITS = {MODEL_FILE: MAX_MODEL_BYTES, GOLDEN_FILE: MAX_GOLDEN_BYTES}
DTYPES = ("uint8", "int8", "float32", "float16")


class BundleError(UserError):
    """A bundle that is missing, corrupt, tampered with or inconsistent."""


def this_machine() -> str:
    """The architecture golden outputs are recorded and checked with (x86_64, aarch64...)."""
    return platform.machine() or "unknown"


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
    """An opened bundle. For archives, `root` is a temporary folder removed with the object.

    `digest` is the SHA-256 of manifest.json's bytes (what was parsed into `manifest`);
    `signed_by` the id of the trusted key that signed it, None when this machine trusts none.
    """

    root: Path
    manifest: dict[str, Any]
    source: Path
    digest: str = ""
    signed_by: str | None = None
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


# --- the manifest and its digest -------------------------------------------------------------

def read_manifest_bytes(root: Path) -> bytes:
    """manifest.json's bytes, refused when missing or absurdly large (read once: hashed and parsed)."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise BundleError(f"{root} has no {MANIFEST}: not an edgekit bundle")
    with open(path, "rb") as handle:
        data = handle.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise BundleError(f"{path} is over {MAX_MANIFEST_BYTES} bytes: not a manifest edgekit wrote, rebuild the bundle")
    return data


def manifest_digest(root: Path) -> str:
    """The bundle digest: SHA-256 of manifest.json's exact bytes (it lists every other file's hash)."""
    return bytes_sha256(read_manifest_bytes(root))


def digest_line(digest: str) -> str:
    """manifest.sha256's content, in `sha256sum` format (so `sha256sum -c manifest.sha256` works too)."""
    return f"{digest}  {MANIFEST}\n"


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_JSON_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_manifest(data: bytes, path: Path) -> dict[str, Any]:
    """Parse manifest bytes; format version, nesting and required keys checked."""
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as problem:
        raise BundleError(f"{path} is not valid JSON ({problem}): the bundle is corrupt, rebuild it") from problem
    except RecursionError as problem:
        raise BundleError(f"{path} is nested too deeply to be a manifest: the bundle is corrupt or hostile, "
                          "rebuild it") from problem
    if not isinstance(manifest, dict):
        raise BundleError(f"{path} is not a JSON object: the bundle is corrupt, rebuild it")
    if _depth(manifest) > MAX_JSON_DEPTH:
        raise BundleError(f"{path} is nested more than {MAX_JSON_DEPTH} levels deep: not a manifest edgekit "
                          "wrote, rebuild the bundle")
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


def read_manifest(root: Path) -> dict[str, Any]:
    """manifest.json of a bundle folder, parsed and format-checked (its digest is NOT checked)."""
    return parse_manifest(read_manifest_bytes(root), Path(root) / MANIFEST)


def _read_small_hex(path: Path, what: str) -> str:
    try:
        with open(path, "rb") as handle:
            words = handle.read(4096).decode("ascii").split()
    except (OSError, UnicodeDecodeError) as error:
        raise BundleError(f"{path} is unreadable ({error}): {what}") from error
    if not words or not is_sha256_hex(words[0]):
        raise BundleError(f"{path} holds no SHA-256: {what}")
    return words[0]


def check_digests(root: Path, data: bytes, expected: str | None = None) -> str:
    """The bundle digest of `data` (manifest bytes), checked against manifest.sha256, `expected`
    (what deploy was told to install) and the release's accepted digest, when there is one."""
    digest = bytes_sha256(data)
    sidecar = Path(root) / DIGEST_FILE
    if not sidecar.is_file():
        raise BundleError(f"{root} has no {DIGEST_FILE}: the manifest is covered by no hash; rebuild the bundle "
                          "with this edgekit")
    recorded = _read_small_hex(sidecar, "rebuild the bundle")
    if recorded != digest:
        raise BundleError(
            f"{MANIFEST} in {root} does not match {DIGEST_FILE} (SHA-256 {digest[:12]}... != {recorded[:12]}...): "
            "the manifest was changed or damaged, copy the bundle again")
    if expected is not None and expected.lower() != digest:
        raise BundleError(
            f"{root} is not the bundle that was sent (digest {digest[:12]}... != expected {expected[:12]}...): "
            "it was changed on the way or on this machine; deploy it again")
    accepted = Path(root) / ACCEPTED_FILE
    if accepted.is_file():
        pinned = _read_small_hex(accepted, "deploy the release again")
        if pinned != digest:
            raise BundleError(
                f"{root} changed after it was deployed (digest {digest[:12]}... != accepted {pinned[:12]}...): "
                "deploy the release again")
    return digest


def _signature(root: Path, data: bytes) -> str | None:
    try:
        trusted = trusted_keys()
        return check_signature(root, data, trusted) if trusted else None
    except SignatureError as error:
        raise BundleError(str(error)) from error


# --- fields: sizes, labels, shapes -----------------------------------------------------------

def _shape(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= 4 or not all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 1 << 20 for v in value):
        raise BundleError(f"manifest {where} {value!r} is not a tensor shape: rebuild the bundle")
    return tuple(value)


def check_labels(manifest: dict[str, Any], output_size: int | None = None) -> None:
    """Labels must be distinct short strings, as many as the model has outputs."""
    labels = manifest["labels"]
    if not isinstance(labels, list) or not all(isinstance(v, str) and 0 < len(v) <= MAX_LABEL_CHARS
                                               for v in labels):
        raise BundleError(f"manifest labels must be a list of strings of 1-{MAX_LABEL_CHARS} characters: "
                          "rebuild the bundle")
    if not 1 <= len(labels) <= MAX_LABELS:
        raise BundleError(f"the manifest has {len(labels)} labels (1-{MAX_LABELS} allowed): rebuild the bundle")
    if len(set(labels)) != len(labels):
        raise BundleError(f"manifest labels repeat a name: {labels}")
    model = manifest["model"]
    output = model.get("output") if isinstance(model, dict) else None
    sizes = {_shape(output.get("shape") if isinstance(output, dict) else None, "model.output.shape")[-1]}
    if output_size is not None:
        sizes.add(int(output_size))
    for size in sizes:
        if size != len(labels):
            raise BundleError(
                f"the bundle has {len(labels)} labels but the model gives {size} outputs: "
                "the labels do not belong to this model, rebuild the bundle"
            )


def check_fields(manifest: dict[str, Any]) -> PreprocessSpec:
    """Every field the car acts on has the right type and a sane size; returns the preprocessing spec.

    Checks labels against the output size and the preprocessing spec against the model input
    shape, so a bundle whose preprocessing cannot feed its model never passes.
    """
    model, files = manifest["model"], manifest["files"]
    if not isinstance(model, dict) or not all(isinstance(model.get(k), dict) for k in ("input", "output")):
        raise BundleError("manifest `model` must hold `input` and `output` descriptions: rebuild the bundle")
    if not isinstance(files, dict) or not all(isinstance(k, str) and is_sha256_hex(v)
                                              for k, v in files.items()):
        raise BundleError("manifest `files` must map file names to SHA-256 hex digests: rebuild the bundle")
    for part in ("model", "golden"):
        section = manifest.get(part, {})
        name = section.get("file", MODEL_FILE if part == "model" else GOLDEN_FILE) if isinstance(section, dict) else None
        if name not in files:
            raise BundleError(f"manifest {part}.file {name!r} is not one of the files it hashes: rebuild the bundle")
    check_labels(manifest)
    golden, tools = manifest.get("golden", {}), manifest.get("tools", {})
    atol = golden.get("atol", DEFAULT_FLOAT_ATOL)
    if isinstance(atol, bool) or not isinstance(atol, int | float) or not 0 <= atol <= MAX_FLOAT_ATOL:
        raise BundleError(f"manifest golden.atol {atol!r} is not a tolerance between 0 and {MAX_FLOAT_ATOL}: "
                          "rebuild the bundle")
    made_by = tools.get("interpreter", {}) if isinstance(tools, dict) else None
    if not isinstance(made_by, dict) or not all(isinstance(v, str) for v in made_by.values()):
        raise BundleError("manifest tools.interpreter must name the interpreter, version and machine as text: "
                          "rebuild the bundle")
    for side in ("input", "output"):
        if model[side].get("dtype") not in DTYPES:
            raise BundleError(f"manifest model.{side}.dtype {model[side].get('dtype')!r} is not one of {DTYPES}")
    preprocess = manifest["preprocess"]
    if not isinstance(preprocess, dict):
        raise BundleError("manifest `preprocess` must be an object: rebuild the bundle")
    try:
        spec = PreprocessSpec.from_dict(preprocess)
    except (UserError, TypeError, ValueError) as error:
        raise BundleError(f"manifest preprocessing spec is unusable ({error}): rebuild the bundle") from error
    if max(spec.input_size) > MAX_INPUT_SIDE:
        raise BundleError(f"manifest input size {list(spec.input_size)} is over {MAX_INPUT_SIDE} pixels a side: "
                          "not a model for a car, rebuild the bundle")
    declared = _shape(model["input"].get("shape"), "model.input.shape")
    if declared[-3:] != spec.input_shape:
        raise BundleError(f"the manifest's model takes {list(declared)} but its preprocessing makes "
                          f"{list(spec.input_shape)}: the bundle cannot work, rebuild it")
    return spec


def verify_files(root: Path, manifest: dict[str, Any]) -> int:
    """Check the size and SHA-256 of every file the manifest lists, and that no other file is present."""
    listed: dict[str, str] = manifest["files"]
    for name, expected in listed.items():
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise BundleError(f"manifest lists a file outside the bundle: {name!r}")
        path = root / relative
        if path.is_symlink() or not path.is_file():
            raise BundleError(f"{root} lacks {name} as a plain file, listed in its manifest: the bundle is incomplete")
        limit = FILE_LIMITS.get(name, MAX_MODEL_BYTES)
        if path.stat().st_size > limit:
            raise BundleError(f"{name} in {root} is over {limit} bytes: not a bundle for a car, rebuild it")
        actual = file_sha256(path)
        if actual != expected:
            raise BundleError(
                f"{name} in {root} does not match its checksum (SHA-256 {actual[:12]}... != {expected[:12]}...): "
                "the file was changed or damaged, copy the bundle again"
            )
    for path in root.rglob("*"):
        relative = path.relative_to(root).as_posix()
        if (path.is_file() and relative not in NOT_LISTED and relative not in listed
                and not path.name.startswith(".")):
            raise BundleError(f"{root} holds {relative}, which its manifest does not list: rebuild the bundle")
    for required in (MODEL_FILE, GOLDEN_FILE):
        if required not in listed:
            raise BundleError(f"manifest of {root} does not list {required}: the bundle is incomplete")
    return len(listed)


def open_bundle(path: Path | str, verify: bool = True, extract_to: Path | None = None,
                expected_digest: str | None = None) -> Bundle:
    """Open a bundle folder or .tar.gz archive.

    Args:
        path: bundle folder, or a .tar.gz / .tgz archive of one.
        verify: check the bundle digest (manifest.sha256, the release's accepted digest,
            `expected_digest`), the signature when this machine trusts a key, every file's
            size and checksum, and every field (labels, sizes, preprocessing vs input shape).
            Without it only the format version is checked (for `bundle show`).
        extract_to: where to extract an archive; default a temporary folder removed
            when the Bundle is garbage-collected.
        expected_digest: the bundle digest this must have (deploy passes the registry's).

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
        data = read_manifest_bytes(root)
        manifest = parse_manifest(data, root / MANIFEST)  # first: a newer format says "upgrade"
        digest = bytes_sha256(data)
        signed_by = None
        if verify:
            check_digests(root, data, expected_digest)
            signed_by = _signature(root, data)
            check_fields(manifest)
            verify_files(root, manifest)
    except BaseException:
        if tempdir is not None:
            shutil.rmtree(tempdir, ignore_errors=True)
        raise
    bundle = Bundle(root=root, manifest=manifest, source=source, digest=digest, signed_by=signed_by,
                    _tempdir=tempdir)
    if tempdir is not None:
        weakref.finalize(bundle, shutil.rmtree, str(tempdir), True)
    return bundle


# --- the model and its golden self-test ------------------------------------------------------

def load_golden(bundle: Bundle) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, raw outputs) from golden.npz, read without pickle."""
    try:
        with np.load(bundle.golden_path, allow_pickle=False) as data:
            return np.asarray(data["inputs"]), np.asarray(data["outputs"])
    except (OSError, ValueError, KeyError, zlib.error) as error:
        raise BundleError(f"{bundle.golden_path} is unreadable ({error}): rebuild the bundle") from error


@dataclass(frozen=True)
class AgreementRule:
    """How closely this machine's interpreter must reproduce the golden outputs."""

    text: str
    max_diff: float
    top1_equal: bool


def agreement_rule(made_by: dict[str, Any], runner: tuple[str, str, str], integer: bool,
                   atol: float = DEFAULT_FLOAT_ATOL) -> AgreementRule:
    """The verification rule for golden outputs made by `made_by` ({name, version, machine})
    and checked by `runner` (name, version, machine). The one place the rule lives.

    Integer models: exact on the same interpreter, version and machine (and when the manifest
    does not say who made them); the same interpreter on another architecture may differ by
    INTEGER_STEPS_OTHER_MACHINE steps (INTEGER_STEPS_OTHER_MACHINE_FOR names interpreters whose
    builds differ more), another interpreter by INTEGER_STEPS_OTHER_INTERPRETER,
    both with every top-1 label equal (golden inputs have clear top-1 margins).
    Float models: within `atol` (a tie may flip the top-1 label, so it is not required).
    """
    if not integer:
        return AgreementRule(f"atol={atol:g}", atol, False)
    name, version, machine = runner
    if not made_by or (made_by.get("name"), made_by.get("version")) != (name, version):
        if not made_by:
            return AgreementRule("exact", 0, True)
        steps = INTEGER_STEPS_OTHER_INTERPRETER
        return AgreementRule(f"top-1 equal and within {steps} steps (golden made by {made_by.get('name')} "
                             f"{made_by.get('version')})", steps, True)
    if made_by.get("machine", machine) != machine:
        steps = INTEGER_STEPS_OTHER_MACHINE_FOR.get(name, INTEGER_STEPS_OTHER_MACHINE)
        return AgreementRule(f"top-1 equal and within {steps} step{'s' * (steps != 1)} (golden made on "
                             f"{made_by.get('machine')}, checked on {machine})", steps, True)
    return AgreementRule("exact", 0, True)


def check_model(bundle: Bundle, model: TFLiteModel) -> None:
    """The loaded model fits its manifest: input shape = preprocessing output, dtypes, output size."""
    spec = bundle.preprocess
    declared = bundle.manifest["model"]
    if tuple(model.input_shape) != spec.input_shape:
        raise BundleError(f"the model takes {list(model.input_shape)} but the bundle's preprocessing makes "
                          f"{list(spec.input_shape)}: rebuild the bundle")
    for side, dtype in (("input", model.input_dtype), ("output", model.output_dtype)):
        if declared[side]["dtype"] != dtype.name:
            raise BundleError(f"the manifest says the model's {side} is {declared[side]['dtype']}, "
                              f"the model's is {dtype.name}: rebuild the bundle")
    check_labels(bundle.manifest, model.output_size)


def self_test(bundle: Bundle, model: TFLiteModel) -> dict[str, Any]:
    """Check that `model` reproduces the bundle's golden outputs under agreement_rule().

    Raises BundleError on a mismatch; returns the figures.
    """
    inputs, expected = load_golden(bundle)
    check_labels(bundle.manifest, model.output_size)
    if not 1 <= len(inputs) <= MAX_GOLDEN_INPUTS or inputs.shape[1:] != tuple(model.input_shape) \
            or inputs.dtype != np.uint8:
        raise BundleError(f"{bundle.golden_path} holds inputs {inputs.dtype} {list(inputs.shape)}, not 1-"
                          f"{MAX_GOLDEN_INPUTS} uint8 images of {list(model.input_shape)}: rebuild the bundle")
    if expected.shape != (len(inputs), model.output_size) or expected.dtype != model.output_dtype:
        raise BundleError(f"golden outputs are {expected.dtype} {list(expected.shape)}, the model gives "
                          f"{model.output_dtype.name} [{len(inputs)}, {model.output_size}]: rebuild the bundle")
    actual = np.stack([model.raw_invoke(x) for x in inputs])
    integer = model.is_integer and np.issubdtype(expected.dtype, np.integer)
    made_by = bundle.manifest.get("tools", {}).get("interpreter", {}) or {}
    atol = float(bundle.manifest.get("golden", {}).get("atol") or DEFAULT_FLOAT_ATOL)
    rule = agreement_rule(made_by, (model.backend, model.backend_version, this_machine()), integer, atol)
    diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    max_diff = float(diff.max())
    top1_agreement = float((actual.argmax(-1) == expected.argmax(-1)).mean())
    ok = max_diff <= rule.max_diff and (top1_agreement == 1.0 or not rule.top1_equal)
    if not ok:
        raise BundleError(
            f"self-test failed: {model.backend} {model.backend_version} does not reproduce the golden "
            f"outputs ({rule.text}; max difference {max_diff:g}, top-1 agreement {top1_agreement:.0%} over "
            f"{len(inputs)} inputs): do not run this model on this interpreter"
        )
    return {"golden_inputs": int(len(inputs)), "golden_classes": int(len(set(expected.argmax(-1).tolist()))),
            "max_abs_diff": max_diff, "top1_agreement": top1_agreement, "rule": rule.text}


def check_bundle(bundle: Bundle, model: TFLiteModel) -> dict[str, Any]:
    """The one check before a car trusts a model (verify, deploy, runtime load and hot swap):
    the model fits its manifest, then the golden self-test. Digests, signature, fields and
    file hashes were checked by open_bundle(verify=True)."""
    check_model(bundle, model)
    return self_test(bundle, model)


def load_verified(path: Path | str, num_threads: int | None = None,
                  expected_digest: str | None = None) -> tuple[Bundle, TFLiteModel, dict[str, Any]]:
    """Open a bundle (every digest checked), build its interpreter and run check_bundle().

    Returns (bundle, model, self-test report); raises BundleError on the first failure.

    Example:
        >>> bundle, model, golden = load_verified("current", num_threads=2)
    """
    bundle = open_bundle(path, verify=True, expected_digest=expected_digest)
    try:
        model = TFLiteModel(bundle.model_path, num_threads=num_threads)
    except BundleError:
        raise
    except UserError as error:
        raise BundleError(str(error)) from error
    return bundle, model, check_bundle(bundle, model)


def verify_bundle(path: Path | str, num_threads: int | None = None,
                  expected_digest: str | None = None) -> dict[str, Any]:
    """Everything a device checks before it trusts a bundle; raises BundleError on the first failure.

    Example:
        >>> verify_bundle("bundles/lights-v3.tar.gz")["self_test"]
        'ok'
    """
    bundle, model, golden = load_verified(path, num_threads, expected_digest)
    made_by = bundle.manifest.get("tools", {}).get("interpreter", {}) or {}
    return {
        "path": str(bundle.source),
        "name": bundle.name,
        "version": bundle.version,
        "format_version": bundle.manifest["format_version"],
        "digest": bundle.digest,
        "files_checked": len(bundle.manifest["files"]),
        "checksums": "ok",
        "signature": f"ok (key {bundle.signed_by})" if bundle.signed_by else "not required (this machine trusts no key)",
        "labels": bundle.labels,
        "input": f"{model.input_dtype.name} {list(model.input_shape)}",
        "output": f"{model.output_dtype.name} [{model.output_size}]",
        "interpreter": f"{model.backend} {model.backend_version} on {this_machine()}",
        "golden_made_by": " ".join(str(made_by.get(k, "?")) for k in ("name", "version", "machine")),
        "self_test": "ok",
        **golden,
    }
