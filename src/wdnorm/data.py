"""Datasets: read the raw files, make the prepared tensors, save and load them.

Four datasets (:data:`DATASETS`), every one a 10-class image classification problem that
the MLPs of :mod:`wdnorm.models` see as flat feature vectors:

==============  ====================================  ==========  =============
name            raw source                            input       train / test
==============  ====================================  ==========  =============
digits          ``sklearn.datasets.load_digits``      1 x 8 x 8   1347 / 450
mnist           ``torchvision.datasets.MNIST``        1 x 28 x 28 60000 / 10000
fashion_mnist   ``torchvision.datasets.FashionMNIST`` 1 x 28 x 28 60000 / 10000
cifar10         ``torchvision.datasets.CIFAR10``      3 x 32 x 32 50000 / 10000
==============  ====================================  ==========  =============

* ``digits`` ships inside scikit-learn (offline). It has no official split, so the split
  is ours: stratified by label, test fraction :data:`DIGITS_TEST_FRACTION` = 0.25, seed
  :data:`DIGITS_SPLIT_SEED` = 0 (``sklearn.model_selection.train_test_split``).
* The other three are read by torchvision's own dataset classes from
  ``raw_dir`` (their ``root``), which download them with checksums when asked. Around
  those readers this module adds clear errors: missing files name the directory and say
  how to download; a truncated/corrupt file raises :class:`DatasetError` naming it (IDX
  header-declared size vs file size for (Fashion)MNIST, the md5 torchvision pins for
  each CIFAR-10 file).

Preparation (:func:`prepare`, pure computation over :func:`load_raw`'s arrays): images
are flattened channel-first (C, H, W) to ``[N, D]`` float32; an optional fixed-seed
training subset is drawn (``torch.randperm`` with ``torch.Generator().manual_seed(seed)``,
first ``n_train`` indices, kept in source order); every feature is then standardised
with the mean and (population) standard deviation of that *training* (sub)set, a zero
std being replaced by 1. The test split is always complete. Same arguments give
byte-identical tensors.

IO (:func:`save_prepared`, :func:`load_prepared`) goes through :mod:`wdnorm.fileio`:
``{dataset}.pt`` holds the four tensors and the meta dict (plain Python types, so
``torch.load(weights_only=True)`` reads it); ``{dataset}.json`` holds the same meta plus
the ``sha256`` of the ``.pt`` file.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import fileio

DATASETS: tuple[str, ...] = ("digits", "mnist", "fashion_mnist", "cifar10")

N_CLASSES: dict[str, int] = {name: 10 for name in DATASETS}
INPUT_SHAPE: dict[str, tuple[int, int, int]] = {
    "digits": (1, 8, 8),
    "mnist": (1, 28, 28),
    "fashion_mnist": (1, 28, 28),
    "cifar10": (3, 32, 32),
}

DIGITS_TEST_FRACTION = 0.25
DIGITS_SPLIT_SEED = 0

STANDARDISATION_NOTE = (
    "features flattened channel-first (C,H,W) to [N, D] float32, then standardised per "
    "feature as (x - mean) / std with mean and population std (ddof=0) computed in "
    "float64 on the training set actually used (the subset when n_train is set); "
    "zero std replaced by 1; the test split uses the same training statistics"
)

_PT_KEYS = ("x_train", "y_train", "x_test", "y_test")
_CHUNK = 4096  # rows per chunk when standardising (bounds float64 temporaries)


class DatasetError(ValueError):
    """Raw dataset files are missing, truncated or corrupt (the message names which)."""


@dataclass
class Prepared:
    """Prepared tensors: float32 features ``[N, D]``, int64 labels ``[N]``, plus meta."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    meta: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- names

def check_dataset(name: str) -> str:
    """Return ``name`` if it is a known dataset, else raise ValueError listing them."""
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}")
    return name


# --------------------------------------------------------------------------- raw reading

def load_raw(name: str, raw_dir: str | os.PathLike | None, download: bool = False
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[Path]]:
    """Read one dataset's official (or, for digits, fixed) train/test split.

    Returns ``(x_train, y_train, x_test, y_test, raw_files)``: images as uint8 arrays
    ``[N, C, H, W]``, labels as int64 arrays ``[N]``, and the raw files read (absolute
    paths). ``raw_dir`` is torchvision's ``root`` (ignored for digits). Raises
    :class:`DatasetError` for missing, truncated or corrupt files.
    """
    check_dataset(name)
    if name == "digits":
        return _load_digits()
    if raw_dir is None:
        raise ValueError(f"dataset {name!r} needs a raw_dir")
    raw_dir = Path(raw_dir)
    if name == "cifar10":
        out = _load_cifar10(raw_dir, download)
    else:
        out = _load_mnist_like(name, raw_dir, download)
    _check_labels(name, out)
    return out


def digits_csv_path() -> Path:
    """The CSV file that ``sklearn.datasets.load_digits`` reads."""
    path = importlib.resources.files("sklearn.datasets") / "data" / "digits.csv.gz"
    return Path(str(path))


def _load_digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    data = np.asarray(bunch.data)
    if data.min() < 0 or data.max() > 255 or not np.array_equal(data, np.round(data)):
        raise DatasetError(f"unexpected values in {digits_csv_path()}")
    x = data.astype(np.uint8).reshape(-1, *INPUT_SHAPE["digits"])
    y = np.asarray(bunch.target, dtype=np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED, stratify=y)
    return x_tr, y_tr, x_te, y_te, [digits_csv_path()]


def _download_hint(name: str, raw_dir: Path, folder: Path, missing: list[str]) -> str:
    return (f"raw files for {name!r} not found in {folder} (missing: {', '.join(missing)}); "
            f"download them with wdnorm.data.prepare({name!r}, {str(raw_dir)!r}, "
            "download=True) (the pipeline's download option) on a machine with internet "
            "access, or copy an existing download there")


# ---- (Fashion)MNIST

def _mnist_class(name: str):
    from torchvision import datasets
    return {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST}[name]


def _mnist_files(cls, raw_dir: Path) -> list[Path]:
    """Uncompressed raw files torchvision reads, in resources order (train images,
    train labels, test images, test labels); the folder is ``root/<ClassName>/raw``."""
    folder = raw_dir / cls.__name__ / "raw"
    return [folder / os.path.splitext(os.path.basename(url))[0] for url, _ in cls.resources]


_IDX_ITEMSIZE = {8: 1, 9: 1, 11: 2, 12: 4, 13: 4, 14: 8}


def _idx_problem(path: Path) -> str | None:
    """Why an IDX file is unusable (header-declared size vs file size), or None."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(4)
        if len(head) < 4:
            return f"{size} bytes, shorter than the 4-byte IDX magic number"
        ndim, dtype_code = head[3], head[2]
        if head[0] != 0 or head[1] != 0 or dtype_code not in _IDX_ITEMSIZE or not 1 <= ndim <= 3:
            return f"bad IDX magic number {head.hex()}"
        dims_raw = handle.read(4 * ndim)
    if len(dims_raw) < 4 * ndim:
        return f"{size} bytes, truncated inside the IDX header"
    dims = [int.from_bytes(dims_raw[4 * i:4 * i + 4], "big") for i in range(ndim)]
    expected = 4 + 4 * ndim + int(np.prod(dims, dtype=np.int64)) * _IDX_ITEMSIZE[dtype_code]
    if size != expected:
        return (f"{size} bytes but its IDX header declares shape {tuple(dims)}, "
                f"i.e. {expected} bytes (truncated or corrupt)")
    return None


def _load_mnist_like(name: str, raw_dir: Path, download: bool):
    cls = _mnist_class(name)
    files = _mnist_files(cls, raw_dir)
    folder = files[0].parent
    if download and not all(p.is_file() for p in files):
        try:
            cls(root=str(raw_dir), train=True, download=True)
        except Exception as exc:  # network, checksum of the .gz, extraction
            raise DatasetError(f"downloading {name!r} into {folder} failed: {exc}") from exc
    missing = [p.name for p in files if not p.is_file()]
    if missing:
        raise DatasetError(_download_hint(name, raw_dir, folder, missing))
    for path in files:
        problem = _idx_problem(path)
        if problem:
            raise DatasetError(f"corrupt raw file {path}: {problem}; delete it and download again")
    arrays = []
    for train in (True, False):
        try:
            ds = cls(root=str(raw_dir), train=train, download=False)
        except Exception as exc:
            raise DatasetError(f"torchvision could not read {name!r} from {folder}: "
                               f"{type(exc).__name__}: {exc}") from exc
        images = ds.data.numpy()
        labels = ds.targets.numpy().astype(np.int64)
        pair = files[:2] if train else files[2:]
        if images.ndim != 3 or len(images) != len(labels):
            raise DatasetError(f"{pair[0]} holds {len(images)} images of shape "
                               f"{images.shape[1:]} but {pair[1]} holds {len(labels)} labels")
        arrays += [np.ascontiguousarray(images[:, None, :, :]), labels]
    return (*arrays, files)


# ---- CIFAR-10

def _cifar_files(cls, raw_dir: Path) -> list[tuple[Path, str]]:
    folder = raw_dir / cls.base_folder
    entries = [(folder / fname, md5) for fname, md5 in cls.train_list + cls.test_list]
    entries.append((folder / cls.meta["filename"], cls.meta["md5"]))
    return entries


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _load_cifar10(raw_dir: Path, download: bool):
    from torchvision.datasets import CIFAR10 as cls

    entries = _cifar_files(cls, raw_dir)
    files = [path for path, _ in entries]
    folder = files[0].parent
    if download and _cifar_problem(entries):
        try:  # torchvision downloads the archive (md5-checked) and extracts it
            cls(root=str(raw_dir), train=False, download=True)
        except Exception as exc:
            raise DatasetError(f"downloading 'cifar10' into {raw_dir} failed: {exc}") from exc
    missing = [p.name for p in files if not p.is_file()]
    if missing:
        raise DatasetError(_download_hint("cifar10", raw_dir, folder, missing))
    problem = _cifar_problem(entries)
    if problem:
        raise DatasetError(problem)
    arrays = []
    for train in (True, False):
        try:
            ds = cls(root=str(raw_dir), train=train, download=False)
        except Exception as exc:
            raise DatasetError(_cifar_diagnose(files, exc)) from exc
        images = np.asarray(ds.data)  # [N, H, W, C] uint8
        labels = np.asarray(ds.targets, dtype=np.int64)
        if images.dtype != np.uint8 or len(images) != len(labels):
            raise DatasetError(f"CIFAR-10 batches in {folder} hold {len(images)} images "
                               f"({images.dtype}) but {len(labels)} labels")
        arrays += [np.ascontiguousarray(images.transpose(0, 3, 1, 2)), labels]
    return (*arrays, files)


def _cifar_problem(entries: list[tuple[Path, str]]) -> str | None:
    """First missing file or md5 mismatch (against the md5s torchvision pins), or None."""
    for path, md5 in entries:
        if not path.is_file():
            return f"missing raw file {path}"
        actual = _md5(path)
        if actual != md5:
            return (f"corrupt raw file {path}: md5 {actual} != expected {md5} "
                    "(truncated or corrupt); delete it and download again")
    return None


def _cifar_diagnose(files: list[Path], exc: Exception) -> str:
    """Name the first CIFAR file that does not unpickle (only on the error path)."""
    for path in files:
        try:
            with open(path, "rb") as handle:
                pickle.load(handle, encoding="latin1")
        except Exception as inner:
            return (f"corrupt raw file {path}: cannot be unpickled "
                    f"({type(inner).__name__}: {inner}); delete it and download again")
    return (f"torchvision could not read 'cifar10' from {files[0].parent}: "
            f"{type(exc).__name__}: {exc}")


def _check_labels(name: str, out) -> None:
    n_classes = N_CLASSES[name]
    for labels, path in ((out[1], out[4][0]), (out[3], out[4][-1])):
        if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
            raise DatasetError(f"labels of {name!r} outside [0, {n_classes}) "
                               f"(read from {path.parent})")


# --------------------------------------------------------------------------- preparation

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
            subset_seed: int = 0, download: bool = False) -> Prepared:
    """Load ``name`` and return standardised float32 ``[N, D]`` features, int64 labels
    and meta (see the module docstring). ``n_train=None`` keeps the full train split."""
    check_dataset(name)
    x_tr, y_tr, x_te, y_te, files = load_raw(name, raw_dir, download=download)
    n_full = len(x_tr)
    idx = subset_indices(n_full, n_train, subset_seed)
    if idx is not None:
        x_tr, y_tr = x_tr[idx.numpy()], y_tr[idx.numpy()]
    xt, xe = standardise(x_tr, x_te)
    meta = {
        "name": name,
        "d_in": int(xt.shape[1]),
        "input_shape": list(x_tr.shape[1:]),
        "n_classes": N_CLASSES[name],
        "n_train": int(len(xt)),
        "n_test": int(len(xe)),
        "n_train_full": int(n_full),
        "subset_seed": int(subset_seed),
        "subset": ("full train split" if idx is None else
                   "torch.randperm(n_train_full, generator=torch.Generator()"
                   ".manual_seed(subset_seed))[:n_train], sorted"),
        "standardisation": STANDARDISATION_NOTE,
        "split": ("stratified train_test_split(test_size=0.25, random_state=0) of "
                  "sklearn load_digits" if name == "digits" else "official train/test split"),
        "raw_sha256": raw_sha256(files, raw_dir),
    }
    return Prepared(
        x_train=xt.contiguous(),
        y_train=torch.from_numpy(np.ascontiguousarray(y_tr, dtype=np.int64)).clone(),
        x_test=xe.contiguous(),
        y_test=torch.from_numpy(np.ascontiguousarray(y_te, dtype=np.int64)).clone(),
        meta=meta,
    )


# --------------------------------------------------------------------------- IO

def save_prepared(prepared: Prepared, pt_path: str | os.PathLike,
                  meta_path: str | os.PathLike) -> None:
    """Write the tensors + meta to ``pt_path`` and meta + ``sha256`` of it to
    ``meta_path``, each atomically (the ``.pt`` first)."""
    # clone(): torch.save writes a view's whole storage, so save compact tensors only
    payload = {key: getattr(prepared, key).detach().cpu().contiguous().clone()
               for key in _PT_KEYS}
    payload["meta"] = _plain(prepared.meta)
    fileio.atomic_write(pt_path, lambda tmp: _torch_save(payload, tmp))
    meta = dict(payload["meta"])
    meta["sha256"] = fileio.sha256_file(pt_path)
    meta["file"] = Path(pt_path).name
    fileio.write_json(meta_path, meta)


def _torch_save(obj, path: Path) -> None:
    # Through a file object: given a path, torch.save names the zip records after the
    # (random) temporary file name, so the bytes would differ from save to save.
    with open(path, "wb") as handle:
        torch.save(obj, handle)


def load_prepared(pt_path: str | os.PathLike) -> Prepared:
    """Read a file written by :func:`save_prepared` (``weights_only=True``)."""
    payload = torch.load(pt_path, map_location="cpu", weights_only=True)
    missing = [k for k in (*_PT_KEYS, "meta") if not isinstance(payload, dict) or k not in payload]
    if missing:
        raise DatasetError(f"{pt_path} is not a prepared dataset (missing {', '.join(missing)})")
    return Prepared(**{k: payload[k] for k in _PT_KEYS}, meta=payload["meta"])


def _plain(value):
    """Meta as plain Python types (dict/list/str/int/float/bool/None)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return value
