"""AdamW: Adam with decoupled weight decay w ← w(1 − ηλ) (torch.optim.AdamW), what most
networks are trained with. Its equilibrium has a closed form (Kosson et al. 2024); the
moments mix steps of different scale, so there is no exact LR-schedule equivalent."""

from __future__ import annotations

import math

from .adam import adam_step
from .base import EQUILIBRIUM_FACTOR, Optimiser


def update(p, g, state, lr, wd, t, hyper):
    return adam_step(p * (1 - lr * wd), g, state, lr, t, hyper)


def angle_prediction(lr, weight_decay, hyper):
    """√(2ηλ(1−β₁)/(1+β₁))."""
    if not weight_decay > 0 or not lr > 0:
        return math.nan
    beta1 = hyper["beta1"]
    return math.sqrt(2 * lr * weight_decay * (1 - beta1) / (1 + beta1))


def equilibrium_step(lr, weight_decay, hyper):
    """3/(2ηλ): the decoupled decay shrinks w by ηλ per step."""
    if not weight_decay > 0 or not lr > 0:
        return math.inf
    return EQUILIBRIUM_FACTOR / (2 * lr * weight_decay)


ADAMW = Optimiser(
    name="adamw", description="AdamW, decoupled weight decay (torch.optim.AdamW)",
    update=update, state=("exp_avg", "exp_avg_sq"), hyper_parameters=("beta1", "beta2", "eps"),
    decoupled=True, angle_prediction=angle_prediction, equilibrium_step=equilibrium_step,
    reference="AdamW",
    reference_kwargs=lambda h: {"betas": (h["beta1"], h["beta2"]), "eps": h["eps"]})
