"""SGD with (heavy-ball) momentum and coupled L2 weight decay: torch.optim.SGD without
dampening or Nesterov. The one optimiser under which weight decay on scale-invariant
layers is exactly a learning-rate schedule (docs/math.md)."""

from __future__ import annotations

import math

from .base import EQUILIBRIUM_FACTOR, Optimiser


def update(p, g, state, lr, wd, t, hyper):
    (buf,) = state
    d_p = g + wd * p  # coupled L2, as torch.optim.SGD
    momentum = hyper["momentum"]
    if momentum != 0:
        d_p = buf * momentum + d_p  # buf starts at 0, so step 1 gives torch's buf = d_p
    return p - lr * d_p, (d_p,)


def angle_prediction(lr, weight_decay, hyper):
    """√(2ηλ/(1+α)) (Wan et al. 2021; Kosson et al. 2024)."""
    if not weight_decay > 0 or not lr > 0:
        return math.nan
    return math.sqrt(2 * lr * weight_decay / (1 + hyper["momentum"]))


def equilibrium_step(lr, weight_decay, hyper):
    """3(1−α)/(2ηλ): with momentum α the effective step is η/(1−α)."""
    if not weight_decay > 0 or not lr > 0:
        return math.inf
    return EQUILIBRIUM_FACTOR * (1 - hyper["momentum"]) / (2 * lr * weight_decay)


def equivalent_limit(hyper):
    """k_t stays positive only while x² − (1+α−ηλ)x + α has real roots: ηλ ≤ (1−√α)²."""
    return (1 - math.sqrt(hyper["momentum"])) ** 2


SGD = Optimiser(
    name="sgd", description="SGD with momentum α, coupled L2 (torch.optim.SGD)",
    update=update, state=("momentum_buffer",), hyper_parameters=("momentum",),
    decoupled=False, angle_prediction=angle_prediction, equilibrium_step=equilibrium_step,
    equivalent_limit=equivalent_limit, reference="SGD",
    reference_kwargs=lambda hyper: {"momentum": hyper["momentum"]})
