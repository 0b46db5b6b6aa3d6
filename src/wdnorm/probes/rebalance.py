"""Claim C2 where no layer is invariant: the ReLU positive-rescaling symmetry.

ReLU(c·z) = c·ReLU(z) for c > 0, so multiplying a hidden unit's incoming (W, b) by c and
its outgoing weights by 1/c leaves the function unchanged. The registry's ``rebalance``
says which group an architecture has (docs/architectures.md):

* ``"neuron"`` (stacked layers, no norm): one factor per hidden neuron of every layer,
  W_l → diag(c_l) W_l diag(c_{l−1})⁻¹, b_l → c_l ⊙ b_l, head W → W diag(c_{L−1})⁻¹;
* ``"channel"`` (residual stream, no norm): one diagonal D on the stream, stem (W, b) →
  (D W, D b), block (W, b) → (D W D⁻¹, D b), head W → W D⁻¹ (then h → D h everywhere);
* ``"scalar"`` (residual stream read through a norm): one factor c, stem and every
  block's (W, b) → c·(W, b), head W → W / c (LN(c·h) = LN(h) inside the blocks).

The penalty can then be moved between hidden layers and the head, not removed: C2
minimises the *total* penalty over the group.
"""

from __future__ import annotations

import copy

import torch

from ..models import MLP
from . import transforms as tf

GRANULARITIES = ("unit", "layer")


def _log_multipliers(kind: str, n_hidden: int, u: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """log of the factor each parameter is multiplied by, as a function of the group
    variables ``u`` (broadcastable to the parameter's shape)."""
    head, out = n_hidden, {}
    if kind == "neuron":
        prev = None
        for l in range(n_hidden):
            out[f"linears.{l}.weight"] = u[l][:, None] - (0 if prev is None else prev[None, :])
            out[f"linears.{l}.bias"] = u[l]
            prev = u[l]
        out[f"linears.{head}.weight"] = -prev[None, :]
    elif kind == "channel":
        d = u[0]
        out["linears.0.weight"], out["linears.0.bias"] = d[:, None], d
        for l in range(1, n_hidden):
            out[f"linears.{l}.weight"] = d[:, None] - d[None, :]
            out[f"linears.{l}.bias"] = d
        out[f"linears.{head}.weight"] = -d[None, :]
    elif kind == "scalar":
        for l in range(n_hidden):
            out[f"linears.{l}.weight"] = out[f"linears.{l}.bias"] = u[0]
        out[f"linears.{head}.weight"] = -u[0]
    else:
        raise ValueError(f"no rebalancing symmetry {kind!r}")
    return out


def _group_variables(kind: str, width: int, n_hidden: int, granularity: str) -> list[torch.Tensor]:
    """Zeros (the identity) for every variable of the group; ``granularity`` "unit" gives
    one per hidden unit (neuron / stream channel), "layer" one per layer."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    size = width if granularity == "unit" else 1
    kw = dict(dtype=torch.float64, requires_grad=True)
    if kind == "neuron":
        return [torch.zeros(size, **kw) for _ in range(n_hidden)]
    if kind == "channel":
        return [torch.zeros(size, **kw)]
    return [torch.zeros((), **kw)]


def rebalanced_parameters(model: MLP, granularity: str = "unit") -> list[str]:
    """Names of the parameters the rebalancing rescales."""
    kind = tf.record(model).rebalance
    u = _group_variables(kind, model.dims["width"], tf.n_hidden(model), granularity)
    return list(_log_multipliers(kind, tf.n_hidden(model), u))


def rebalance(model: MLP, granularity: str = "unit", max_iter: int = 500) -> tuple[MLP, dict]:
    """Minimise the total penalty (hidden layers plus head) over the architecture's
    rebalancing group; the function is unchanged by construction. The objective
    Σ_p Σ p²·exp(2·logmult_p(u)) is a sum of exponentials of linear functions of u, hence
    convex: L-BFGS in float64 finds its minimum. Returns the rebalanced copy and the
    optimiser's record (objective before/after, extreme log factors)."""
    kind, n_hidden = tf.record(model).rebalance, tf.n_hidden(model)
    sq = {n: p.detach().double().cpu().square() for n, p in model.named_parameters()}
    u = _group_variables(kind, model.dims["width"], n_hidden, granularity)

    def objective() -> torch.Tensor:
        return sum((sq[n] * torch.exp(2 * lm)).sum()
                   for n, lm in _log_multipliers(kind, n_hidden, u).items())

    opt = torch.optim.LBFGS(u, lr=1, max_iter=max_iter, tolerance_grad=1e-12,
                            tolerance_change=1e-15, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        value = objective()
        value.backward()
        return value

    with torch.no_grad():
        start = float(objective())
    opt.step(closure)
    with torch.no_grad():
        end = float(objective())
        if not end <= start:  # never accept a worse point
            for t in u:
                t.zero_()
        out = copy.deepcopy(model)
        logm = _log_multipliers(kind, n_hidden, u)
        for n, p in out.named_parameters():
            if n in logm:
                p.mul_(torch.exp(logm[n]).to(device=p.device, dtype=p.dtype))
    factors = torch.cat([t.detach().reshape(-1) for t in u])
    return out, dict(objective_before=start, objective_after=min(start, end),
                     log_factor_min=float(factors.min()), log_factor_max=float(factors.max()))
