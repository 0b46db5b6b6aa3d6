"""MNIST, Fashion-MNIST and CIFAR-10, read by torchvision's own dataset classes.

``raw_dir`` is torchvision's ``root``; with ``download=True`` torchvision downloads
the archives and checks them against the md5s it pins (``resources`` for
(Fashion)MNIST, ``tgz_md5`` for CIFAR-10) before extracting. Around those readers
this module adds clear errors: missing files name the directory and say how to
download; a truncated/corrupt file raises :class:`DatasetError` naming it (IDX
header-declared size vs file size for (Fashion)MNIST, the md5 torchvision pins for
each CIFAR-10 file). Images come back channel-first ``[N, C, H, W]`` uint8.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .base import DatasetError, Raw

SPLIT_NOTE = "official train/test split"


def load_mnist(raw_dir: Path | None, download: bool, options: Mapping[str, Any]) -> Raw:
    return _load_mnist_like("mnist", _root("mnist", raw_dir), download)


def load_fashion_mnist(raw_dir: Path | None, download: bool, options: Mapping[str, Any]) -> Raw:
    return _load_mnist_like("fashion_mnist", _root("fashion_mnist", raw_dir), download)


def load_cifar10(raw_dir: Path | None, download: bool, options: Mapping[str, Any]) -> Raw:
    return _load_cifar10(_root("cifar10", raw_dir), download)


def _root(name: str, raw_dir: Path | None) -> Path:
    if raw_dir is None:
        raise ValueError(f"dataset {name!r} needs a raw_dir")
    return Path(raw_dir)


def _download_hint(name: str, raw_dir: Path, folder: Path, missing: list[str]) -> str:
    return (f"raw files for {name!r} not found in {folder} (missing: {', '.join(missing)}); "
            f"download them with wdnorm.data.prepare({name!r}, {str(raw_dir)!r}, "
            "download=True) (the pipeline's download option) on a machine with internet "
            "access, or copy an existing download there")


# --------------------------------------------------------------------------- (Fashion)MNIST

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


def _load_mnist_like(name: str, raw_dir: Path, download: bool) -> Raw:
    cls = _mnist_class(name)
    files = _mnist_files(cls, raw_dir)
    folder = files[0].parent
    if download and not all(p.is_file() for p in files):
        try:  # torchvision checks each .gz against the md5 in cls.resources
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
    return Raw(*arrays, files=files, provenance={"split": SPLIT_NOTE})


# --------------------------------------------------------------------------- CIFAR-10

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


def _load_cifar10(raw_dir: Path, download: bool) -> Raw:
    from torchvision.datasets import CIFAR10 as cls

    entries = _cifar_files(cls, raw_dir)
    files = [path for path, _ in entries]
    folder = files[0].parent
    if download and _cifar_problem(entries):
        try:  # torchvision downloads the archive, checks it against tgz_md5, extracts it
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
    return Raw(*arrays, files=files, provenance={"split": SPLIT_NOTE})


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
