"""Claim C1's practical side: how far down can an invariant layer be scaled before the
norm's ε shows in the logits?

With ε in the denominator, LN_ε(a·z) = (z − μ)/sqrt(Var(z) + ε/a²): once a²·Var(z) ≲ ε
the output is no longer normalised at all (an O(1) change below
``a_eps = sqrt(ε / median Var(z))``), and to first order the relative change is
δ(a) ≈ ε·(1/a² − 1)/(2·Var(z)) long before that -- so at a tight tolerance the floor sits
far above ``a_eps``. ε, not rounding, sets the floor: float32 and float64 floors agree.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from .. import archs
from ..models import MLP
from . import transforms as tf
from .symmetry_map import DEFAULT_TOL, predicted_invariant

DEFAULT_FLOOR_SCALES = tuple(np.logspace(-8, 0, 33))


def norm_input_variance(model: MLP, x: torch.Tensor, layer_index: int) -> np.ndarray:
    """Variances of the input of the norm that makes layer ``layer_index`` invariant
    (LayerNorm: per sample over features; BatchNorm: per feature over the batch). Empty
    when the layer is not predicted invariant on its own (or for the joint group)."""
    record = archs.get(model.arch)
    norm = tf.block_norm(model, layer_index) if layer_index >= 0 else None
    if norm is None or not record.layer_invariant(layer_index, model.depth):
        return np.array([])
    seen = []
    handle = norm.register_forward_pre_hook(lambda mod, inp: seen.append(inp[0].detach()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    over = 0 if record.norm == "batch" else -1
    return seen[0].double().var(dim=over, unbiased=False).cpu().numpy()


def _floor_in_dtype(base64: MLP, x64: torch.Tensor, dtype: torch.dtype, indices, mode,
                    scales: np.ndarray, tol: float, refine: int):
    """Scan ``scales`` (descending) in ``dtype``; return (floor row, curve rows)."""
    base, xd = copy.deepcopy(base64).to(dtype), x64.to(dtype)
    ref = tf.logits(base, xd, mode)

    def rel_at(a: float) -> float:
        return tf.rel_change(tf.logits(base, xd, mode, indices, a), ref)

    curve, last_ok, first_fail = [], float("nan"), None
    for a in scales:
        rel = rel_at(float(a))
        curve.append(dict(dtype=tf.dtype_name(dtype), scale=float(a), rel_change=rel,
                          invariant=rel < tol))
        if first_fail is None:
            if rel < tol:
                last_ok = float(a)
            else:
                first_fail = float(a)
    floor = last_ok
    if first_fail is not None and not math.isnan(last_ok) and refine:
        lo, hi = math.log(first_fail), math.log(last_ok)  # fails at lo, holds at hi
        for _ in range(refine):
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if rel_at(math.exp(mid)) < tol else (mid, hi)
        floor = math.exp(hi)
    row = dict(dtype=tf.dtype_name(dtype), floor=floor, grid_floor=last_ok,
               reached_grid_end=first_fail is None)
    return row, curve


def epsilon_floor(model: MLP, x: torch.Tensor, layer_index: int, tol: float = DEFAULT_TOL,
                  scales: Sequence[float] = DEFAULT_FLOOR_SCALES,
                  dtypes: Sequence[torch.dtype] = (torch.float32, torch.float64),
                  mode: str | None = None, refine: int = 20) -> dict:
    """The ε floor of layer ``layer_index`` (or the joint group, ``-1``), which must be a
    predicted symmetry in ``mode`` (default: ``eval_rescaled`` for BatchNorm, else
    ``eval``). Scans ``scales`` downwards with the model's own ε, once per dtype:
    ``grid_floor`` is the smallest scale down to which every scanned scale keeps
    rel_change < tol, ``floor`` refines it by ``refine`` bisection steps on log a; a scan
    that never fails has ``reached_grid_end`` and ``floor = min(scales)``.
    ``first_order_floor = sqrt(ε / (2·tol·min Var(z) + ε))`` is where δ(a) of the sample
    with the smallest Var(z) reaches tol (for the last hidden layer it tracks the logits
    closely; an earlier layer's change is partly normalised away by the next norm, so
    there it is an upper bound).

    Returns ``arch, layer, layer_index, mode, tol, norm_eps, var_z_median, var_z_min,
    a_eps, first_order_floor``, ``floor`` and ``reached_grid_end`` ({dtype: value}),
    ``floors`` (DataFrame per dtype) and ``curve`` (DataFrame per dtype and scale, with
    the first-order prediction)."""
    depth, n_hidden = model.depth, tf.n_hidden(model)
    mode = mode or ("eval_rescaled" if archs.get(model.arch).norm == "batch" else "eval")
    transform = "joint" if layer_index == -1 else "layer"
    if layer_index != -1 and not 0 <= layer_index < n_hidden:
        raise ValueError(f"layer_index must be -1 or in [0, {n_hidden}), got {layer_index}")
    if not predicted_invariant(model.arch, transform, layer_index, mode, depth):
        raise ValueError(f"{model.arch!r}: {transform} {layer_index} is not a predicted "
                         f"symmetry in mode {mode!r}; there is no ε floor to measure")
    indices = list(range(n_hidden)) if layer_index == -1 else [layer_index]
    name = "joint" if layer_index == -1 else archs.get(model.arch).layer_names(depth)[layer_index]
    x64 = x.detach().to(device=next(model.parameters()).device, dtype=torch.float64)
    base64 = copy.deepcopy(model).double()
    if tf.needs_warmup(base64):
        tf.warm_batchnorms(base64, x64)
    var = norm_input_variance(copy.deepcopy(base64).eval(), x64, layer_index)
    eps = tf.model_eps(base64)
    med, vmin = (float(np.median(var)), float(var.min())) if var.size else (math.nan,) * 2
    ordered = np.sort(np.asarray(scales, dtype=float))[::-1]
    floors, curve = [], []
    for dtype in dtypes:
        row, rows = _floor_in_dtype(base64, x64, dtype, indices, mode, ordered, tol, refine)
        floors.append(row)
        curve.extend(dict(r, arch=model.arch, layer=name,
                          first_order=eps * (1 / r["scale"] ** 2 - 1) / (2 * vmin))
                     for r in rows)
    floors_df = pd.DataFrame(floors)
    return dict(
        arch=model.arch, layer=name, layer_index=layer_index, mode=mode, tol=tol,
        norm_eps=eps, var_z_median=med, var_z_min=vmin,
        a_eps=math.sqrt(eps / med) if var.size else math.nan,
        first_order_floor=math.sqrt(eps / (2 * tol * vmin + eps)) if var.size else math.nan,
        floor=dict(zip(floors_df["dtype"], floors_df["floor"])),
        reached_grid_end=dict(zip(floors_df["dtype"], floors_df["reached_grid_end"])),
        floors=floors_df, curve=pd.DataFrame(curve))
