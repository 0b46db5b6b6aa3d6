"""Which GPU does this job use? Exclusive GPU slots held with ``flock``.

Snakemake counts a ``gpu`` resource (``--resources gpu=K`` caps the number of
concurrent GPU jobs at K) but never tells a job *which* GPU it got. Each job
therefore claims a slot itself: it takes an exclusive :func:`fcntl.flock` on
``lock_dir/gpu{i}.lock`` for the first free ``i`` among the K visible GPUs and
holds it for its whole life. The kernel drops a flock when the last descriptor
of its holder is closed -- also when the holder dies, even by SIGKILL -- so a
crashed or killed job never leaks its slot, and there is no stale-lock cleanup.

The lock file is named after the *physical* GPU: with ``CUDA_VISIBLE_DEVICES``
set (e.g. by SLURM, which hands each job its own GPU as ``cuda:0``), logical
device ``i`` locks ``gpu{CUDA_VISIBLE_DEVICES[i]}.lock``, so two jobs that see
different GPUs never wait for each other and two that share one do. Lock files
are per machine: ``lock_dir`` must be node-local (``/tmp/...``) when jobs on
several machines share a file system. The holder's pid, host and start time are
written into the lock file for humans (``cat lock_dir/gpu0.lock``); the file is
emptied on release and never deleted (deleting would race with a new locker).

A child made with ``fork`` inside the ``with`` block shares the lock until it
exits too (one open file description); spawned or exec'd children do not (the
descriptor is close-on-exec). This module imports torch only to count GPUs.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["ALLOWED_REQUESTS", "acquire_device", "gpu_count", "lock_key"]

ALLOWED_REQUESTS = ("auto", "cpu", "cuda")


def gpu_count() -> int:
    """Number of CUDA devices this process can see (0 without torch or CUDA)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return 0
    try:
        return int(torch.cuda.device_count())
    except Exception:  # a broken driver counts as no GPU
        return 0


def lock_key(index: int, visible: str | None = None) -> str:
    """File-name-safe identity of logical GPU ``index``: its physical id.

    ``visible`` is ``CUDA_VISIBLE_DEVICES`` (read from the environment when
    omitted); its ``index``-th entry names the physical device (an ordinal or a
    ``GPU-``/``MIG-`` UUID). Without it, logical and physical ordinals agree.
    """
    if visible is None:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip():
        entries = [e.strip() for e in visible.split(",") if e.strip()]
        if index < len(entries):
            return re.sub(r"[^A-Za-z0-9_.-]", "_", entries[index])
    return str(index)


def _holder_note() -> bytes:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return f"pid={os.getpid()} host={socket.gethostname()} since={stamp}\n".encode()


def _read_note(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip() or "holder unknown"
    except OSError:
        return "holder unknown"


def _try_lock(path: Path) -> int | None:
    """Open ``path`` and take an exclusive flock without blocking; fd or None."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except PermissionError:  # another user's lock file: lock it read-only, no note
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        if exc.errno in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
            raise OSError(exc.errno, f"cannot flock {path} ({exc.strerror}): put the GPU "
                          "lock directory on a node-local file system such as /tmp") from exc
        raise
    return fd


def _first_free(paths: list[Path]) -> tuple[int, int] | None:
    """Lock the first free slot: ``(slot, fd)``, or None when all are held."""
    for slot, path in enumerate(paths):
        fd = _try_lock(path)
        if fd is not None:
            return slot, fd
    return None


def _wait_for_slot(lock_dir: Path, k: int, timeout_s: float | None,
                   poll_s: float) -> tuple[int, int]:
    """Lock the first free one of ``k`` slot files, waiting while all are held."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    paths = [lock_dir / f"gpu{lock_key(i)}.lock" for i in range(k)]
    deadline = None if timeout_s is None else time.monotonic() + max(0.0, timeout_s)
    while (claimed := _first_free(paths)) is None:
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            holders = "; ".join(f"{p.name}: {_read_note(p)}" for p in paths)
            raise TimeoutError(
                f"all {k} GPU slot(s) in {lock_dir} stayed busy for {timeout_s} s ({holders})"
            )
        time.sleep(poll_s if deadline is None else min(poll_s, deadline - now))
    return claimed


@contextlib.contextmanager
def acquire_device(
    requested: str,
    lock_dir: Path,
    n_gpus: int | None = None,
    timeout_s: float | None = None,
    poll_s: float = 0.2,
) -> Iterator[tuple[str, int | None]]:
    """Claim a device for the life of the ``with`` block.

    Yields ``(device, slot)``: ``("cpu", None)``, or ``(f"cuda:{i}", i)`` while
    holding GPU slot ``i`` exclusively.

    requested:  "auto" (a GPU if one is visible, else the CPU), "cpu", or "cuda"
                (a GPU, and an error if none is visible).
    lock_dir:   directory of the slot lock files (created if missing; node-local).
    n_gpus:     number of GPU slots K; default :func:`gpu_count`. Tests pass a
                simulated K.
    timeout_s:  give up after this many seconds when all K slots stay busy
                (:class:`TimeoutError`); None waits for ever, 0 tries once.
    poll_s:     seconds between attempts while all slots are busy.
    """
    if requested not in ALLOWED_REQUESTS:
        allowed = ", ".join(repr(a) for a in ALLOWED_REQUESTS)
        raise ValueError(f"device must be one of {allowed}; got {requested!r}")
    if requested == "cpu":
        yield "cpu", None
        return
    k = gpu_count() if n_gpus is None else int(n_gpus)
    if k < 0:
        raise ValueError(f"n_gpus must be >= 0; got {n_gpus!r}")
    if k == 0:
        if requested == "cuda":
            raise ValueError(
                "device 'cuda' was requested but no CUDA device is visible "
                f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}); "
                "use 'auto' to fall back to the CPU"
            )
        yield "cpu", None
        return
    if poll_s <= 0:
        raise ValueError(f"poll_s must be > 0; got {poll_s!r}")

    slot, fd = _wait_for_slot(Path(lock_dir), k, timeout_s, poll_s)

    try:
        with contextlib.suppress(OSError):  # the note is for humans only
            os.ftruncate(fd, 0)
            os.pwrite(fd, _holder_note(), 0)
        yield f"cuda:{slot}", slot
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # free again: nobody to blame
        os.close(fd)  # releases the flock
