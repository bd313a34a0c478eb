"""The model registry: every version kept, one named production version per model.

Layout (plain files, no TensorFlow needed to read it)::

    models/<name>/v0001/bundle/        the flashable bundle (copied in)
    models/<name>/v0001/model.keras    the Keras model it was converted from (optional)
    models/<name>/v0001/metrics.json   accuracy figures, gate decisions...
    models/<name>/v0001/lineage.json   parent version, dataset and split hashes, spec, run folder
    models/<name>/production           one line: the production version ("v0001")
    models/<name>/history.jsonl        one JSON line per promote / rollback

A version is checked before it becomes production (`verify`: the bundle's checksums,
golden self-test, and the manifest hash recorded at registration); a version the
retrain gate rejected needs `force=True`, and the history says it was forced. A damaged
version or a production pointer naming a missing version is reported by `list`/`show`
(`ModelVersion.problems`, `production_problem`), never a reason for them to fail.

Every write goes to a temporary name first and is renamed into place, so a crash
leaves either the old state or the new one, never half of a version.

Example:
    >>> reg = Registry("models")
    >>> entry = reg.register("signals", Path("runs/a/bundle"), keras_model=Path("runs/a/model.keras"))
    >>> reg.promote("signals", entry.version)
    >>> reg.production("signals").version
    'v0001'
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.bundle import reported_version
from edge.digest import file_sha256
from edge.durable import atomic_write, copy_tree_synced, fsync_dir
from edge.errors import UserError

DEFAULT_ROOT = Path("models")
VERSION_PATTERN = re.compile(r"^v(\d{4,})$")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
PRODUCTION_FILE = "production"
HISTORY_FILE = "history.jsonl"


class RegistryError(UserError):
    """A registry request that cannot be met (unknown model or version, bad name...)."""


@dataclass(frozen=True)
class ModelVersion:
    """One registered version, as read from disk."""

    name: str
    version: str
    path: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    problems: tuple[str, ...] = ()  # what could not be read (a damaged version is listed, not fatal)

    @property
    def number(self) -> int:
        return version_number(self.version)

    @property
    def bundle_path(self) -> Path:
        return self.path / "bundle"

    @property
    def keras_path(self) -> Path | None:
        path = self.path / "model.keras"
        return path if path.exists() else None

    @property
    def parent(self) -> str | None:
        return self.lineage.get("parent")

    def manifest(self) -> dict[str, Any]:
        """The bundle's manifest.json as a dict ({} if missing or unreadable)."""
        try:
            data = _read_json(self.bundle_path / "manifest.json", default={})
        except RegistryError:
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def gate_rejection(self) -> str | None:
        """Why the retrain gate rejected this version (its recorded decision), or None.

        Reads what retrain records in metrics.json: ``{"gate": {"promote": false, "reasons": [...]}}``.
        """
        gate = self.metrics.get("gate")
        if not isinstance(gate, dict):
            return None
        rejected = gate.get("promote") is False or str(gate.get("decision", "")).lower() == "rejected"
        if not rejected:
            return None
        reasons = gate.get("reasons")
        text = "; ".join(str(r) for r in reasons) if isinstance(reasons, list) and reasons else "no reason recorded"
        return text

    @property
    def bundle_version(self) -> str:
        """The bundle's own "name:version" (set at convert time, kept as checksummed): what the car reports."""
        return reported_version(self.manifest())


def version_number(version: str) -> int:
    """'v0012' -> 12; raises RegistryError for anything else."""
    match = VERSION_PATTERN.match(version)
    if not match:
        raise RegistryError(f"{version!r} is not a version: versions look like v0001")
    return int(match.group(1))


def format_version(number: int) -> str:
    return f"v{number:04d}"


def write_json_atomic(path: Path, data: Any) -> None:
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def _read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
    except (OSError, json.JSONDecodeError) as error:
        raise RegistryError(f"{path} is not readable JSON ({error}); restore it or remove the version") from error


def _append_line(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True, default=str) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


class Registry:
    """The models/ folder.

    Args:
        root: the registry folder (default ./models, or $EDGEKIT_MODELS).
    """

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root or os.environ.get("EDGEKIT_MODELS") or DEFAULT_ROOT)

    # -- reading -------------------------------------------------------------
    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def default_name(self, name: str | None = None) -> str:
        """`name` if given, else the only model in the registry."""
        if name:
            _check_name(name)
            return name
        names = self.names()
        if len(names) == 1:
            return names[0]
        if not names:
            raise RegistryError(f"the registry {self.root} holds no models yet: register one first")
        raise RegistryError(f"the registry {self.root} holds several models ({', '.join(names)}): pick one with --name")

    def model_dir(self, name: str) -> Path:
        _check_name(name)
        return self.root / name

    def versions(self, name: str) -> list[ModelVersion]:
        folder = self.model_dir(name)
        if not folder.is_dir():
            return []
        found = [p for p in folder.iterdir() if p.is_dir() and VERSION_PATTERN.match(p.name)]
        return [self._load(name, p) for p in sorted(found, key=lambda p: version_number(p.name))]

    def get(self, name: str, version: str) -> ModelVersion:
        if version in ("production", "latest"):
            entry = self.production(name) if version == "production" else self.latest(name)
            problem = self.production_problem(name) if version == "production" else None
            if problem:
                raise RegistryError(problem)
            if entry is None:
                raise RegistryError(f"model {name!r} has no {version} version in {self.root}")
            return entry
        version_number(version)
        path = self.model_dir(name) / version
        if not path.is_dir():
            known = ", ".join(v.version for v in self.versions(name)) or "none"
            raise RegistryError(f"model {name!r} has no version {version} in {self.root} (known: {known})")
        return self._load(name, path)

    def latest(self, name: str) -> ModelVersion | None:
        versions = self.versions(name)
        return versions[-1] if versions else None

    def production_pointer(self, name: str) -> str | None:
        """What the `production` file says, as written (None when there is none)."""
        try:
            return (self.model_dir(name) / PRODUCTION_FILE).read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as error:
            return f"<unreadable: {error}>"

    def production_problem(self, name: str) -> str | None:
        """Why the production pointer names no usable version (None when it is fine or absent)."""
        pointer = self.production_pointer(name)
        if pointer is None:
            return None
        if not VERSION_PATTERN.match(pointer) or not (self.model_dir(name) / pointer).is_dir():
            return (f"{self.model_dir(name) / PRODUCTION_FILE} names {pointer!r}, which is not a version in "
                    f"the registry: promote one (`edgekit models promote vNNNN`)")
        return None

    def production(self, name: str) -> ModelVersion | None:
        """The production version; None when none is set or the pointer names a missing version."""
        pointer = self.production_pointer(name)
        if pointer is None or self.production_problem(name):
            return None
        return self.get(name, pointer)

    def history(self, name: str) -> list[dict[str, Any]]:
        path = self.model_dir(name) / HISTORY_FILE
        if not path.exists():
            return []
        records = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line after a crash: ignore it
            if isinstance(record, dict):
                records.append(record)
        return records

    def resolve(self, ref: str) -> ModelVersion:
        """'v0003', 'production', 'latest', 'NAME:v0003' or 'NAME' (its production)."""
        name, _, version = ref.partition(":")
        if not version:
            if VERSION_PATTERN.match(name) or name in ("production", "latest"):
                return self.get(self.default_name(None), name)
            return self.get(self.default_name(name), "production")
        return self.get(self.default_name(name), version)

    def _load(self, name: str, path: Path) -> ModelVersion:
        problems: list[str] = []
        loaded: dict[str, dict[str, Any]] = {}
        for part in ("metrics", "lineage"):
            try:
                data = _read_json(path / f"{part}.json", default={})
            except RegistryError as error:
                problems.append(str(error))
                data = {}
            if not isinstance(data, dict):
                problems.append(f"{path / (part + '.json')} is not a JSON object")
                data = {}
            loaded[part] = data
        if not (path / "bundle" / "manifest.json").is_file():
            problems.append(f"{path} holds no bundle (bundle/manifest.json is missing)")
        return ModelVersion(name=name, version=path.name, path=path, metrics=loaded["metrics"],
                            lineage=loaded["lineage"], problems=tuple(problems))

    def verify(self, entry: ModelVersion) -> dict[str, Any]:
        """Everything checked before a version may become production; raises RegistryError.

        The bundle must pass `edge.bundle.verify_bundle` (checksums, labels, golden self-test on
        this machine's interpreter), its manifest must still hash to what was recorded at
        registration, and the Keras model to its recorded hash.
        """
        from edge.bundle import verify_bundle

        label = f"{entry.name} {entry.version}"
        if entry.problems:
            raise RegistryError(f"{label} is damaged: {entry.problems[0]}")
        try:
            report = verify_bundle(entry.bundle_path, num_threads=1)
        except UserError as error:
            raise RegistryError(f"{label} is damaged: {error}") from error
        recorded = entry.lineage.get("bundle_manifest_sha256")
        if recorded and file_sha256(entry.bundle_path / "manifest.json") != recorded:
            raise RegistryError(f"{label} is damaged: its manifest.json no longer matches the SHA-256 recorded "
                                "when it was registered; register the bundle again")
        keras_recorded = entry.lineage.get("keras_sha256")
        if keras_recorded:
            if entry.keras_path is None:
                raise RegistryError(f"{label} is damaged: its model.keras is missing")
            if file_sha256(entry.keras_path) != keras_recorded:
                raise RegistryError(f"{label} is damaged: model.keras does not match the SHA-256 recorded "
                                    "when it was registered")
        return report

    # -- writing -------------------------------------------------------------
    def register(
        self,
        name: str,
        bundle: Path,
        keras_model: Path | None = None,
        metrics: dict[str, Any] | None = None,
        lineage: dict[str, Any] | None = None,
        parent: str | None = None,
    ) -> ModelVersion:
        """Copy a bundle (and its Keras model) in as the next version.

        Args:
            name: model name (folder under the registry root).
            bundle: a bundle directory (with manifest.json).
            keras_model: the .keras file the bundle was converted from.
            metrics: figures to keep with the version.
            lineage: dataset/split hashes, spec, run folder... (`parent` is added).
            parent: the version this one was fine-tuned from; default: production.
        """
        bundle = Path(bundle)
        if not (bundle / "manifest.json").is_file():
            raise RegistryError(f"{bundle} is not a bundle directory (no manifest.json): convert a model first")
        if keras_model is not None and not Path(keras_model).is_file():
            raise RegistryError(f"Keras model {keras_model} does not exist")
        folder = self.model_dir(name)
        folder.mkdir(parents=True, exist_ok=True)
        if parent is None:
            current = self.production(name)
            parent = current.version if current else None
        elif parent:
            self.get(name, parent)
        staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=folder))
        try:
            copy_tree_synced(bundle, staging / "bundle")
            if keras_model is not None:
                shutil.copy2(keras_model, staging / "model.keras")
            record = dict(lineage or {})
            record.update(
                parent=parent or None,
                registered_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                source_bundle=str(bundle.resolve()),
                bundle_manifest_sha256=file_sha256(bundle / "manifest.json"),
            )
            if keras_model is not None:
                record["keras_sha256"] = file_sha256(staging / "model.keras")
            write_json_atomic(staging / "lineage.json", record)
            if isinstance(record.get("spec"), dict):  # fine-tuning finds the spec next to model.keras
                write_json_atomic(staging / "spec.json", record["spec"])
            write_json_atomic(staging / "metrics.json", dict(metrics or {}))
            version = self._claim(folder, staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return self.get(name, version)

    def _claim(self, folder: Path, staging: Path) -> str:
        """Rename the staging folder to the next free vNNNN (safe if two writers race)."""
        latest = self.latest(folder.name)
        number = (latest.number if latest else 0) + 1
        while True:
            target = folder / format_version(number)
            try:
                os.rename(staging, target)  # fails if target exists and is not empty
            except OSError:
                if target.exists():
                    number += 1
                    continue
                raise
            fsync_dir(folder)
            return target.name

    def update_metrics(self, name: str, version: str, extra: dict[str, Any]) -> ModelVersion:
        """Merge figures into a version's metrics.json (atomically)."""
        entry = self.get(name, version)
        merged = {**entry.metrics, **extra}
        write_json_atomic(entry.path / "metrics.json", merged)
        return self.get(name, version)

    def promote(self, name: str, version: str, reason: str = "", force: bool = False) -> ModelVersion:
        """Make `version` the production version (atomic rename of the pointer file).

        Promoting the current production changes nothing and records nothing. The version is
        verified first (see `verify`); one the retrain gate rejected needs `force`, and the
        history records that it was forced.
        """
        entry = self.get(name, version)
        previous = self.production(name)
        if previous is not None and previous.version == entry.version:
            return entry
        extra: dict[str, Any] = {}
        rejection = entry.gate_rejection
        if rejection:
            if not force:
                raise RegistryError(f"the retrain gate rejected {name} {entry.version} ({rejection}): "
                                    "promote it anyway with --force")
            extra = {"forced": True, "gate_rejection": rejection}
        self.verify(entry)
        self._set_production(name, entry.version)
        self.log_event(name, "promote", entry.version, previous.version if previous else None, reason, **extra)
        return entry

    def production_trail(self, name: str) -> list[str]:
        """Distinct successive production versions, oldest first, as promotes and rollbacks left them.

        A promote pushes its version (unless it is already on top); a rollback truncates the trail
        back to its target's last place (or pushes a target that was never production). So
        rollback after rollback walks further back instead of undoing the one before.
        """
        trail: list[str] = []
        for record in self.history(name):
            action, version = record.get("action"), record.get("version")
            if not isinstance(version, str):
                continue
            if action == "promote":
                if not trail or trail[-1] != version:
                    trail.append(version)
            elif action == "rollback":
                if version in trail:
                    del trail[len(trail) - trail[::-1].index(version):]
                else:
                    trail.append(version)
        current = self.production(name)
        if current is not None and (not trail or trail[-1] != current.version):
            trail.append(current.version)  # a pointer written without history (older edgekit)
        return trail

    def rollback(self, name: str, to: str | None = None, reason: str = "") -> ModelVersion:
        """Production goes back to the distinct version before it (or to `to`); the target is verified."""
        current = self.production(name)
        if current is None:
            raise RegistryError(self.production_problem(name)
                                or f"model {name!r} has no production version to roll back from")
        if to:
            target = self.get(name, to).version
        else:
            earlier = [v for v in self.production_trail(name)[:-1] if v != current.version]
            existing = {v.version for v in self.versions(name)}
            target = next((v for v in reversed(earlier) if v in existing), None)
            if not target:
                raise RegistryError(
                    f"no version was in production before {current.version} of {name!r}: "
                    "name one with --to"
                )
        entry = self.get(name, target)
        if entry.version == current.version:
            return entry
        self.verify(entry)
        self._set_production(name, entry.version)
        self.log_event(name, "rollback", entry.version, current.version, reason)
        return entry

    def _set_production(self, name: str, version: str) -> None:
        atomic_write(self.model_dir(name) / PRODUCTION_FILE, version + "\n")

    def log_event(self, name: str, action: str, version: str, previous: str | None, reason: str,
                  **extra: Any) -> None:
        """Append one line to the model's history.jsonl (promote, rollback, deploy...)."""
        _append_line(
            self.model_dir(name) / HISTORY_FILE,
            {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "action": action,
                "version": version,
                "previous": previous,
                "reason": reason,
                **extra,
            },
        )

    def iter_all(self) -> Iterator[ModelVersion]:
        for name in self.names():
            yield from self.versions(name)


def _check_name(name: str) -> None:
    if not NAME_PATTERN.match(name) or VERSION_PATTERN.match(name) or name in ("production", "latest"):
        raise RegistryError(
            f"{name!r} is not a usable model name: use letters, digits, '.', '_' or '-' (not a version)"
        )
