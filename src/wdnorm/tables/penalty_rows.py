"""Rows of ``penalty.csv`` (claim C2, one per grid run) and ``penalty_curve.csv`` (the
curve run only), from the trained ``model.pt`` of each run.

Settings that keep a slab to seconds on one core (measured on the default grid):

* the invariant groups are measured on every run's own trained model (a run with dead
  ReLUs can lose or gain a symmetry its architecture predicts: no run speaks for another);
* the train loss is evaluated on at most :data:`PENALTY_MAX_ROWS` training rows (a fixed
  seeded subset; the full set when smaller);
* the bisection on log a takes :data:`PENALTY_BISECT` steps on [1e-4, 1] (the scale to
  0.06 %, finer than any table or figure resolves), and runs again on [1e-12, 1] only
  when a = 1e-4 still keeps the loss (trained float32 nets with ε = 1e-5 stop far above);
* the ReLU rebalance runs :data:`REBALANCE_ITER` L-BFGS iterations: the minimised total
  penalty is then within 1e-4 relative of 500 iterations' (the rest is dead neurons'
  factors drifting to ±inf) at a tenth of the cost.

Every shrink is measured twice: with the model's own ε (the practical floor) and on a
copy whose norms have ε → 0 (the ideal symmetry, ``*_eps0`` columns). Diverged runs get a
row with NaN numbers; collapsed runs are measured like healthy ones.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import runs
from ..models import MLP
from ..probes import transforms as tf
from ..probes.penalty import group_penalty, remove_penalty
from ..probes.symmetry_map import invariant_groups
from .run_rows import run_identity

PENALTY_COLUMNS = [
    "dataset", "optimiser", "arch", "run_id", "lr", "weight_decay", "seed", "status",
    "is_matched_pair", "method", "group_kind", "groups", "penalty_before", "penalty_after",
    "ratio", "scale", "loss_before", "loss_after", "rel_loss_change", "loss_ok",
    "eps_limited", "total_penalty_before", "total_penalty_after", "total_ratio",
    "ratio_eps0", "scale_eps0", "rel_loss_change_eps0", "eps_limited_eps0",
    "norm_eps", "rel_tol", "loss_rows", "group_penalty_before", "group_ratio",
    "group_ratio_eps0",
]
PENALTY_CURVE_COLUMNS = [
    "dataset", "optimiser", "arch", "run_id", "variant", "method", "scale", "penalty",
    "total_penalty", "rel_loss_change",
]
IDENTITY_KEYS = ("dataset", "optimiser", "arch", "run_id", "lr", "weight_decay", "seed",
                 "status", "is_matched_pair")
#: Loss change a symmetry transform may cause, relative.
PENALTY_REL_TOL = 1e-4
PENALTY_BISECT = 14
REBALANCE_ITER = 50
PENALTY_MAX_ROWS = 4096
PENALTY_ROWS_SEED = 0
#: The scales of penalty_curve.csv.
CURVE_SCALES = tuple(np.logspace(-12, 0, 25))


def loss_rows(x: torch.Tensor, y: torch.Tensor, max_rows: int | None,
              seed: int = PENALTY_ROWS_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """The training rows the penalty's loss is evaluated on (sorted seeded subset)."""
    if max_rows is None or len(x) <= max_rows:
        return x, y
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:max_rows]
    idx = idx.sort().values
    return x[idx], y[idx]


def curve_run(grid: list[dict], curve_weight_decay: float | None) -> str | None:
    """run_id of the penalty curve's run: weight decay = ``curve_weight_decay`` (the
    claims λ), the lowest seed, at the lr most runs of the slab share (the grid lr, not
    a matched pair's); diverged runs have no model to shrink."""
    if curve_weight_decay is None or not grid:
        return None
    grid_lr = float(pd.Series([m["lr"] for m in grid]).mode().iloc[0])
    candidates = [m for m in grid if m["status"] != "diverged"
                  and math.isclose(float(m["weight_decay"]), float(curve_weight_decay),
                                   rel_tol=1e-9)
                  and math.isclose(float(m["lr"]), grid_lr, rel_tol=1e-9)]
    return min(candidates, key=lambda m: int(m["seed"]))["run_id"] if candidates else None


def _shrink(model: MLP, x, y, groups, n_bisect: int, curve_scales) -> dict:
    """remove_penalty on [1e-4, 1] first, on [1e-12, 1] only when 1e-4 keeps the loss."""
    kw = dict(groups=groups, rel_tol=PENALTY_REL_TOL, curve_scales=curve_scales)
    res = remove_penalty(model, x, y, lo=1e-4, n_bisect=n_bisect, **kw)
    if not res["eps_limited"]:
        res = remove_penalty(model, x, y, lo=1e-12, n_bisect=n_bisect + 6, **kw)
    return res


def penalty_removal(model: MLP, x: torch.Tensor, y: torch.Tensor, groups: list[int], *,
                    curve: bool = False, n_bisect: int = PENALTY_BISECT) -> tuple[dict, list]:
    """C2 for one trained net: the row's numbers, and the curve rows (``curve`` and
    invariant ``groups`` only; ``variant`` "model_eps" and "eps0"). Without groups the
    rebalance (or ``none``) does not involve ε: the ``*_eps0`` columns repeat it."""
    scales = CURVE_SCALES if curve else ()
    if groups:
        res = _shrink(model, x, y, groups, n_bisect, scales)
        # the ideal symmetry in float64: with ε → 0 a float32 net whose weights decay
        # shrank rounds its tiny variances, which is not the symmetry failing
        ideal = copy.deepcopy(model).double()
        tf.set_eps(ideal, tf.EXACT_EPS)
        res0 = _shrink(ideal, x.double(), y, groups, n_bisect, scales)
    else:
        res = res0 = remove_penalty(model, x, y, groups=[], rel_tol=PENALTY_REL_TOL,
                                    rebalance_iter=REBALANCE_ITER)
    row = {k: v for k, v in res.items() if k not in ("curve", "shrunk", "arch", "group_kind")}
    row.update(ratio_eps0=res0["ratio"], scale_eps0=res0["scale"],
               rel_loss_change_eps0=res0["rel_loss_change"],
               eps_limited_eps0=res0["eps_limited"], norm_eps=tf.model_eps(model),
               rel_tol=PENALTY_REL_TOL)
    curves = [dict(c, variant=variant) for variant, r in (("model_eps", res), ("eps0", res0))
              for c in r["curve"].to_dict("records")] if curve and groups else []
    return row, curves


def penalty_rows(grid_runs: list[tuple[Path, dict]], x: torch.Tensor, y: torch.Tensor,
                 matched_pairs=(), curve_weight_decay: float | None = None, *,
                 n_bisect: int = PENALTY_BISECT) -> tuple[list[dict], list[dict]]:
    """Penalty and curve rows of a slab's grid runs (``(run_dir, metrics)`` pairs)."""
    curve_id = curve_run([m for _, m in grid_runs], curve_weight_decay)
    pen_rows, curve_rows = [], []
    for run_dir, metrics in grid_runs:
        ident = run_identity(metrics, matched_pairs)
        row = {k: ident[k] for k in IDENTITY_KEYS}
        if row["status"] == "diverged" or not (Path(run_dir) / "model.pt").exists():
            pen_rows.append(row)
            continue
        model = runs.load_model(run_dir, metrics)
        groups = invariant_groups(model, x)
        res, curve = penalty_removal(model, x, y, groups[0], n_bisect=n_bisect,
                                     curve=row["run_id"] == curve_id)
        # one factor a shrinks every group, so their own penalty ratio is exactly a²;
        # ``ratio`` also counts hidden layers outside the groups (resln's stem)
        has = bool(groups[0])
        pen_rows.append(dict(row, **res, group_kind=groups[1],
                             groups=",".join(map(str, groups[0])), loss_rows=len(x),
                             group_penalty_before=group_penalty(model, groups[0]),
                             group_ratio=res["scale"] ** 2 if has else math.nan,
                             group_ratio_eps0=res["scale_eps0"] ** 2 if has else math.nan))
        curve_rows.extend({**{k: row[k] for k in ("dataset", "optimiser", "arch", "run_id")},
                           **{k: v for k, v in c.items() if k != "arch"}} for c in curve)
    return pen_rows, curve_rows
