"""scikit-learn's 8x8 digits: offline (the CSV ships inside scikit-learn).

The dataset has no official split, so the split is ours: stratified by label, test
fraction :data:`TEST_FRACTION` = 0.25, seed :data:`SPLIT_SEED` = 0
(``sklearn.model_selection.train_test_split``): 1347 train / 450 test.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .base import DatasetError, Raw

INPUT_SHAPE = (1, 8, 8)
TEST_FRACTION = 0.25
SPLIT_SEED = 0
SPLIT_NOTE = ("stratified train_test_split(test_size=0.25, random_state=0) of "
              "sklearn load_digits")


def csv_path() -> Path:
    """The CSV file that ``sklearn.datasets.load_digits`` reads."""
    path = importlib.resources.files("sklearn.datasets") / "data" / "digits.csv.gz"
    return Path(str(path))


def load(raw_dir: Path | None, download: bool, options: Mapping[str, Any]) -> Raw:
    """Images ``[N, 1, 8, 8]`` uint8 (values 0..16), our fixed stratified split.
    ``raw_dir`` and ``download`` are unused: nothing to download."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    data = np.asarray(bunch.data)
    if data.min() < 0 or data.max() > 255 or not np.array_equal(data, np.round(data)):
        raise DatasetError(f"unexpected values in {csv_path()}")
    x = data.astype(np.uint8).reshape(-1, *INPUT_SHAPE)
    y = np.asarray(bunch.target, dtype=np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=y)
    return Raw(x_tr, y_tr, x_te, y_te, files=[csv_path()], provenance={"split": SPLIT_NOTE})
