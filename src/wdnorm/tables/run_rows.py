"""Rows of ``runs.csv``: one per member of a slab, every kind (grid, exact, schedule,
mimic), every status (ok, diverged, collapsed).

End-of-training numbers are the run's own ``final`` block (the mean of its last K
evaluations); a diverged run keeps them as written -- accuracies 1/n_classes, the
accuracy of a network that outputs NaN, and null (NaN) losses -- because a divergence is
an outcome of the setting, not missing data. Non-grid members are also compared step by
step with the grid run they stand for (``loss_track_steps``, ``loss_rel_diff_100``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..frames import first_exceeding

RUNS_COLUMNS = [
    "dataset", "optimiser", "arch", "kind", "run_id", "reference", "lr", "grid_lr",
    "weight_decay", "seed", "algorithm", "momentum", "beta1", "decay_scope", "status",
    "diverged_step", "steps", "n_classes", "train_loss", "train_acc", "val_loss", "val_acc",
    "test_loss", "test_acc", "gen_gap_loss", "gen_gap_acc", "test_acc_last", "min_var_ratio",
    "hidden_penalty", "head_sq_norm", "is_matched_pair", "loss_track_steps",
    "loss_rel_diff_100",
]
FINAL_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc",
              "gen_gap_loss", "gen_gap_acc")
#: A non-grid member tracks its reference while |loss − loss_ref| / loss_ref ≤ this.
LOSS_TRACK_TOL = 1e-3
#: ``loss_rel_diff_100``: the largest relative loss difference over these first steps.
LOSS_DIFF_STEPS = 100


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def is_matched(lr: float, weight_decay: float, matched_pairs: Iterable) -> bool:
    """Whether (lr, weight_decay) is one of claim C5's matched-ηλ pairs."""
    return any(math.isclose(lr, float(a), rel_tol=1e-9) and
               math.isclose(weight_decay, float(b), rel_tol=1e-9, abs_tol=1e-15)
               for a, b in (matched_pairs or []))


def optimiser_fields(metrics: dict) -> dict:
    opt = metrics.get("slab", {}).get("optimiser", {})
    return dict(algorithm=opt.get("algorithm"), momentum=float(opt.get("momentum", 0.0)),
                beta1=float(opt.get("beta1", 0.9)))


def run_identity(metrics: dict, matched_pairs: Iterable = ()) -> dict:
    """The columns every per-run table starts with. ``is_matched_pair`` marks grid runs
    only: an equivalent at the same (lr, λ) stands for such a run but is not one."""
    lr, wd = float(metrics["lr"]), float(metrics["weight_decay"])
    kind = metrics.get("kind", "grid")
    return dict(dataset=metrics["dataset"], optimiser=metrics["optimiser"],
                arch=metrics["arch"], kind=kind, run_id=metrics["run_id"],
                reference=metrics.get("reference"), lr=lr,
                grid_lr=float(metrics.get("grid_lr") or "nan"), weight_decay=wd,
                seed=int(metrics["seed"]), **optimiser_fields(metrics),
                status=metrics["status"],
                is_matched_pair=kind == "grid" and is_matched(lr, wd, matched_pairs))


def relative_loss_difference(loss: np.ndarray, ref_loss: np.ndarray) -> np.ndarray:
    """|loss − loss_ref| / loss_ref per step over the common length; infinite where either
    loss is not finite (a diverged member does not track anything)."""
    n = min(len(loss), len(ref_loss))
    a, b = (np.asarray(v[:n], dtype=np.float64) for v in (loss, ref_loss))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(a - b) / np.abs(b)
    rel[~np.isfinite(rel)] = np.inf
    return rel


def loss_tracking(loss: np.ndarray, ref_loss: np.ndarray) -> dict:
    """``loss_track_steps``: the first step whose relative loss difference exceeds
    :data:`LOSS_TRACK_TOL` (the number of compared steps when none does);
    ``loss_rel_diff_100``: the largest one over the first :data:`LOSS_DIFF_STEPS` steps."""
    rel = relative_loss_difference(loss, ref_loss)
    head = rel[:LOSS_DIFF_STEPS]
    return dict(loss_track_steps=first_exceeding(rel, LOSS_TRACK_TOL),
                loss_rel_diff_100=float(head.max()) if head.size else float("nan"))


def run_row(metrics: dict, trace: dict, matched_pairs: Iterable = (),
            reference_loss: np.ndarray | None = None) -> dict:
    """One row of runs.csv. Penalties come from the trace's last squared norms (after the
    last step; NaN for a diverged run, whose parameters are those of its last finite
    step or worse). ``reference_loss``: the per-step loss of the grid run a non-grid
    member stands for (ignored for grid runs, whose tracking columns are NaN)."""
    row = run_identity(metrics, matched_pairs)
    final, last = metrics.get("final") or {}, metrics.get("final_last") or {}
    row.update(decay_scope=metrics.get("slab", {}).get("decay_scope"),
               diverged_step=metrics.get("diverged_step"), steps=int(metrics["steps"]),
               n_classes=int(metrics.get("n_classes") or metrics["slab"]["n_classes"]),
               **{k: _number(final.get(k)) for k in FINAL_KEYS},
               test_acc_last=_number(last.get("test_acc")),
               min_var_ratio=_number(metrics.get("min_var_ratio")))
    hidden = head = float("nan")
    sq_last = np.asarray(trace["sq_norm"], dtype=np.float64)[-1]
    if row["status"] != "diverged" and np.isfinite(sq_last).all():
        hidden, head = float(sq_last[:-1].sum()), float(sq_last[-1])
    row.update(hidden_penalty=hidden, head_sq_norm=head,
               loss_track_steps=float("nan"), loss_rel_diff_100=float("nan"))
    if row["kind"] != "grid" and reference_loss is not None:
        row.update(loss_tracking(trace["loss"], reference_loss))
    return row
