"""Labeled field samples -> a host dataset, with session ids as groups.

Frames go through the bundle's preprocessing (ROI crop, resize) so dataset images
are exactly what the car's model saw. Splits stay stable: groups already in the
previous split file keep their split; new sessions are placed by group hash, and
the newest sessions can form a separate "fresh_test" split.

Example:
    >>> field = store_dataset(open_samples("pulled/car1"), spec, ["green", "none", "red", "yellow"])
    >>> merged = merge(Dataset.load("data/base.npz"), field)
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from tqdm import tqdm

from edge.errors import UserError
from edge.preprocess import PreprocessSpec, preprocess
from train.data.dataset import Dataset, concat
from train.labeling.decisions import LabelDB
from train.labeling.samples import SampleSource

SOURCE_PREFIX = "store:"


def store_dataset(source: SampleSource, spec: PreprocessSpec, class_names: list[str]) -> Dataset:
    """The labeled (not discarded) samples of a store as a Dataset at the model's input size.

    Args:
        source: the sample store.
        spec: the model's preprocessing (from its bundle).
        class_names: the dataset's classes; a label outside them is a UserError.
    """
    labeled = LabelDB(source.labels_db).labeled()
    samples = [s for s in source.samples() if s.sample_id in labeled]
    unknown = sorted({labeled[s.sample_id] for s in samples} - set(class_names))
    if unknown:
        raise UserError(f"labels {unknown} are not classes of the dataset ({', '.join(class_names)}): "
                        "relabel them or add the classes to the base dataset")
    full_frame = replace(spec, roi=(0.0, 0.0, 1.0, 1.0))
    h, w = spec.input_size
    images = np.empty((len(samples), h, w, 3), np.uint8)
    for i, sample in enumerate(tqdm(samples, desc="ingest", unit="img", disable=len(samples) < 500)):
        image = source.read_image(sample)
        if sample.roi_only:
            images[i] = preprocess(image, full_frame)
        else:  # crop what the car cropped (its --roi may differ from the bundle's)
            images[i] = preprocess(image, replace(spec, roi=sample.roi) if sample.roi else spec)
    return Dataset(
        images=images,
        labels=np.asarray([class_names.index(labeled[s.sample_id]) for s in samples], np.int64),
        class_names=list(class_names),
        groups=np.asarray([s.session_id for s in samples], str) if samples else np.zeros(0, str),
        sources=np.asarray([f"{SOURCE_PREFIX}{source.root}/{s.sample_id}" for s in samples], str)
        if samples else np.zeros(0, str),
        name=f"field:{source.root.name}",
        info={"store": str(source.root), "samples": len(samples)},
    )


def merge(base: Dataset | None, field: Dataset) -> tuple[Dataset, int]:
    """base + the field samples it does not hold yet (by source); returns (dataset, samples added)."""
    if base is None:
        return field, len(field)
    known = set(base.sources.tolist())
    fresh = np.asarray([s not in known for s in field.sources.tolist()], bool)
    if not fresh.any():
        return base, 0
    added = field.subset(np.flatnonzero(fresh))
    if added.image_size != base.image_size:
        raise UserError(f"field samples are {added.image_size} but the dataset is {base.image_size}: "
                        "use the bundle of a model trained on this dataset")
    merged = concat([base, added], name=base.name or "dataset")
    merged.info = {**base.info, "field_samples": int(base.info.get("field_samples", 0)) + len(added)}
    return merged, len(added)


def per_class_session_counts(dataset: Dataset) -> dict[str, dict[str, int]]:
    """{session: {class: count}} for a report."""
    table: dict[str, dict[str, int]] = {}
    for group, label in zip(dataset.groups.tolist(), dataset.labels.tolist(), strict=True):
        row = table.setdefault(group, {})
        name = dataset.class_names[label]
        row[name] = row.get(name, 0) + 1
    return table
