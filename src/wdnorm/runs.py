"""One run (slab member) on disk: its metrics, written atomically, and read back.

Files of a run directory (see :mod:`wdnorm.layout`): ``metrics.json``, ``trace.npz``,
``model.pt``, ``provenance.json``, then ``MANIFEST.sha256`` last -- a run directory
without a manifest is incomplete by definition. A slab's ``slab.json`` is written after
all of its runs.
"""

from __future__ import annotations

import io
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from . import fileio, models
from .engine import SlabConfig, SlabResult
from .layout import SLAB_MANIFEST

FINAL_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc")


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def final_metrics(history: dict, k: int, n_classes: int, diverged: bool) -> dict:
    """The end-of-training estimate: each metric averaged over the last ``k``
    evaluations (one snapshot of a noisy process is not an estimate). A diverged run's
    network outputs NaN, whose argmax is class 0: its accuracy is counted as chance
    (1/n_classes) and its losses as missing -- an outcome, not a dropped run. Metrics of
    a split the run did not have (no validation split) are None."""
    out = {}
    for key in FINAL_KEYS:
        values = np.asarray(history.get(key, [math.nan])[-k:], dtype=np.float64)
        measured = key != "val_acc" or not np.isnan(values).all()  # no validation split
        if diverged:
            out[key] = 1.0 / n_classes if key.endswith("acc") and measured else None
        else:
            out[key] = _finite_or_none(values.mean())
    for kind in ("loss", "acc"):
        a, b = out[f"test_{kind}"], out[f"train_{kind}"]
        out[f"gen_gap_{kind}"] = None if a is None or b is None else (
            b - a if kind == "acc" else a - b)
    return out


def min_var_ratio(history: dict, k: int) -> float | None:
    """Smallest, over the norms, of the mean over the last ``k`` evaluations of the
    pre-norm variance over ε (None for architectures without norms)."""
    ratios = np.asarray(history["var_ratio"][-k:], dtype=np.float64)
    if ratios.size == 0 or ratios.shape[-1] == 0:
        return None
    return _finite_or_none(np.nanmin(ratios.mean(0)))


#: A squared parameter norm beyond this is an overflowing run, finite or not.
NORM_OVERFLOW = 1e20


def broken(final: dict, n_classes: int, sq_norm_last) -> str | None:
    """Why a run whose loss stayed finite is broken all the same, or None: its final
    training loss is not finite or is above chance level (ln C: worse than predicting
    the uniform distribution), or a layer's squared norm overflows."""
    loss = final.get("train_loss")
    if loss is None or not math.isfinite(loss):
        return "final training loss not finite"
    if loss > math.log(n_classes):
        return f"final training loss {loss:.3g} above chance level ln {n_classes}"
    sq = np.asarray(sq_norm_last, dtype=np.float64)
    if sq.size and not (np.isfinite(sq).all() and sq.max() < NORM_OVERFLOW):
        return f"a layer's squared norm overflows ({sq.max():.3g})"
    return None


def member_status(diverged: bool, var_ratio: float | None, collapse_ratio: float,
                  broken_because: str | None = None) -> str:
    """``diverged`` (a non-finite loss, frozen from then on, or a run :func:`broken`
    otherwise), ``collapsed`` (the norms' input variance fell into the ε floor: below
    ``collapse_ratio`` × ε, where the output scale is already ≥ ~5% off the scale-free
    one) or ``ok``."""
    if diverged or broken_because:
        return "diverged"
    if var_ratio is not None and var_ratio < collapse_ratio:
        return "collapsed"
    return "ok"


def member_metrics(result: SlabResult, i: int, *, dataset: str, optimiser: str,
                   final_evals: int, collapse_ratio: float, grid_lr: float | None = None,
                   n_train: int | None = None) -> dict:
    """metrics.json of member ``i``; ``grid_lr``: the optimiser's grid learning rate (its
    ``lr``; members at its ``lr_grid`` or a matched pair's lr differ from it);
    ``n_train``: the training rows it trained on."""
    cfg, member = result.cfg, result.members[i]
    history = result.member_history(i)
    diverged = int(result.diverged_step[i])
    k = min(final_evals, len(history["step"]))
    ratio = min_var_ratio(history, k)
    final = final_metrics(history, k, cfg.n_classes, diverged >= 0)
    last = final_metrics(history, 1, cfg.n_classes, diverged >= 0)
    k_final = result.trace["k"][-1, i] if "k" in result.trace else None
    sq_last = result.trace["sq_norm"][-1, i] if "sq_norm" in result.trace else []
    why_broken = None if diverged >= 0 else broken(final, cfg.n_classes, sq_last)
    return {
        "run_id": member.run_id, "kind": member.kind, "dataset": dataset,
        "optimiser": optimiser, "arch": cfg.arch, "lr": member.lr, "grid_lr": grid_lr,
        "weight_decay": member.weight_decay, "seed": member.seed, "slab": cfg.to_dict(),
        "lr_schedule": member.lr_schedule, "lr_decay_fraction": member.lr_decay_fraction,
        "protocol": member.protocol, "n_train": n_train,
        "reference": None if member.kind == "grid" else member.reference.run_id,
        "status": member_status(diverged >= 0, ratio, collapse_ratio, why_broken),
        "broken": why_broken,
        "diverged_step": diverged if diverged >= 0 else None,
        "steps": int(result.trace["loss"].shape[0]),
        "layers": models.layer_names(cfg.arch, cfg.depth), "n_classes": cfg.n_classes,
        "history": history, "final": final, "final_last": last, "final_evals": k,
        "min_var_ratio": ratio,
        "k_final": None if k_final is None or member.kind == "grid" else float(k_final),
        "eps_final": float(result.eps_final[i]),
        "compiled": result.compiled, "resumed_from_step": result.resumed_from,
        "slab_train_seconds": result.train_seconds, "slab_size": len(result.members),
    }


def member_trace(result: SlabResult, i: int) -> dict[str, np.ndarray]:
    trace = result.member_trace(i)
    if result.members[i].kind not in ("exact", "schedule"):
        trace.pop("k", None)
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


def write_slab_manifest(slab_dir: str | Path, *, dataset: str, optimiser: str, arch: str,
                        run_dirs: list[Path]) -> Path:
    """``slab.json``: the slab's members and the sha256 of each run's manifest. Written
    after every run directory, so its presence means the whole slab is complete."""
    slab_dir = Path(slab_dir)
    manifests = {d.name: fileio.sha256_file(d / fileio.MANIFEST_NAME) for d in run_dirs}
    return fileio.write_json(slab_dir / SLAB_MANIFEST, {
        "dataset": dataset, "optimiser": optimiser, "arch": arch,
        "members": [d.name for d in run_dirs], "manifests": manifests})


def slab_run_dirs(slab_json: str | Path) -> list[Path]:
    """The run directories a ``slab.json`` lists (siblings of the file)."""
    slab_json = Path(slab_json)
    return [slab_json.parent / name for name in fileio.read_json(slab_json)["members"]]


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
    cfg = SlabConfig.from_dict(metrics["slab"])
    if metrics.get("eps_final") is not None:  # an exact equivalent ends at ε/k_T²
        cfg = replace(cfg, norm_eps=float(metrics["eps_final"]))
    net = cfg.build_model()
    state = torch.load(Path(run_dir) / "model.pt", weights_only=True)
    net.load_state_dict(state)
    return net.eval()
