"""Claim C2: how much of a trained net's hidden-layer L2 penalty can symmetry transforms
remove with the train loss unchanged?

Three methods, chosen by what the architecture has (docs/claims.md):

* ``invariant_shrink`` -- invariant groups (the layers invariant on their own, else the
  joint group, as the exact symmetry map measures them): every group shrinks by one
  common factor a; bisection on log a finds the smallest a that keeps the loss. It runs
  in the model's own dtype and ε, because that floor is the one that matters in practice.
* ``relu_rebalance`` -- no invariant group but a positive-rescaling one
  (:mod:`wdnorm.probes.rebalance`): minimises the *total* penalty, since the hidden
  penalty alone could be emptied into the head.
* ``none`` -- neither: ratio 1.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from ..models import MLP
from . import transforms as tf
from .rebalance import rebalance, rebalanced_parameters
from .symmetry_map import invariant_groups

CURVE_COLUMNS = ["arch", "method", "scale", "penalty", "total_penalty", "rel_loss_change"]
DEFAULT_CURVE_SCALES = tuple(np.logspace(-12, 0, 49))


def total_penalty(model: MLP) -> float:
    """Σ‖p‖² over every parameter (hidden layers, head, norm γ/β): what decay scope
    ``all`` penalises, and where penalty moved out of the hidden layers ends up."""
    with torch.no_grad():
        return float(sum(p.double().square().sum() for p in model.parameters()))


def hidden_penalty(model: MLP) -> float:
    with torch.no_grad():
        return float(model.hidden_penalty())


def group_penalty(model: MLP, indices: Sequence[int]) -> float:
    """Σ ‖W‖² + ‖b‖² over linear layers ``indices`` (NaN for none)."""
    if not indices:
        return float("nan")
    with torch.no_grad():
        return float(sum(model.linears[i].weight.double().square().sum()
                         + model.linears[i].bias.double().square().sum() for i in indices))


@torch.no_grad()
def train_loss(model: MLP, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean cross-entropy in eval mode, in the model's own dtype."""
    was_training = model.training
    model.eval()
    p = next(model.parameters())
    loss = F.cross_entropy(model(x.to(device=p.device, dtype=p.dtype)), y.to(p.device))
    model.train(was_training)
    return float(loss)


def _smallest_scale(rel_loss, rel_tol: float, lo: float, n_bisect: int) -> tuple[float, bool]:
    """Smallest a in [lo, 1] with rel_loss(a) ≤ rel_tol, by bisection on log a (assuming
    the violation grows as a falls, as the ε term ε/a² does); and whether it stopped
    above ``lo`` (``eps_limited``: with ε = 0 the loss would not move at all)."""
    if rel_loss(lo) <= rel_tol:
        return lo, False
    log_lo, log_hi = math.log(lo), 0.0  # fails at log_lo, holds at log_hi (a = 1)
    for _ in range(n_bisect):
        mid = 0.5 * (log_lo + log_hi)
        if rel_loss(math.exp(mid)) <= rel_tol:
            log_hi = mid
        else:
            log_lo = mid
    return math.exp(log_hi), True


def _outcome(work: MLP, after: MLP, x, y, method: str, scale: float, eps_limited: bool,
             shrunk: list[str], rel_tol: float) -> dict:
    """The comparison of ``work`` (the trained net) and ``after`` (its transform)."""
    loss0, loss1 = train_loss(work, x, y), train_loss(after, x, y)
    pen0, pen1 = hidden_penalty(work), hidden_penalty(after)
    tot0, tot1 = total_penalty(work), total_penalty(after)
    rel = abs(loss1 - loss0) / abs(loss0)
    return dict(arch=work.arch, method=method, penalty_before=pen0, penalty_after=pen1,
                ratio=pen1 / pen0 if pen0 else float("nan"), scale=scale,
                loss_before=loss0, loss_after=loss1, rel_loss_change=rel,
                loss_ok=rel <= rel_tol, eps_limited=eps_limited, total_penalty_before=tot0,
                total_penalty_after=tot1, total_ratio=tot1 / tot0 if tot0 else float("nan"),
                shrunk=",".join(shrunk))


def _invariant_shrink(work: MLP, x, y, indices, rel_tol, lo, n_bisect, curve_scales) -> dict:
    loss0 = train_loss(work, x, y)

    def rel_loss(a: float) -> float:
        with tf.scaled(work, indices, a, rescale_bn=True) as m:
            return abs(train_loss(m, x, y) - loss0) / abs(loss0)

    scale, eps_limited = _smallest_scale(rel_loss, rel_tol, lo, n_bisect)
    curve = []
    for a in curve_scales:
        with tf.scaled(work, indices, float(a), rescale_bn=True) as m:
            curve.append(dict(arch=work.arch, method="invariant_shrink", scale=float(a),
                              penalty=hidden_penalty(m), total_penalty=total_penalty(m),
                              rel_loss_change=abs(train_loss(m, x, y) - loss0) / abs(loss0)))
    shrunk = [n for i in indices for n in tf.layer_params(i)]
    out = _outcome(work, tf.shrink(work, indices, scale), x, y, "invariant_shrink", scale,
                   eps_limited, shrunk, rel_tol)
    return dict(out, curve=pd.DataFrame(curve, columns=CURVE_COLUMNS))


def remove_penalty(model: MLP, x_train: torch.Tensor, y_train: torch.Tensor,
                   groups: Sequence[int] | None = None, rel_tol: float = 1e-4,
                   lo: float = 1e-12, n_bisect: int = 40,
                   curve_scales: Sequence[float] = DEFAULT_CURVE_SCALES,
                   granularity: str = "unit", rebalance_iter: int = 500) -> dict:
    """C2 for one net (see the module docstring for the methods). ``groups``: the layer
    indices to shrink; by default measured by
    :func:`~wdnorm.probes.symmetry_map.invariant_groups` (``group_kind`` "layer", "joint"
    or "none"; "given" when passed). The model is in eval mode and, for BatchNorm,
    running statistics move with the weights. The bisection runs on log a over [lo, 1].

    Returns ``arch, method, group_kind, penalty_before, penalty_after, ratio, scale`` (NaN
    for a rebalance), ``loss_before, loss_after, rel_loss_change, loss_ok, eps_limited,
    total_penalty_before, total_penalty_after, total_ratio, shrunk`` (comma-joined
    parameter names) and ``curve`` (DataFrame, :data:`CURVE_COLUMNS`, on ``curve_scales``;
    empty unless shrinking). The caller's model is never modified."""
    work = copy.deepcopy(model).eval()
    p0 = next(work.parameters())
    x = x_train.detach().to(device=p0.device, dtype=p0.dtype)
    y = y_train.detach().to(p0.device)
    if groups is None:
        indices, kind = invariant_groups(work, x)
    else:
        indices, kind = sorted(int(g) for g in groups), "given"
    if indices:
        out = _invariant_shrink(work, x, y, indices, rel_tol, lo, n_bisect, curve_scales)
    elif tf.record(work).rebalance is not None:
        after, _ = rebalance(work, granularity=granularity, max_iter=rebalance_iter)
        out = _outcome(work, after, x, y, "relu_rebalance", float("nan"), False,
                       rebalanced_parameters(work, granularity), rel_tol)
    else:
        out = _outcome(work, copy.deepcopy(work), x, y, "none", 1.0, False, [], rel_tol)
    out.setdefault("curve", pd.DataFrame(columns=CURVE_COLUMNS))
    return dict(out, group_kind=kind)
