"""Atomic writes and per-directory sha256 manifests.

Every file the pipeline produces goes through :func:`atomic_write`: the bytes land in a
temporary file in the same directory, are flushed to disk, then renamed over the target.
An interrupted job therefore leaves either the old file or no file -- never a truncated
one that looks complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

MANIFEST_NAME = "MANIFEST.sha256"
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.
    (``suffix``: for writers that care about the extension, e.g. papermill's .ipynb.)"""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's 0600 is for the temp file only
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write(path: str | os.PathLike, writer: Callable[[Path], Any]) -> Path:
    """Call ``writer(tmp_path)`` and move the result onto ``path`` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def write_bytes(path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_text(path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def read_json(path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_csv(path, frame) -> Path:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return write_text(path, buffer.getvalue())


def _jsonable(value):
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(directory: str | os.PathLike) -> Path:
    """Record the sha256 of every file under ``directory`` (the manifest itself excepted),
    in ``sha256sum`` format so ``sha256sum -c MANIFEST.sha256`` also checks it."""
    directory = Path(directory)
    lines = [
        f"{sha256_file(p)}  {p.relative_to(directory).as_posix()}"
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != MANIFEST_NAME and not p.name.endswith(".tmp")
    ]
    return write_text(directory / MANIFEST_NAME, "\n".join(lines) + "\n")


def read_manifest(path: str | os.PathLike) -> dict[str, str]:
    entries = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            digest, name = line.split(None, 1)
            entries[name.strip()] = digest
    return entries
