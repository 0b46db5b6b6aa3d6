"""What the pipeline needs to know about one optimiser: the :class:`Optimiser` record.

A record holds the update rule (torch.optim's formulas, applied to parameters stacked
along a leading member axis), the per-parameter state it keeps, the hyper-parameters it
reads (their defaults are the config schema's), whether weight decay under it has an
exact learning-rate-schedule equivalent, and its equilibrium predictions (claim C4).
Everything that depends on *which* optimiser a run used asks its record.

Torch-free on purpose: the update functions use tensor methods only, so claims, tables
and figures import the records without paying for torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# update(p, g, state, lr, wd, t, hyper) -> (new p, new state): one step of a stacked
# parameter. ``state``: this optimiser's per-parameter tensors (a tuple, :attr:`state`
# names them); ``lr``, ``wd`` broadcast against ``p``; ``t`` the 1-based step count.
Update = Callable[[Any, Any, tuple, Any, Any, Any, Mapping[str, float]], tuple[Any, tuple]]
Rate = Callable[[float, float, Mapping[str, float]], float]


def no_prediction(lr: float, weight_decay: float, hyper: Mapping[str, float]) -> float:
    """No closed form (e.g. Adam with coupled L2): NaN."""
    return math.nan


def no_equilibrium(lr: float, weight_decay: float, hyper: Mapping[str, float]) -> float:
    return math.inf


@dataclass(frozen=True)
class Optimiser:
    name: str                        # the config's ``algorithm``
    description: str
    update: Update
    state: tuple[str, ...]           # per-parameter state tensors, in update order
    hyper_parameters: tuple[str, ...]  # config keys the update reads (schema defaults)
    decoupled: bool                  # weight decay shrinks w directly, not through g
    # Equilibrium angular update per step of a scale-invariant weight (claim C4), and
    # the step by which it is reached; NaN / inf where no closed form exists.
    angle_prediction: Rate = no_prediction
    equilibrium_step: Rate = no_equilibrium
    # The largest η·λ for which the exact LR-schedule equivalent exists (docs/math.md);
    # None: weight decay under this optimiser has no exact equivalent.
    equivalent_limit: Callable[[Mapping[str, float]], float] | None = None
    # The torch.optim class the update follows (tests and the benchmark's loop), by
    # name in torch.optim, with the keyword of each hyper-parameter; None for none.
    reference: str | None = None
    reference_kwargs: Callable[[Mapping[str, float]], dict] | None = None

    @property
    def exact_equivalent(self) -> bool:
        """Weight decay under it is exactly an LR schedule on scale-invariant layers."""
        return self.equivalent_limit is not None

    @property
    def second_moments(self) -> bool:
        return len(self.state) > 1

    def torch_optimizer(self, params, lr: float, weight_decay: float,
                        hyper: Mapping[str, float]):
        """The torch.optim optimiser this record's update reproduces step for step."""
        if self.reference is None:
            raise ValueError(f"optimiser {self.name!r} has no torch.optim reference")
        import torch

        kwargs = self.reference_kwargs(hyper) if self.reference_kwargs else {}
        return getattr(torch.optim, self.reference)(params, lr=lr, weight_decay=weight_decay,
                                                    **kwargs)


# The three equilibrium-time conventions share one factor: t_eq = 3 relaxation times of
# the squared norm (e⁻³ ≈ 5 % left).
EQUILIBRIUM_FACTOR = 3.0
