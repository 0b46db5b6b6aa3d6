"""Adam with coupled L2 weight decay (torch.optim.Adam): the decay term enters the
gradient and is then normalised by the second moment, so it has neither a closed-form
equilibrium nor an exact LR-schedule equivalent."""

from __future__ import annotations

from .base import Optimiser


def adam_step(p, g, state, lr, t, hyper):
    """Adam's moment update and step, torch.optim's formulas (no amsgrad)."""
    m, m2 = state
    beta1, beta2 = hyper["beta1"], hyper["beta2"]
    m = m.lerp(g, 1 - beta1)
    m2 = m2 * beta2 + (1 - beta2) * g * g
    step_size = lr / (1 - beta1 ** t)
    denom = m2.sqrt() / (1 - beta2 ** t).sqrt() + hyper["eps"]
    return p - step_size * (m / denom), (m, m2)


def update(p, g, state, lr, wd, t, hyper):
    return adam_step(p, g + wd * p, state, lr, t, hyper)


ADAM = Optimiser(
    name="adam", description="Adam, coupled L2 (torch.optim.Adam)", update=update,
    state=("exp_avg", "exp_avg_sq"), hyper_parameters=("beta1", "beta2", "eps"),
    decoupled=False, reference="Adam",
    reference_kwargs=lambda h: {"betas": (h["beta1"], h["beta2"]), "eps": h["eps"]})
