"""Rows of ``dynamics.csv``: one per grid run and linear layer (head included) -- claim
C4's equilibrium angular update and the norms behind it (docs/math.md).

A scale-invariant weight under weight decay settles, after a few multiples of its norm's
relaxation time, to an angular update per step that its optimiser's record predicts
(:mod:`wdnorm.optimisers`: √(2ηλ/(1+α)) for SGD with momentum α, √(2ηλ(1−β₁)/(1+β₁))
for AdamW, none for Adam with coupled L2). The prediction balances E‖Δw‖², so it is compared with the
*root-mean-square* angle over a window that starts after equilibrium and ends where the
learning rate starts to decay (the prediction is the fixed point at a constant η; a
cosine tail moves it): ``window_end`` = the steps at the initial learning rate (T for a
constant schedule), ``window_start = max(ceil(t_equilibrium), floor(window_end/2))``, and
equilibrium counts as reached when the window holds at least :data:`MIN_WINDOW_STEPS`
steps.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .. import archs, optimisers
from .run_rows import run_identity

DYNAMICS_COLUMNS = [
    "dataset", "optimiser", "arch", "kind", "run_id", "lr", "weight_decay", "seed",
    "algorithm", "momentum", "beta1", "status", "layer", "layer_index", "is_head",
    "predicted_invariant", "decayed", "steps", "t_equilibrium", "past_equilibrium",
    "window_start", "window_end", "window_steps", "equilibrium_reached", "angle_rms",
    "angle_mean", "angle_std", "angle_pred", "angle_ratio", "cos_abs_mean", "sq_norm_init",
    "sq_norm_final", "layer_lr_final", "eff_lr_final",
]
#: Equilibrium counts as reached when the window after it holds this many steps.
MIN_WINDOW_STEPS = 100


def constant_lr_steps(layer_lr) -> int:
    """How many steps a layer trains at its initial learning rate before a decaying
    schedule lowers it (all of them for a constant schedule)."""
    lr = np.asarray(layer_lr, dtype=np.float64)
    lowered = lr < lr[0] * (1 - 1e-9)
    return int(np.argmax(lowered)) if lowered.any() else int(len(lr))


def equilibrium_window(end: int, t_equilibrium: float) -> tuple[int, int]:
    """(window_start, window_steps): the window runs from max(ceil(t_eq), floor(end/2))
    to ``end`` (the last step at the initial learning rate); it is empty when the
    learning rate decays, or training ends, before equilibrium."""
    start = end if not t_equilibrium < end else max(math.ceil(t_equilibrium), end // 2)
    return start, end - start


def _decayed(scope: str, is_head: bool) -> bool:
    return scope == "all" or (scope == "hidden" and not is_head)


def _layer_numbers(trace: dict, i: int, start: int, end: int) -> dict:
    """Measured columns of layer ``i`` (finite runs): angles over the window, norms."""
    nan = float("nan")
    window = np.asarray(trace["angle"], dtype=np.float64)[start:end, i]
    sq = np.asarray(trace["sq_norm"], dtype=np.float64)[:, i]
    cos = np.asarray(trace["cos_wg"], dtype=np.float64)[:, i]
    lr_last = float(np.asarray(trace["lr"], dtype=np.float64)[-1, i])
    return dict(angle_rms=float(np.sqrt(np.mean(window ** 2))) if window.size else nan,
                angle_mean=float(window.mean()) if window.size else nan,
                angle_std=float(window.std()) if window.size else nan,
                cos_abs_mean=float(np.abs(cos).mean()) if cos.size else nan,
                sq_norm_init=float(sq[0]), sq_norm_final=float(sq[-1]),
                layer_lr_final=lr_last, eff_lr_final=lr_last / float(sq[-1]))


def dynamics_rows(metrics: dict, trace: dict, matched_pairs: Iterable = ()) -> list[dict]:
    """One row per linear layer of a grid run. A layer's weight decay is the run's λ when
    the slab's decay scope decays it (``decayed``; scope ``hidden`` leaves the head
    alone) and 0 otherwise, so ``t_equilibrium`` is inf and ``angle_pred`` NaN for
    undecayed layers. ``eff_lr_final`` = the layer's last learning rate (the trace's
    ``lr``) over its final squared norm. A diverged run keeps its rows, measured columns
    NaN."""
    base = run_identity(metrics, matched_pairs)
    slab = metrics["slab"]
    record, depth, steps = archs.get(metrics["arch"]), int(slab["depth"]), int(metrics["steps"])
    hyper = slab["optimiser"]  # the recorded algorithm and every hyper-parameter
    optimiser = optimisers.get(hyper["algorithm"])
    finite = base["status"] != "diverged"
    measured = ("angle_rms", "angle_mean", "angle_std", "cos_abs_mean", "sq_norm_init",
                "sq_norm_final", "layer_lr_final", "eff_lr_final")
    rows = []
    for i, name in enumerate(record.layer_names(depth)):
        is_head = i == record.n_linear(depth) - 1
        decayed = _decayed(slab.get("decay_scope", "hidden"), is_head)
        wd = base["weight_decay"] if decayed else 0.0
        t_eq = optimiser.equilibrium_step(base["lr"], wd, hyper)
        end = constant_lr_steps(np.asarray(trace["lr"])[:steps, i])
        start, n_window = equilibrium_window(end, t_eq)
        pred = optimiser.angle_prediction(base["lr"], wd, hyper)
        numbers = (_layer_numbers(trace, i, start, end) if finite
                   else dict.fromkeys(measured, math.nan))
        rows.append(dict(
            base, layer=name, layer_index=i, is_head=is_head,
            predicted_invariant=record.layer_invariant(i, depth), decayed=decayed,
            steps=steps, t_equilibrium=t_eq, past_equilibrium=bool(steps >= t_eq),
            window_start=start, window_end=end, window_steps=n_window,
            equilibrium_reached=n_window >= MIN_WINDOW_STEPS, angle_pred=pred,
            angle_ratio=numbers["angle_rms"] / pred if pred > 0 else math.nan, **numbers))
    return rows
