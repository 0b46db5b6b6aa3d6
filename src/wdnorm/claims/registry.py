"""The registered claims: one :class:`Claim` record per claim module. Adding a claim is
one module (ID, TITLE, TABLES, FIGURE, TOLERANCES, decide) and one entry here; the
tables the claims step reads, the tolerances it states and the order of the report
all follow from this list."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType

import pandas as pd

from . import (c1_symmetry, c2_penalty, c3_gradients, c4_equilibrium, c5_intrinsic_lr,
               c6_effect, c7_mechanism, c8_tuned)

Decide = Callable[[Mapping[str, pd.DataFrame], Mapping | None], dict]


@dataclass(frozen=True)
class Claim:
    id: str
    title: str
    tables: tuple[str, ...]        # the tables (results/tables/{name}.csv) it reads
    figure: str                    # the figure that shows it
    decide: Decide                 # (tables, settings) -> the claim's record
    tolerances: Mapping[str, float]  # its default tolerances (overridable by settings)

    @classmethod
    def from_module(cls, module: ModuleType) -> "Claim":
        return cls(module.ID, module.TITLE, tuple(module.TABLES), module.FIGURE,
                   module.decide, dict(module.TOLERANCES))


REGISTRY: dict[str, Claim] = {c.id: c for c in map(Claim.from_module, (
    c1_symmetry, c2_penalty, c3_gradients, c4_equilibrium, c5_intrinsic_lr, c6_effect,
    c7_mechanism, c8_tuned))}

#: Every table a registered claim reads, in first-use order.
TABLE_NAMES: tuple[str, ...] = tuple(dict.fromkeys(t for c in REGISTRY.values() for t in c.tables))

#: Every decision tolerance, by name (names carry the claim's prefix, so they never clash).
TOLERANCES: dict[str, float] = {k: v for c in REGISTRY.values() for k, v in c.tolerances.items()}
