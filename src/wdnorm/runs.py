"""One run (slab member) on disk: write it atomically, read it back.

Files of a run directory (see :mod:`wdnorm.layout`): ``metrics.json``, ``trace.npz``,
``model.pt``, ``provenance.json``, then ``MANIFEST.sha256`` last -- a run directory
without a manifest is incomplete by definition.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from . import fileio, models
from .engine import SlabConfig, SlabResult

def member_metrics(result: SlabResult, i: int, *, dataset: str, optimiser: str,
                   kind: str = "runs", extra: dict | None = None) -> dict:
    cfg, member = result.cfg, result.members[i]
    history = result.member_history(i)
    diverged = int(result.diverged_step[i])
    final = {k: history[k][-1] for k in ("train_loss", "train_acc", "test_loss", "test_acc")}
    final["gen_gap_loss"] = final["test_loss"] - final["train_loss"]
    final["gen_gap_acc"] = final["train_acc"] - final["test_acc"]
    return {
        "run_id": member.run_id, "kind": kind, "dataset": dataset, "optimiser": optimiser,
        "arch": cfg.arch, "lr": member.lr, "weight_decay": member.weight_decay,
        "seed": member.seed, "slab": cfg.to_dict(),
        "status": "diverged" if diverged >= 0 else "ok",
        "diverged_step": diverged if diverged >= 0 else None,
        "steps": int(result.trace["loss"].shape[0]),
        "layers": models.layer_names(cfg.arch, cfg.depth),
        "history": history, "final": final,
        "slab_train_seconds": result.train_seconds, "slab_size": len(result.members),
        **(extra or {}),
    }


def member_trace(result: SlabResult, i: int) -> dict[str, np.ndarray]:
    trace = result.member_trace(i)
    if "sq_norm" in trace:  # one array [T+1, L]: the norm before every step and at the end
        trace["sq_norm"] = np.concatenate([trace["sq_norm"], trace.pop("sq_norm_end")])
    return {k: v.astype(np.float32) for k, v in trace.items()}


def write_run(run_dir: str | Path, metrics: dict, trace: dict[str, np.ndarray],
              state_dict: dict[str, torch.Tensor], provenance: dict) -> Path:
    run_dir = Path(run_dir)
    fileio.write_json(run_dir / "metrics.json", metrics)
    fileio.atomic_write(run_dir / "trace.npz", lambda tmp: _save_npz(tmp, trace))
    fileio.atomic_write(run_dir / "model.pt", lambda tmp: _save_torch(tmp, state_dict))
    fileio.write_json(run_dir / "provenance.json", provenance)
    fileio.write_manifest(run_dir)
    return run_dir


def _save_npz(path: Path, arrays: dict) -> None:
    with open(path, "wb") as handle:  # a handle: np.savez would append ".npz" to a name
        np.savez(handle, **arrays)


def _save_torch(path: Path, obj) -> None:
    buffer = io.BytesIO()  # a buffer: torch names zip entries after a file name it is given
    torch.save(obj, buffer)
    path.write_bytes(buffer.getvalue())


def read_metrics(run_dir: str | Path) -> dict:
    return fileio.read_json(Path(run_dir) / "metrics.json")


def read_trace(run_dir: str | Path) -> dict[str, np.ndarray]:
    with np.load(Path(run_dir) / "trace.npz") as npz:
        return {k: npz[k] for k in npz.files}


def load_model(run_dir: str | Path, metrics: dict | None = None) -> models.MLP:
    metrics = metrics or read_metrics(run_dir)
    net = SlabConfig.from_dict(metrics["slab"]).build_model()
    state = torch.load(Path(run_dir) / "model.pt", weights_only=True)
    net.load_state_dict(state)
    return net.eval()
