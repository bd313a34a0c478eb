"""Label with a file manager: export undecided samples into one folder per predicted class,
let a person move files between folders (or into `discard`), import the folders back.

The export folder holds `.edgekit-export.json` (exported file name -> sample id), so
renamed stores or moved export folders still map back to the right samples.

Example:
    >>> export_folders(open_samples("pulled/car1"), Path("to-sort"))
    >>> import_folders(Path("to-sort"))
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from edge.errors import UserError
from train.labeling.decisions import LabelDB
from train.labeling.samples import SampleSource, open_samples

DISCARD = "discard"
UNSURE = "_unsure"
EXPORT_INDEX = ".edgekit-export.json"


@dataclass
class ImportReport:
    confirmed: int = 0
    relabeled: int = 0
    discarded: int = 0
    missing: list[str] = field(default_factory=list)
    unknown_files: list[str] = field(default_factory=list)


def _export_name(sample_id: str) -> str:
    """images/s1/000012.jpg -> s1__000012.jpg (flat, unique, readable)."""
    parts = Path(sample_id).parts
    return "__".join(parts[1:] if parts and parts[0] == "images" and len(parts) > 1 else parts)


def export_folders(source: SampleSource, out: Path, classes: list[str] | None = None,
                   include_decided: bool = False) -> int:
    """Copy undecided samples to out/<predicted class>/; returns how many were written.

    Args:
        source: the sample store.
        out: the export folder (must be new or empty).
        classes: class names (default: from the store); a folder is made for each, plus `discard`.
        include_decided: also export samples that already have a decision.
    """
    names = source.class_names(classes)
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} is not empty: export into a new folder (import the old one first)")
    decided = LabelDB(source.labels_db).all()
    index: dict[str, dict] = {}
    for folder in (*names, DISCARD, UNSURE):
        (out / folder).mkdir(parents=True, exist_ok=True)
    for sample in source.samples():
        if sample.sample_id in decided and not include_decided:
            continue
        folder = sample.predicted if sample.predicted in names else UNSURE
        name = _export_name(sample.sample_id)
        shutil.copy2(sample.image_path, out / folder / name)
        index[name] = {"sample_id": sample.sample_id, "exported_to": folder}
    manifest = {"store": str(source.root), "classes": names, "files": index}
    (out / EXPORT_INDEX).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return len(index)


def import_folders(folder: Path, store: Path | None = None, moved_only: bool = False) -> ImportReport:
    """Read the sorted folders back into the store's labels.db.

    Every file's folder is its label (`discard` drops the sample, `_unsure` leaves it
    undecided); with `moved_only`, files still where export put them stay undecided.
    """
    index_path = folder / EXPORT_INDEX
    if not index_path.is_file():
        raise UserError(f"{folder} has no {EXPORT_INDEX}: import the folder `edgekit label export` made")
    try:
        manifest = json.loads(index_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise UserError(f"{index_path} is damaged ({error}): export again") from error
    source = open_samples(store or manifest["store"])
    classes = list(manifest["classes"])
    known_folders = {*classes, DISCARD, UNSURE}
    unknown = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in known_folders)
    if unknown:
        raise UserError(f"{folder} has folders that are not classes: {', '.join(unknown)}; "
                        f"use {', '.join(classes)} or {DISCARD} (nothing was imported)")
    files = manifest["files"]
    seen: dict[str, str] = {}
    report = ImportReport()
    for path in sorted(folder.glob("*/*")):
        if path.is_file():
            if path.name in files:
                seen[path.name] = path.parent.name
            else:
                report.unknown_files.append(str(path.relative_to(folder)))
    db = LabelDB(source.labels_db)
    for name, entry in files.items():
        placed = seen.get(name)
        if placed is None:
            report.missing.append(name)
            continue
        moved = placed != entry["exported_to"]
        if placed == UNSURE or (moved_only and not moved):
            continue
        if placed == DISCARD:
            db.decide(entry["sample_id"], None, discard=True, source="folder")
            report.discarded += 1
        else:
            db.decide(entry["sample_id"], placed, source="folder")
            if moved:
                report.relabeled += 1
            else:
                report.confirmed += 1
    return report
