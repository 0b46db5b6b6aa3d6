"""The whole mutable state of a slab in training, and its atomic checkpoint.

A checkpoint holds everything the rest of the run depends on -- parameters, optimiser
moments, BN buffers, the batch-order generators, the trace and history so far, the step
-- so a resumed slab continues bit for bit where it stopped (same device and threads).
It is taken at epoch boundaries only: there the batch generators are between epochs
and nothing of the current epoch's order needs saving.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import fileio

log = logging.getLogger("wdnorm")
FORMAT = 2  # 2: optimiser state as one tuple per parameter (opt_state)


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


def fingerprint(*parts) -> str:
    """What a checkpoint must match to be resumed: the slab's settings, members, number
    of steps and data identity. Anything else means another run: start afresh."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def save(path: Path, state: SlabState, key: str) -> None:
    payload = {
        "format": FORMAT, "fingerprint": key, "tensors": state.tensors,
        "gens": [g.get_state() for g in state.gens],
        "trace": {k: v[: state.step] for k, v in state.trace.items()},
        "history": state.history, "diverged_step": state.diverged_step,
        "step": state.step, "epoch": state.epoch, "train_seconds": state.train_seconds,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    fileio.write_bytes(path, buffer.getvalue())


def load_into(path: Path, state: SlabState, key: str) -> bool:
    """Restore ``state`` from the checkpoint at ``path`` if it exists and matches ``key``;
    a stale or unreadable checkpoint is left for the next save to replace."""
    if not path.exists():
        return False
    try:
        payload = torch.load(path, weights_only=False, map_location="cpu")
    except Exception as error:  # noqa: BLE001 -- a torn or foreign file: start afresh
        log.warning("checkpoint %s unreadable (%s): starting from step 0", path, error)
        return False
    if payload.get("format") != FORMAT or payload.get("fingerprint") != key:
        log.warning("checkpoint %s belongs to other settings: starting from step 0", path)
        return False
    device = state.diverged_step.device
    state.tensors = _to(payload["tensors"], device)
    for gen, saved in zip(state.gens, payload["gens"]):
        gen.set_state(saved)
    step = payload["step"]
    for k, v in payload["trace"].items():
        state.trace[k][:step] = v.to(device)
    state.history = payload["history"]
    state.diverged_step = payload["diverged_step"].to(device)
    state.step, state.epoch = step, payload["epoch"]
    state.train_seconds = payload["train_seconds"]
    state.resumed_from = step
    return True


def _to(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return type(obj)(_to(v, device) for v in obj)
    return obj
