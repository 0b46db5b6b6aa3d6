"""Verdicts on the claims C1-C8, computed from the tidy tables (never hard-coded), and
the answer to the article's question synthesised from them.

One module per claim (``c1_symmetry`` ... ``c7_mechanism``), each with ``decide(tables,
settings) -> record``; :mod:`.registry` lists them; :mod:`.stats` holds the paired
tests they share. A claim's record::

    id, title, verdict (supported | refuted | inconclusive), test, n, rule, tolerance,
    measured, key_numbers, summary, tables, figure, prediction_article,
    prediction_literature

``settings`` (:func:`settings_from_config`) holds ``optimisers``, ``matched_pairs``,
``claims`` (``weight_decay``: the pre-declared λ*, ``alpha``, optionally ``tolerances``)
and ``training``. Tolerances (:data:`TOLERANCES`) are stated in every record and
overridable through ``settings["claims"]["tolerances"]`` or ``settings["tolerances"]``.
Flipping the data flips the verdict: the tests check each claim both ways. The science
of each rule is in ``docs/claims.md``, the choice of tests in ``docs/statistics.md``.
"""

from .common import VERDICTS
from .decide import decide, decide_all, load_tables, settings_from_config, write_claims
from .registry import REGISTRY, TABLE_NAMES, TOLERANCES, Claim
from .render import render_markdown

__all__ = ["VERDICTS", "REGISTRY", "TABLE_NAMES", "TOLERANCES", "Claim", "decide",
           "decide_all", "load_tables", "settings_from_config", "write_claims",
           "render_markdown"]
