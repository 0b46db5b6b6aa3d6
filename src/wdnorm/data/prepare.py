"""Preparation: raw split -> standardised float32 tensors plus provenance meta.

:func:`prepare` is pure computation over a loader's :class:`~.base.Raw`: examples are
flattened channel-first to ``[N, D]`` float32; an optional fixed-seed training subset
is drawn (``torch.randperm`` with ``torch.Generator().manual_seed(seed)``, first
``n_train`` indices, kept in source order); every feature is then standardised with
the mean and (population) standard deviation of that *training* (sub)set, a zero std
being replaced by 1. The test split is always complete. Same arguments give
byte-identical tensors.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from .. import fileio
from .base import TENSOR_KEYS, DatasetError, Prepared, Raw
from .registry import Dataset, get

STANDARDISATION_NOTE = (
    "features flattened channel-first (C,H,W) to [N, D] float32, then standardised per "
    "feature as (x - mean) / std with mean and population std (ddof=0) computed in "
    "float64 on the training set actually used (the subset when n_train is set); "
    "zero std replaced by 1; the test split uses the same training statistics"
)
SUBSET_NOTE = ("torch.randperm(n_train_full, generator=torch.Generator()"
               ".manual_seed(subset_seed))[:n_train], sorted")

_CHUNK = 4096  # rows per chunk when standardising (bounds float64 temporaries)


def load_raw(name: str, raw_dir: str | os.PathLike | None, download: bool = False,
             options: Mapping[str, Any] | None = None) -> Raw:
    """Read (or generate) one dataset's train/test split, labels checked against the
    registry's class count. Raises :class:`DatasetError` for missing, truncated or
    corrupt raw files, ValueError for an unknown dataset or option."""
    dataset = get(name)
    options = dataset.check_options(options)
    raw = dataset.load(None if raw_dir is None else Path(raw_dir), download, options)
    _check_labels(dataset, raw)
    return raw


def _check_labels(dataset: Dataset, raw: Raw) -> None:
    where = raw.files[0].parent if raw.files else "the generator"
    for labels in (raw.y_train, raw.y_test):
        if len(labels) and (labels.min() < 0 or labels.max() >= dataset.n_classes):
            raise DatasetError(f"labels of {dataset.name!r} outside "
                               f"[0, {dataset.n_classes}) (read from {where})")


def raw_sha256(raw_files: list[Path], raw_dir: str | os.PathLike | None) -> dict[str, str]:
    """``{relative name: sha256}``: relative to ``raw_dir`` where possible, else (the
    digits CSV inside scikit-learn) ``sklearn/datasets/data/digits.csv.gz``."""
    out = {}
    for path in raw_files:
        path = Path(path)
        key = None
        if raw_dir is not None:
            try:
                key = path.resolve().relative_to(Path(raw_dir).resolve()).as_posix()
            except ValueError:
                key = None
        if key is None:
            parts = path.parts
            key = "/".join(parts[parts.index("sklearn"):]) if "sklearn" in parts else path.name
        out[key] = fileio.sha256_file(path)
    return out


def tensors_sha256(prepared: Prepared) -> dict[str, str]:
    """sha256 of each tensor's raw bytes (C order): identifies the data independently
    of how ``torch.save`` serialises it."""
    return {key: hashlib.sha256(getattr(prepared, key).contiguous().numpy().tobytes())
            .hexdigest() for key in TENSOR_KEYS}


def subset_indices(n_full: int, n_train: int | None, seed: int) -> torch.Tensor | None:
    """Indices (sorted) of a fixed-seed random subset of size ``n_train``; None = all."""
    if n_train is None:
        return None
    if isinstance(n_train, bool) or not isinstance(n_train, (int, np.integer)) or n_train < 1:
        raise ValueError(f"n_train must be a positive integer or None, got {n_train!r}")
    if n_train > n_full:
        raise ValueError(f"n_train={n_train} is larger than the {n_full} training "
                         "examples available")
    generator = torch.Generator().manual_seed(int(seed))
    chosen = torch.randperm(n_full, generator=generator)[: int(n_train)]
    return torch.sort(chosen).values


def standardise(x_train: np.ndarray, x_test: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Flatten to ``[N, D]`` and standardise both with the train statistics (float64
    accumulation in fixed-size chunks, float32 output; zero std -> 1)."""
    tr = x_train.reshape(len(x_train), -1)
    te = x_test.reshape(len(x_test), -1)
    n, d = tr.shape
    total = np.zeros(d, dtype=np.float64)
    for i in range(0, n, _CHUNK):
        total += tr[i:i + _CHUNK].astype(np.float64).sum(axis=0)
    mean = total / n
    sq = np.zeros(d, dtype=np.float64)
    for i in range(0, n, _CHUNK):
        sq += np.square(tr[i:i + _CHUNK].astype(np.float64) - mean).sum(axis=0)
    std = np.sqrt(sq / n)
    std[std == 0] = 1.0

    def apply(a: np.ndarray) -> torch.Tensor:
        out = np.empty(a.shape, dtype=np.float32)
        for i in range(0, len(a), _CHUNK):
            out[i:i + _CHUNK] = (a[i:i + _CHUNK].astype(np.float64) - mean) / std
        return torch.from_numpy(out)

    return apply(tr), apply(te)


def prepare(name: str, raw_dir: str | os.PathLike | None, n_train: int | None = None,
            subset_seed: int = 0, download: bool = False,
            options: Mapping[str, Any] | None = None) -> Prepared:
    """Load ``name`` and return standardised float32 ``[N, D]`` features, int64 labels
    and meta (see the module docstring). ``n_train=None`` keeps the full train split;
    ``options``: the dataset's own options (the config block named after it)."""
    dataset = get(name)
    raw = load_raw(name, raw_dir, download=download, options=options)
    n_full = len(raw.x_train)
    idx = subset_indices(n_full, n_train, subset_seed)
    x_tr, y_tr = raw.x_train, raw.y_train
    if idx is not None:
        x_tr, y_tr = x_tr[idx.numpy()], y_tr[idx.numpy()]
    xt, xe = standardise(x_tr, raw.x_test)
    prepared = Prepared(
        x_train=xt.contiguous(),
        y_train=torch.from_numpy(np.ascontiguousarray(y_tr, dtype=np.int64)).clone(),
        x_test=xe.contiguous(),
        y_test=torch.from_numpy(np.ascontiguousarray(raw.y_test, dtype=np.int64)).clone(),
    )
    prepared.meta = _meta(dataset, raw, prepared, n_full=n_full,
                          subset_seed=subset_seed, subset=idx is not None, raw_dir=raw_dir)
    return prepared


def _meta(dataset: Dataset, raw: Raw, prepared: Prepared, *, n_full: int,
          subset_seed: int, subset: bool, raw_dir) -> dict[str, Any]:
    meta = {
        "name": dataset.name,
        "source": dataset.source,
        "d_in": int(prepared.x_train.shape[1]),
        "input_shape": list(raw.x_train.shape[1:]),
        "n_classes": dataset.n_classes,
        "n_train": int(len(prepared.x_train)),
        "n_test": int(len(prepared.x_test)),
        "n_train_full": int(n_full),
        "subset_seed": int(subset_seed),
        "subset": SUBSET_NOTE if subset else "full train split",
        "standardisation": STANDARDISATION_NOTE,
        "raw_sha256": raw_sha256(raw.files, raw_dir),
        "tensors_sha256": tensors_sha256(prepared),
    }
    # split rule; generated data: the generator's full arguments (options applied) and
    # the package version, which together define the data
    meta.update(raw.provenance)
    return meta
