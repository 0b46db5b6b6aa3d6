"""Preparation: raw split -> standardised float32 tensors plus provenance meta.

:func:`prepare` is pure computation over a loader's :class:`~.base.Raw`: examples are
flattened channel-first to ``[N, D]`` float32; an optional fixed-seed training subset
is drawn (``torch.randperm`` with ``torch.Generator().manual_seed(seed)``, first
``n_train`` indices, kept in source order) and, when ``n_validation`` is set, a
validation split from the next ``n_validation`` indices of the same permutation (so
the training subset does not depend on it; with ``n_train`` unset the training set is
the rest of the split). Every feature is then standardised with the mean and
(population) standard deviation of the *training* (sub)set, a zero std being replaced
by 1. The test split is always complete. Same arguments give byte-identical tensors.
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
               ".manual_seed(subset_seed)): training = [:n_train], validation = "
               "[n_train:n_train + n_validation], each sorted")

STRATIFIED_NOTE = ("per class (stratified): each class's indices permuted by one "
                   "torch.Generator().manual_seed(subset_seed); its share of n_train, then "
                   "of n_validation (largest remainders), each sorted")

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


def subset_indices(n_full: int, n_train: int | None, seed: int,
                   n_validation: int = 0) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(training indices or None = all, validation indices), each sorted: the first
    ``n_train`` and the next ``n_validation`` of a fixed-seed permutation."""
    if isinstance(n_validation, bool) or not isinstance(n_validation, (int, np.integer)) \
            or n_validation < 0:
        raise ValueError(f"n_validation must be a non-negative integer, got {n_validation!r}")
    if n_train is None and not n_validation:
        return None, torch.zeros(0, dtype=torch.long)
    if n_train is not None and (isinstance(n_train, bool) or not isinstance(
            n_train, (int, np.integer)) or n_train < 1):
        raise ValueError(f"n_train must be a positive integer or None, got {n_train!r}")
    n_fit = n_full - n_validation if n_train is None else int(n_train)
    if n_fit < 1 or n_fit + n_validation > n_full:
        raise ValueError(f"n_train={n_train} plus n_validation={n_validation} need more than "
                         f"the {n_full} training examples available")
    generator = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(n_full, generator=generator)
    return (torch.sort(order[:n_fit]).values,
            torch.sort(order[n_fit:n_fit + n_validation]).values)


def stratified_subset_indices(labels: np.ndarray, n_train: int | None, seed: int,
                              n_validation: int = 0) -> tuple[torch.Tensor | None, torch.Tensor]:
    """:func:`subset_indices` drawn per class: each class gets its share of the training
    subset and of the validation split (largest remainders where the sizes do not
    divide), each class's draw from one fixed-seed permutation of its indices."""
    labels = np.asarray(labels)
    n_full = len(labels)
    n_fit = n_full - n_validation if n_train is None else int(n_train)
    subset_indices(n_full, n_train, seed, n_validation)  # the same checks, the same errors
    if n_train is None and not n_validation:
        return None, torch.zeros(0, dtype=torch.long)
    classes = np.unique(labels)
    counts = np.array([(labels == c).sum() for c in classes])
    fit, val = _shares(counts, n_fit), _shares(counts, n_validation)
    generator = torch.Generator().manual_seed(int(seed))
    train_idx, val_idx = [], []
    for c, n_c, v_c in zip(classes, fit, val):
        idx = torch.from_numpy(np.flatnonzero(labels == c))
        order = idx[torch.randperm(len(idx), generator=generator)]
        train_idx.append(order[:n_c])
        val_idx.append(order[n_c:n_c + v_c])
    return torch.sort(torch.cat(train_idx)).values, torch.sort(torch.cat(val_idx)).values


def _shares(counts: np.ndarray, total: int) -> np.ndarray:
    """``total`` split across classes in proportion to ``counts`` (largest remainders)."""
    exact = counts * total / counts.sum()
    shares = np.floor(exact).astype(int)
    shares[np.argsort(-(exact - shares), kind="stable")[:total - shares.sum()]] += 1
    return np.minimum(shares, counts)


def standardise(x_train: np.ndarray, *others: np.ndarray) -> tuple[torch.Tensor, ...]:
    """Flatten to ``[N, D]`` and standardise the training set and ``others`` with the
    training statistics (float64 accumulation in fixed-size chunks, float32 output;
    zero std -> 1)."""
    tr = x_train.reshape(len(x_train), -1)
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

    return (apply(tr), *(apply(a.reshape(len(a), *tr.shape[1:])) for a in others))


def prepare(name: str, raw_dir: str | os.PathLike | None, n_train: int | None = None,
            subset_seed: int = 0, download: bool = False,
            options: Mapping[str, Any] | None = None, n_validation: int = 0) -> Prepared:
    """Load ``name`` and return standardised float32 ``[N, D]`` features, int64 labels
    and meta (see the module docstring). ``n_train=None`` keeps the full train split
    (less the validation split); ``options``: the dataset's own options (the config
    block named after it)."""
    dataset = get(name)
    raw = load_raw(name, raw_dir, download=download, options=options)
    n_full = len(raw.x_train)
    if dataset.stratified:
        idx, val_idx = stratified_subset_indices(raw.y_train, n_train, subset_seed, n_validation)
    else:
        idx, val_idx = subset_indices(n_full, n_train, subset_seed, n_validation)
    x_tr, y_tr = raw.x_train, raw.y_train
    if idx is not None:
        x_tr, y_tr = x_tr[idx.numpy()], y_tr[idx.numpy()]
    x_va, y_va = raw.x_train[val_idx.numpy()], raw.y_train[val_idx.numpy()]
    xt, xe, xv = standardise(x_tr, raw.x_test, x_va)
    prepared = Prepared(
        x_train=xt.contiguous(), y_train=_labels(y_tr),
        x_test=xe.contiguous(), y_test=_labels(raw.y_test),
        x_val=xv.contiguous(), y_val=_labels(y_va),
    )
    prepared.meta = _meta(dataset, raw, prepared, n_full=n_full,
                          subset_seed=subset_seed, subset=idx is not None, raw_dir=raw_dir)
    if dataset.stratified and idx is not None:
        prepared.meta["subset"] = STRATIFIED_NOTE
    return prepared


def _labels(y: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)).clone()


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
        "n_validation": int(len(prepared.x_val)),
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
