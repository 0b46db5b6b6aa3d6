"""Claim C3: for a scale-invariant weight w, ⟨w, ∇L⟩ = 0, so plain SGD at λ = 0 grows the
norm by exactly ‖w_{t+1}‖² = ‖w_t‖² + η²‖g_t‖² (docs/math.md).

The probe trains each architecture alone (plain SGD, no momentum, λ = 0, seed 0) with the
trace on and compares the logged squared norms with the identity. Like the symmetry map,
its contract columns measure the *exact* symmetry: architectures with norms run with every
norm's ε → 0, because ε > 0 leaves a radial gradient component of relative size
~ε/Var(z), which the identity's error 2⟨w,g⟩/(η‖g‖²) amplifies to ~1e-2. The same probe
with the model's ε is the ``*_model_eps`` columns.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .. import archs
from ..engine import Member, SlabConfig, train_slab
from ..frames import frame
from .transforms import EXACT_EPS

log = logging.getLogger("wdnorm")

GRADIENT_IDENTITY_COLUMNS = [
    "dataset", "arch", "layer", "layer_index", "transform", "is_head",
    "predicted_invariant", "steps", "lr", "cos_abs_max", "cos_abs_mean",
    "identity_rel_err", "identity_rel_err_median", "identity_rel_err_total",
    "norm_growth", "sq_norm_init", "sq_norm_final", "status", "norm_eps", "model_norm_eps",
]
#: The columns repeated with the model's own ε (suffix ``_model_eps``).
MODEL_EPS_COLUMNS = ("cos_abs_max", "cos_abs_mean", "identity_rel_err",
                     "identity_rel_err_median", "identity_rel_err_total", "norm_growth",
                     "status")


def identity_columns(sq: np.ndarray, grad_sq: np.ndarray, cos: np.ndarray,
                     lr: float | np.ndarray) -> dict:
    """C3 numbers for one series (``sq`` [T+1], ``grad_sq``/``cos`` [T]; ``lr`` scalar or
    [T]). ``identity_rel_err`` (max over steps) is dominated by float32 rounding of the
    logged norms when the growth η²‖g‖² is tiny against ‖w‖²; ``identity_rel_err_total``
    (sums over all steps, which telescope) is the robust test."""
    sq, grad_sq, cos = (np.asarray(a, dtype=np.float64) for a in (sq, grad_sq, cos))
    lr = np.broadcast_to(np.asarray(lr, dtype=np.float64), grad_sq.shape)
    growth, pred = np.diff(sq), lr ** 2 * grad_sq
    with np.errstate(divide="ignore", invalid="ignore"):
        per_step = np.abs(growth - pred) / pred
        total = abs(growth.sum() - pred.sum()) / pred.sum()
    per_step = per_step[np.isfinite(per_step)]
    nan = float("nan")
    return dict(
        cos_abs_max=float(np.abs(cos).max()) if cos.size else nan,
        cos_abs_mean=float(np.abs(cos).mean()) if cos.size else nan,
        identity_rel_err=float(per_step.max()) if per_step.size else nan,
        identity_rel_err_median=float(np.median(per_step)) if per_step.size else nan,
        identity_rel_err_total=float(total), norm_growth=float(sq[-1] / sq[0]),
        sq_norm_init=float(sq[0]), sq_norm_final=float(sq[-1]))


def _joint_columns(sq, gsq, cos, n_hidden: int, lr: float) -> dict:
    """The identity on the group of every hidden layer: summed squared norms, and the
    cosine Σ⟨w_l, g_l⟩ / √(Σ‖w_l‖² Σ‖g_l‖²)."""
    h = slice(0, n_hidden)
    dot = (cos[:, h] * np.sqrt(sq[:-1, h] * gsq[:, h])).sum(1)
    jsq, jgsq = sq[:, h].sum(1), gsq[:, h].sum(1)
    return identity_columns(jsq, jgsq, dot / np.sqrt(jsq[:-1] * jgsq), lr)


def probe_rows(arch: str, settings: dict, steps: int, lr: float, prepared,
               dataset: str) -> list[dict]:
    """Train ``arch`` alone for ``steps`` steps and return one row per linear layer, plus
    a ``transform="joint"`` row where the joint group is a predicted symmetry."""
    cfg = SlabConfig.from_settings(arch, prepared.meta, settings)
    result = train_slab(cfg, [Member(float(lr), 0.0, 0)], prepared.x_train,
                        prepared.y_train, prepared.x_test, prepared.y_test,
                        max_steps=int(steps))
    trace = result.member_trace(0)  # sq_norm [T+1, L]: before every step, then the end
    sq, gsq, cos = (np.asarray(trace[k], dtype=np.float64)
                    for k in ("sq_norm", "grad_sq_norm", "cos_wg"))
    record, depth = archs.get(arch), cfg.depth
    n_hidden = record.n_linear(depth) - 1
    base = dict(dataset=dataset, arch=arch, steps=int(gsq.shape[0]), lr=float(lr),
                status="diverged" if result.diverged_step[0] >= 0 else "ok")
    rows = [dict(base, layer=name, layer_index=i, transform="layer", is_head=i == n_hidden,
                 predicted_invariant=record.layer_invariant(i, depth),
                 **identity_columns(sq[:, i], gsq[:, i], cos[:, i], lr))
            for i, name in enumerate(record.layer_names(depth))]
    if record.joint_invariant:
        rows.append(dict(base, layer="joint", layer_index=-1, transform="joint",
                         is_head=False, predicted_invariant=True,
                         **_joint_columns(sq, gsq, cos, n_hidden, lr)))
    log.info("gradient identity %s (eps %g): %d steps", arch, cfg.norm_eps, base["steps"])
    return rows


def gradient_identity_table(arch_list: Sequence[str], model_cfg: dict, batch_size: int,
                            steps: int, lr: float, prepared, dataset: str) -> pd.DataFrame:
    """The C3 table: :func:`probe_rows` of every architecture, with ε → 0 where it has
    norms (``norm_eps`` = that ε) and again with the model's ε (``model_norm_eps``;
    ``*_model_eps`` columns). Architectures without norms run once."""
    n_train = len(prepared.x_train)
    batch_size = min(int(batch_size), n_train)
    epochs = max(1, math.ceil(int(steps) / (n_train // batch_size)))
    model_eps = float(model_cfg["norm_eps"])
    # the probe's own protocol: plain SGD, no momentum, λ = 0, a constant learning rate
    settings = {"model": model_cfg, "decay_scope": "hidden",
                "optimiser": {"algorithm": "sgd", "momentum": 0.0},
                "training": {"epochs": epochs, "batch_size": batch_size, "eval_every": epochs,
                             "final_evals": 1, "lr_schedule": "constant",
                             "lr_decay_fraction": 1.0}}

    def with_eps(eps: float) -> dict:
        return {**settings, "model": {**model_cfg, "norm_eps": eps}}
    rows = []
    for arch in arch_list:
        has_norm = archs.get(arch).norm is not None
        exact = probe_rows(arch, with_eps(EXACT_EPS if has_norm else model_eps), steps, lr,
                           prepared, dataset)
        real = probe_rows(arch, with_eps(model_eps), steps, lr, prepared,
                          dataset) if has_norm else exact
        for e, r in zip(exact, real):
            rows.append(dict(e, norm_eps=EXACT_EPS if has_norm else float("nan"),
                             model_norm_eps=model_eps if has_norm else float("nan"),
                             **{f"{k}_model_eps": r[k] for k in MODEL_EPS_COLUMNS}))
    return frame(rows, GRADIENT_IDENTITY_COLUMNS)
