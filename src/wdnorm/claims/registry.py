"""The registered claims: one :class:`Claim` record per claim module.

A claim module holds its fixed fields (ID, TITLE, TABLES, TEST, RULE, TOLERANCES,
ARTICLE, LITERATURE, optionally CONSTANTS) and ``decide(tables, settings) -> Decision``
(verdict, measurements, summary); the record turns a decision into the claim's entry of
claims.json, with the rule stated at the tolerances in force and the figure that shows
the claim read from the figure registry (the one place that links them). Adding a
claim is one module and one entry here; the tables the claims step reads, the
tolerances it states and the order of the report all follow from this list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType

import pandas as pd

from ..figures.registry import figure_of
from . import (c1_symmetry, c2_penalty, c3_gradients, c4_equilibrium, c5_intrinsic_lr,
               c6_effect, c7_mechanism, c8_tuned)
from . import common as c

Decide = Callable[[Mapping[str, pd.DataFrame], Mapping | None], c.Decision]


@dataclass(frozen=True)
class Claim:
    id: str
    title: str
    tables: tuple[str, ...]          # the tables (results/tables/{name}.csv) it reads
    test: str                        # the statistical test or numerical check
    rule: str                        # the decision rule, a template over the tolerances
    tolerances: Mapping[str, float]  # its default tolerances (overridable by settings)
    article: str                     # what the source article predicts
    literature: str                  # what the literature predicts
    decide: Decide
    constants: Mapping[str, float] = field(default_factory=dict)  # fixed, stated too

    @classmethod
    def from_module(cls, module: ModuleType) -> "Claim":
        return cls(module.ID, module.TITLE, tuple(module.TABLES), module.TEST, module.RULE,
                   dict(module.TOLERANCES), module.ARTICLE, module.LITERATURE,
                   module.decide, dict(getattr(module, "CONSTANTS", {})))

    @property
    def figure(self) -> str:
        return figure_of(self.id)

    def stated_tolerance(self, settings: Mapping | None) -> dict:
        """The tolerances in force, named without the claim's prefix, the constants and
        (when the rule uses it) the family-wise α."""
        tol = c.tolerances(settings, self.tolerances)
        stated = {name.split("_", 1)[1]: value for name, value in tol.items()}
        stated.update(self.constants)
        if "{alpha" in self.rule or "{conf" in self.rule:
            stated["alpha"] = c.alpha(settings)
        return stated

    def rule_text(self, settings: Mapping | None) -> str:
        alpha = c.alpha(settings)
        return self.rule.format(alpha=alpha, conf=1 - alpha, **self.constants,
                                **c.tolerances(settings, self.tolerances))

    def record(self, decision: c.Decision, settings: Mapping | None) -> dict:
        """The claim's entry of claims.json."""
        tolerance = self.stated_tolerance(settings)
        out = dict(id=self.id, title=self.title, verdict=decision.verdict, test=self.test,
                   n=decision.n, rule=self.rule_text(settings), tolerance=tolerance,
                   measured=decision.measured, key_numbers=decision.key_numbers,
                   summary=decision.summary, tables=[f"tables/{t}.csv" for t in self.tables],
                   figure=self.figure, prediction_article=self.article,
                   prediction_literature=self.literature)
        if "margin" in tolerance:
            out["margin"] = tolerance["margin"]
        return out

    def evaluate(self, tables: Mapping[str, pd.DataFrame], settings: Mapping | None) -> dict:
        return self.record(self.decide(dict(tables), settings), settings)


REGISTRY: dict[str, Claim] = {x.id: x for x in map(Claim.from_module, (
    c1_symmetry, c2_penalty, c3_gradients, c4_equilibrium, c5_intrinsic_lr, c6_effect,
    c7_mechanism, c8_tuned))}

#: Every table a registered claim reads, in first-use order.
TABLE_NAMES: tuple[str, ...] = tuple(dict.fromkeys(t for x in REGISTRY.values() for t in x.tables))

#: Every decision tolerance, by name (names carry the claim's prefix, so they never clash).
TOLERANCES: dict[str, float] = {k: v for x in REGISTRY.values() for k, v in x.tolerances.items()}
