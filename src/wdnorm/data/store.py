"""Prepared files: save and load them, keep unchanged content's mtime, verify them.

``{dataset}.pt`` holds the four tensors and the meta dict (plain Python types, so
``torch.load(weights_only=True)`` reads it); ``{dataset}.json`` holds the same meta plus
the ``sha256`` of the ``.pt`` file. Both are written atomically (:mod:`wdnorm.fileio`).

Content addressing. Snakemake deletes a job's outputs before it reruns the job, so
"leave unchanged content alone" cannot mean "do not write it": the old file is gone
before the new content is known. Instead :func:`save_prepared` keeps a stamp *outside*
the rule's declared outputs (``.stamps/{dataset}.json`` beside the ``.pt``, which
snakemake never deletes) with the sha256 and mtime of the last content written; when
the new file has the same bytes, both outputs get that old mtime back, so outputs
already built from the data are not made stale by a newer-looking input.

Two limits (snakemake 9): snakemake touches a job's outputs once the job has finished,
which undoes the restored mtime, so :func:`restore_stamped_mtimes`, called when the
workflow is parsed, puts it back on unchanged content before the next DAG is built
(snakemake's own input checksums cover this only for files up to
``--max-checksum-file-size``, 1 MB by default: digits and mnist1d, not MNIST or
CIFAR-10). And within one invocation snakemake reruns every job downstream of a job it
reruns, whatever the mtimes: what this saves is a later invocation's work, e.g. after
``snakemake data/prepared/mnist.pt`` or a ``--forcerun`` of the preparation.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .. import fileio
from .base import TENSOR_KEYS, DatasetError, Prepared

STAMP_DIR = ".stamps"


def save_prepared(prepared: Prepared, pt_path: str | os.PathLike,
                  meta_path: str | os.PathLike) -> bool:
    """Write the tensors + meta to ``pt_path`` and meta + ``sha256`` of it to
    ``meta_path``, each atomically (the ``.pt`` first). Returns True when the bytes
    equal the stamped previous content, whose mtime both files then get back."""
    # clone(): torch.save writes a view's whole storage, so save compact tensors only
    payload = {key: getattr(prepared, key).detach().cpu().contiguous().clone()
               for key in TENSOR_KEYS}
    payload["meta"] = _plain(prepared.meta)
    fileio.atomic_write(pt_path, lambda tmp: _torch_save(payload, tmp))
    meta = dict(payload["meta"])
    meta["sha256"] = _sha256(Path(pt_path))
    meta["file"] = Path(pt_path).name
    fileio.write_json(meta_path, meta)
    return _keep_or_stamp(Path(pt_path), Path(meta_path))


def _torch_save(obj, path: Path) -> None:
    # Through a file object: given a path, torch.save names the zip records after the
    # (random) temporary file name, so the bytes would differ from save to save.
    with open(path, "wb") as handle:
        torch.save(obj, handle)


def load_prepared(pt_path: str | os.PathLike) -> Prepared:
    """Read a file written by :func:`save_prepared` (``weights_only=True``)."""
    payload = torch.load(pt_path, map_location="cpu", weights_only=True)
    missing = [k for k in (*TENSOR_KEYS, "meta")
               if not isinstance(payload, dict) or k not in payload]
    if missing:
        raise DatasetError(f"{pt_path} is not a prepared dataset (missing {', '.join(missing)})")
    return Prepared(**{k: payload[k] for k in TENSOR_KEYS}, meta=payload["meta"])


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


# --------------------------------------------------------------------------- stamps

def stamp_path(pt_path: str | os.PathLike) -> Path:
    """Where the stamp of ``pt_path`` lives: ``<dir>/.stamps/<stem>.json``."""
    pt_path = Path(pt_path)
    return pt_path.parent / STAMP_DIR / f"{pt_path.stem}.json"


def _read_stamp(pt_path: Path) -> dict | None:
    try:
        stamp = fileio.read_json(stamp_path(pt_path))
    except (OSError, ValueError):
        return None
    keys = ("pt_sha256", "meta_sha256", "pt_mtime_ns", "meta_mtime_ns")
    return stamp if isinstance(stamp, dict) and all(k in stamp for k in keys) else None


def _digests(pt_path: Path, meta_path: Path) -> dict[str, str]:
    return {"pt_sha256": _sha256(pt_path), "meta_sha256": _sha256(meta_path)}


def _keep_or_stamp(pt_path: Path, meta_path: Path) -> bool:
    """Same bytes as stamped: restore the stamped mtimes (True). Else stamp the new
    content with its mtimes (False)."""
    digests = _digests(pt_path, meta_path)
    stamp = _read_stamp(pt_path)
    if stamp is not None and all(stamp[k] == v for k, v in digests.items()):
        _set_mtime(pt_path, stamp["pt_mtime_ns"])
        _set_mtime(meta_path, stamp["meta_mtime_ns"])
        return True
    fileio.write_json(stamp_path(pt_path), {
        **digests, "pt_file": pt_path.name, "meta_file": meta_path.name,
        "pt_mtime_ns": pt_path.stat().st_mtime_ns,
        "meta_mtime_ns": meta_path.stat().st_mtime_ns})
    return False


def restore_stamped_mtimes(pt_path: str | os.PathLike, meta_path: str | os.PathLike) -> bool:
    """Give both files their stamped mtimes back if their bytes are the stamped ones
    and an mtime differs (snakemake touched them after the job); True if it did.
    Absent files or stamp, or different bytes: nothing changes."""
    pt_path, meta_path = Path(pt_path), Path(meta_path)
    stamp = _read_stamp(pt_path)
    if stamp is None or not (pt_path.is_file() and meta_path.is_file()):
        return False
    wanted = {pt_path: stamp["pt_mtime_ns"], meta_path: stamp["meta_mtime_ns"]}
    if all(path.stat().st_mtime_ns == ns for path, ns in wanted.items()):
        return False
    if any(stamp[k] != v for k, v in _digests(pt_path, meta_path).items()):
        return False
    for path, ns in wanted.items():
        _set_mtime(path, ns)
    return True


def _set_mtime(path: Path, mtime_ns: int) -> None:
    os.utime(path, ns=(path.stat().st_atime_ns, int(mtime_ns)))


_SHA_CACHE: dict[tuple, str] = {}


def _sha256(path: Path) -> str:
    """sha256 of a file, remembered per (path, inode, size, mtime) so verifying and
    restoring at workflow start hash a large prepared file once."""
    st = path.stat()
    key = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = fileio.sha256_file(path)
    return _SHA_CACHE[key]


# --------------------------------------------------------------------------- verification

def verify_prepared(pt_path: str | os.PathLike, meta_path: str | os.PathLike,
                    dataset: str | None = None) -> list[str]:
    """Problems with a prepared dataset, each naming the file, what is wrong and the
    command that rebuilds it; [] when it is sound or not built yet (no ``.pt``).
    ``dataset``: the registry dataset the file must hold (default: the file's stem; a
    protocol's data variant ``{dataset}-{protocol}.pt`` holds its source dataset)."""
    pt_path, meta_path = Path(pt_path), Path(meta_path)
    if not pt_path.exists():
        return []  # snakemake builds it
    fix = f"rebuild it with: rm -f {pt_path} {meta_path} && snakemake --cores all"
    if not meta_path.is_file():
        return [f"{meta_path}: missing (it records the sha256 of {pt_path}); {fix}"]
    try:
        meta = fileio.read_json(meta_path)
    except (OSError, ValueError) as exc:
        return [f"{meta_path}: unreadable JSON ({exc}); {fix}"]
    if not isinstance(meta, dict) or not isinstance(meta.get("sha256"), str):
        return [f"{meta_path}: records no sha256 of {pt_path.name}; {fix}"]
    actual = _sha256(pt_path)
    if actual != meta["sha256"]:
        return [f"{pt_path}: sha256 {actual} differs from {meta['sha256']} recorded in "
                f"{meta_path} (truncated, corrupt or replaced); {fix}"]
    problem = _payload_problem(pt_path, meta, dataset or pt_path.stem)
    return [f"{pt_path}: {problem}; {fix}"] if problem else []


def _payload_problem(pt_path: Path, meta: dict, expected: str) -> str | None:
    """Why the torch file does not hold the dataset its meta describes, or None.
    (mmap: only the zip index and the small meta are read, not the tensors.)"""
    try:
        payload = torch.load(pt_path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        return f"unreadable torch file ({type(exc).__name__}: {exc})"
    if not isinstance(payload, dict) or any(k not in payload for k in (*TENSOR_KEYS, "meta")):
        return f"not a prepared dataset (wants {', '.join(TENSOR_KEYS)}, meta)"
    inner = payload["meta"]
    name = inner.get("name") if isinstance(inner, dict) else None
    if name != meta.get("name"):
        return f"holds dataset {name!r} but its meta names {meta.get('name')!r}"
    if name != expected:  # the layout names each file after its dataset (or variant)
        return f"holds dataset {name!r}, not {expected!r} (a file from elsewhere)"
    shapes = {"x_train": (meta.get("n_train"), meta.get("d_in")), "y_train": (meta.get("n_train"),),
              "x_test": (meta.get("n_test"), meta.get("d_in")), "y_test": (meta.get("n_test"),),
              "x_val": (meta.get("n_validation"), meta.get("d_in")),
              "y_val": (meta.get("n_validation"),)}
    for key, shape in shapes.items():
        if tuple(payload[key].shape) != shape:
            return f"{key} has shape {tuple(payload[key].shape)}, its meta says {shape}"
    return None
