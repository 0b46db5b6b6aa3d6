"""The optimiser registry: one :class:`Optimiser` record per optimiser.

Adding an optimiser = one module defining its record (update rule, state,
hyper-parameters, equilibrium predictions, whether an exact LR-schedule equivalent
exists) plus one entry in :data:`REGISTRY`; the config's ``algorithm`` is checked
against this registry before any job runs, and every place that depends on the
optimiser asks its record.
"""

from __future__ import annotations

from .adam import ADAM
from .adamw import ADAMW
from .base import Optimiser
from .sgd import SGD

REGISTRY: dict[str, Optimiser] = {o.name: o for o in (SGD, ADAM, ADAMW)}
ALGORITHMS: tuple[str, ...] = tuple(REGISTRY)


def get(algorithm: str) -> Optimiser:
    """The record of ``algorithm``; a clear error naming the valid ones otherwise."""
    try:
        return REGISTRY[algorithm]
    except (KeyError, TypeError):
        raise ValueError(f"unknown optimiser algorithm {algorithm!r}; valid: "
                         f"{', '.join(ALGORITHMS)}") from None


__all__ = ["ALGORITHMS", "REGISTRY", "Optimiser", "get"]
