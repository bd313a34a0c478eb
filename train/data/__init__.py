"""Datasets: one in-memory form (uint8 RGB images, labels, groups, sources) and its loaders.

Example:
    >>> from train.data import load_dataset
    >>> ds = load_dataset("synthetic:n=200")
    >>> ds.images.shape
    (200, 32, 32, 3)
"""

from edge.digest import file_sha256
from train.data.dataset import Dataset, concat
from train.data.refs import DEFAULT_REF, load_dataset
from train.data.report import LoadReport

__all__ = ["DEFAULT_REF", "Dataset", "LoadReport", "concat", "file_sha256", "load_dataset"]
