"""The whole mutable state of a slab in training, and its atomic checkpoint.

A checkpoint holds everything the rest of the run depends on -- parameters, optimiser
moments, BN buffers, the batch-order generators, the trace and history so far, the step
-- so a resumed slab continues bit for bit where it stopped (same device and threads).
It is taken at an epoch boundary, or inside an epoch when the job is asked to stop
(SIGTERM): it then holds the batch generators as they were at the epoch's start and the
number of its steps already taken, so the resumed slab redraws the same order and
continues from the next batch.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import fileio

log = logging.getLogger("wdnorm")
FORMAT = 4  # 4: epoch_pos (checkpoints inside an epoch); 3: a checksummed header


@dataclass
class SlabState:
    tensors: dict                 # params/opt_state/buffers (dicts), alive
    gens: list                    # batch-order generators, one per distinct seed
    trace: dict                   # per-step records [T, M, ...], filled up to ``step``
    history: dict                 # per-evaluation records (lists)
    diverged_step: torch.Tensor   # [M], -1 where the member never diverged
    step: int = 0
    epoch: int = 0
    train_seconds: float = 0.0
    resumed_from: int | None = field(default=None)
    epoch_pos: int = 0            # steps of the current epoch already taken
    epoch_gens: list | None = None  # the generators' states at the current epoch's start


def fingerprint(*parts) -> str:
    """What a checkpoint must match to be resumed: the slab's settings, members, number
    of steps, data identity and training code. Anything else means another run: start
    afresh."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


MAGIC = b"wdnorm-checkpoint"


def save(path: Path, state: SlabState, key: str) -> None:
    """The checkpoint: one atomic file, a header line with its payload's sha256, then the
    payload -- tensors and plain containers only, which ``torch.load(weights_only=True)``
    reads without running any code."""
    payload = {
        "format": FORMAT, "fingerprint": key, "tensors": state.tensors,
        # inside an epoch: the generators before its order was drawn (redrawn on resume)
        "gens": state.epoch_gens if state.epoch_pos else [g.get_state() for g in state.gens],
        "epoch_pos": state.epoch_pos,
        "trace": {k: v[: state.step] for k, v in state.trace.items()},
        "history": state.history, "diverged_step": state.diverged_step,
        "step": state.step, "epoch": state.epoch, "train_seconds": state.train_seconds,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    body = buffer.getvalue()
    header = MAGIC + b" sha256 " + hashlib.sha256(body).hexdigest().encode() + b"\n"
    fileio.write_bytes(path, header + body)


def read(path: Path) -> dict:
    """A checkpoint's payload, verified: its sha256 must be the header's (torch checks no
    checksum of its own: flipped floats would unpickle and train on), and it is read
    with ``weights_only=True``. Raises on anything else."""
    blob = path.read_bytes()
    header, _, body = blob.partition(b"\n")
    parts = header.split(b" ")
    if len(parts) != 3 or parts[0] != MAGIC or parts[1] != b"sha256":
        raise ValueError("not a wdnorm checkpoint (no checksum header)")
    if hashlib.sha256(body).hexdigest().encode() != parts[2]:
        raise ValueError("its content does not match its sha256 (corrupt or truncated)")
    payload = torch.load(io.BytesIO(body), weights_only=True, map_location="cpu")
    if not isinstance(payload, dict):
        raise ValueError("its payload is not a checkpoint")
    return payload


def set_aside(path: Path, why: str) -> Path:
    """Move an unusable checkpoint out of the way (kept for inspection, never read again),
    so the slab starts afresh now and on every retry instead of failing on it again."""
    target = path.with_name(f"{path.name}.unusable-{int(time.time())}")
    os.replace(path, target)
    log.warning("checkpoint %s unusable (%s): set aside as %s; training starts from step 0",
                path, why, target.name)
    return target


def load_into(path: Path, state: SlabState, key: str) -> bool:
    """Restore ``state`` from the checkpoint at ``path`` when it exists and matches
    ``key``. A checkpoint that cannot be read, verified or restored is set aside
    (:func:`set_aside`) and the slab starts from step 0: never a crash loop. One of other
    settings (or other training code) is left for the next save to replace."""
    if not path.exists():
        return False
    try:
        payload = read(path)
    except Exception as error:  # noqa: BLE001 -- any unreadable file: start afresh
        set_aside(path, f"{type(error).__name__}: {error}")
        return False
    if payload.get("format") != FORMAT or payload.get("fingerprint") != key:
        log.warning("checkpoint %s belongs to other settings or code: starting from step 0",
                    path)
        return False
    try:
        restored = _restored(payload, state)
    except Exception as error:  # noqa: BLE001 -- a payload that does not fit this slab
        set_aside(path, f"cannot restore it ({type(error).__name__}: {error})")
        return False
    for name, value in restored.items():
        setattr(state, name, value)
    state.resumed_from = state.step
    return True


def _restored(payload: dict, state: SlabState) -> dict:
    """The state's fields from a verified payload, every part checked against the fresh
    state before anything of it is replaced (a failure leaves ``state`` untouched)."""
    device = state.diverged_step.device
    tensors = _to(payload["tensors"], device)
    _check_like(tensors, state.tensors, "tensors")
    gens = []
    for fresh, saved in zip(state.gens, payload["gens"], strict=True):
        gen = torch.Generator(device=fresh.device)
        gen.set_state(saved)  # raises on a garbage RNG state
        gens.append(gen)
    step = int(payload["step"])
    trace = {k: v.clone() for k, v in state.trace.items()}
    for k, v in payload["trace"].items():
        trace[k][:step] = v.to(device)
    diverged = payload["diverged_step"].to(device)
    _check_like(diverged, state.diverged_step, "diverged_step")
    return dict(tensors=tensors, gens=gens, trace=trace, history=payload["history"],
                diverged_step=diverged, step=step, epoch=int(payload["epoch"]),
                epoch_pos=int(payload["epoch_pos"]),
                train_seconds=float(payload["train_seconds"]))


def _check_like(saved, fresh, where: str) -> None:
    """Same structure, shapes and dtypes as the fresh state's."""
    if isinstance(fresh, torch.Tensor):
        if not isinstance(saved, torch.Tensor) or saved.shape != fresh.shape \
                or saved.dtype != fresh.dtype:
            raise ValueError(f"{where} does not fit this slab")
    elif isinstance(fresh, dict):
        if not isinstance(saved, dict) or set(saved) != set(fresh):
            raise ValueError(f"{where} does not fit this slab")
        for k in fresh:
            _check_like(saved[k], fresh[k], f"{where}.{k}")
    elif isinstance(fresh, (tuple, list)):
        if not isinstance(saved, (tuple, list)) or len(saved) != len(fresh):
            raise ValueError(f"{where} does not fit this slab")
        for a, b in zip(saved, fresh):
            _check_like(a, b, where)


def _to(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return type(obj)(_to(v, device) for v in obj)
    return obj
