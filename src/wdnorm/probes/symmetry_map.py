"""Claim C1: which scalings of a layer's (W, b) -- or of every hidden layer together --
leave the logits unchanged, against the registry's prediction (docs/architectures.md).

Precision and the normalisation ε (docs/math.md): LN(a·z) = LN(z) holds exactly only for
ε = 0; a real norm computes (z − μ)/sqrt(Var(z) + ε/a²), a relative change of about
ε·(1/a² − 1)/(2·Var(z)), which at ε = 1e-5 is ~1e-3 already at a = 0.1. A 1e-5 tolerance
cannot tell "ε = 1e-5" from "not a symmetry", so the map asks the exact question: it
probes a **float64** copy (rounding ~1e-16 cannot hide or fake an invariance) with every
norm's ε at :data:`~wdnorm.probes.transforms.EXACT_EPS`. The same probes with the model's
own ε are the ``*_model_eps`` columns; how far a real model shrinks is
:mod:`wdnorm.probes.epsilon_floor`'s and :mod:`wdnorm.probes.penalty`'s question.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import pandas as pd
import torch

from .. import archs
from ..models import MLP
from . import transforms as tf

#: Relative output change below which a transform counts as a symmetry.
DEFAULT_TOL = 1e-5
#: The scales a of C1 (docs/claims.md).
DEFAULT_SCALES = (1e-2, 1e-1, 10.0, 100.0)
#: BatchNorm probe modes: batch statistics; running statistics left as they are; running
#: statistics rescaled with the weights (running_mean·a, running_var·a²).
BN_MODES = ("train", "eval", "eval_rescaled")
#: Inputs of a probe: at most this many rows (the map is exact, more rows add nothing).
PROBE_ROWS = 256

SYMMETRY_COLUMNS = [
    "arch", "layer", "layer_index", "transform", "scale", "mode",
    "rel_change", "predicted_invariant", "invariant", "matches_prediction",
    "rel_change_model_eps", "invariant_model_eps", "norm_eps", "tol",
]


def predicted_invariant(arch: str, transform: str, layer_index: int, mode: str,
                        depth: int) -> bool:
    """The registry's prediction for one cell of the map: ``transform`` "layer" (linear
    layer ``layer_index`` alone) or "joint" (every hidden layer). BatchNorm in eval mode
    with running statistics *not* rescaled is predicted not invariant: the statistics do
    not move with the weights."""
    record = archs.get(arch)
    if mode == "eval" and record.norm == "batch":
        return False
    if transform == "joint":
        return record.joint_invariant
    return record.layer_invariant(layer_index, depth)


def probe_modes(arch: str) -> tuple[str, ...]:
    """BatchNorm architectures are probed in the three :data:`BN_MODES`; the others in
    ``eval`` (they have no train/eval difference)."""
    return BN_MODES if archs.get(arch).norm == "batch" else ("eval",)


def _probe_bases(model: MLP, x: torch.Tensor, warm_bn: bool | None):
    """Float64 copies of ``model``: with ε → 0 ("exact") and with its own ε."""
    device = next(model.parameters()).device
    x64 = x.detach().to(device=device, dtype=torch.float64)
    base = copy.deepcopy(model).double()
    if warm_bn or (warm_bn is None and tf.needs_warmup(base)):
        tf.warm_batchnorms(base, x64)
    exact = copy.deepcopy(base)
    tf.set_eps(exact, tf.EXACT_EPS)
    return x64, {"exact": exact, "model_eps": base}


def symmetry_map(model: MLP, x: torch.Tensor, scales: Sequence[float] = DEFAULT_SCALES,
                 tol: float = DEFAULT_TOL, warm_bn: bool | None = None) -> pd.DataFrame:
    """For every hidden linear layer (``transform="layer"``) and for all of them together
    (``transform="joint"``, ``layer_index=-1``: for residual layouts the stem and every
    block), and every a in ``scales``: ``rel_change = max|logits' − logits| / max|logits|``
    on ``x``, exact (``rel_change``, ``invariant`` = rel_change < tol) and with the
    model's ε (``*_model_eps``). Modes: :func:`probe_modes`. Untouched BatchNorm running
    statistics (a fresh model) first get realistic values from train-mode forwards on the
    copy (``warm_bn`` forces or forbids this); a trained model keeps its own.
    Columns: :data:`SYMMETRY_COLUMNS`. The caller's model is never modified."""
    depth, n_hidden = model.depth, tf.n_hidden(model)
    names = archs.get(model.arch).layer_names(depth)
    x64, variants = _probe_bases(model, x, warm_bn)
    norm_eps = tf.model_eps(variants["model_eps"])
    transforms = [("layer", i, [i]) for i in range(n_hidden)]
    transforms.append(("joint", -1, list(range(n_hidden))))
    rows = []
    for mode in probe_modes(model.arch):
        refs = {k: tf.logits(m, x64, mode) for k, m in variants.items()}
        for transform, index, indices in transforms:
            pred = predicted_invariant(model.arch, transform, index, mode, depth)
            for a in scales:
                rel = {k: tf.rel_change(tf.logits(m, x64, mode, indices, float(a)), refs[k])
                       for k, m in variants.items()}
                rows.append(dict(
                    arch=model.arch, layer=names[index] if index >= 0 else "joint",
                    layer_index=index, transform=transform, scale=float(a), mode=mode,
                    rel_change=rel["exact"], predicted_invariant=pred,
                    invariant=rel["exact"] < tol,
                    matches_prediction=(rel["exact"] < tol) == pred,
                    rel_change_model_eps=rel["model_eps"],
                    invariant_model_eps=rel["model_eps"] < tol, norm_eps=norm_eps, tol=tol))
    return pd.DataFrame(rows, columns=SYMMETRY_COLUMNS)


def invariant_layers(table: pd.DataFrame, mode: str | None = None) -> tuple[list[int], bool]:
    """From a :func:`symmetry_map` table: the layers invariant on their own at every probed
    scale, and whether the joint transform is. ``mode`` defaults to ``eval_rescaled``
    where present (BatchNorm), else ``eval``."""
    if mode is None:
        mode = "eval_rescaled" if (table["mode"] == "eval_rescaled").any() else "eval"
    t = table[table["mode"] == mode]
    per_layer = t[t["transform"] == "layer"].groupby("layer_index")["invariant"].all()
    joint = bool(t[t["transform"] == "joint"]["invariant"].all())
    return sorted(int(i) for i, ok in per_layer.items() if ok), joint


def invariant_groups(model: MLP, x: torch.Tensor) -> tuple[list[int], str]:
    """The layers C2 shrinks, *measured* by the exact map on up to :data:`PROBE_ROWS` rows
    of ``x``: the layers invariant on their own ("layer"), else every hidden layer when
    the joint transform is invariant ("joint"), else none ("none")."""
    per_layer, joint = invariant_layers(symmetry_map(model, x[:PROBE_ROWS]))
    if per_layer:
        return per_layer, "layer"
    if joint:
        return list(range(tf.n_hidden(model))), "joint"
    return [], "none"
