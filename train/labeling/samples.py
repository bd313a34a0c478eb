"""The sample store as labeling sees it: the one module that knows the store's format.

Everything else in train.labeling works with `Sample` records, so adapting to a
different store layout is a change to this file only.

Example:
    >>> source = open_samples(Path("pulled/car1"))
    >>> [s.sample_id for s in source.samples()][:2]
    ['images/s1/000001.jpg', 'images/s1/000002.jpg']
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from edge.errors import UserError

LABELS_DB = "labels.db"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    """One logged frame, as labeling needs it.

    sample_id is stable across re-indexing and pulls (the image's path inside the store).
    """

    sample_id: str
    image_path: Path
    predicted: str | None
    confidence: float | None
    session_id: str
    truth: str | None = None
    model_labels: tuple[str, ...] = ()
    roi_only: bool = False
    roi: tuple[float, float, float, float] | None = None  # the region of interest the car used


class SampleSource:
    """A host-side sample store (pulled from a car): samples in capture order, class names.

    Args:
        root: the store folder (holds samples.db and images/).
    """

    def __init__(self, root: Path | str) -> None:
        from edge.samplelog.store import SampleStore

        self.root = Path(root).resolve()
        self.unsafe_rows = 0  # rows whose `file` is not images/<session>/<name>: left out, counted
        self._samples: list[Sample] = []
        with SampleStore(self.root, readonly=True) as store:
            for row in store.rows(order="capture_time, id"):
                try:
                    image_path = store.path_of(row)
                except UserError:
                    self.unsafe_rows += 1
                    continue
                self._samples.append(Sample(
                    sample_id=row["file"],
                    image_path=image_path,
                    predicted=row.get("label"),
                    confidence=row.get("confidence"),
                    session_id=row.get("session_id") or "",
                    truth=row.get("truth"),
                    model_labels=tuple(row.get("labels") or ()),
                    roi_only=bool(row.get("roi_only")),
                    roi=tuple(row["roi"]) if row.get("roi") else None,
                ))
        if self.unsafe_rows:
            log.warning("%d rows of %s name a file outside images/<session>/: left out", self.unsafe_rows, self.root)

    @property
    def labels_db(self) -> Path:
        """Where decisions are kept: next to the store's own index, never inside it."""
        return self.root / LABELS_DB

    def samples(self) -> list[Sample]:
        return list(self._samples)

    def get(self, sample_id: str) -> Sample | None:
        return next((s for s in self._samples if s.sample_id == sample_id), None)

    def read_image(self, sample: Sample):
        """The sample's image as RGB uint8 (H, W, 3); UserError if it is missing or unreadable."""
        from edge.samplelog.imagefile import decode_image

        try:
            return decode_image(sample.image_path.read_bytes())
        except (OSError, ValueError) as error:
            raise UserError(f"sample image {sample.image_path} is unreadable ({error}): "
                            "run `edgekit samples check` on the store") from error

    def class_names(self, override: list[str] | None = None) -> list[str]:
        """`override`, else the model's labels stored with the samples, else every predicted label."""
        if override:
            if len(set(override)) != len(override):
                raise UserError(f"class names repeat: {override}")
            return list(override)
        for sample in self._samples:
            if sample.model_labels:
                return list(sample.model_labels)
        names = sorted({s.predicted for s in self._samples if s.predicted})
        if not names:
            raise UserError(f"{self.root} holds no predictions to take class names from: pass --classes a,b,c")
        return names


def open_samples(root: Path | str) -> SampleSource:
    """Open a host-side sample store for labeling (a UserError if it is not one)."""
    return SampleSource(root)
