"""The per-slab tables of trained runs and the aggregation of every table.

==============  ================================================  =====================
table           rows                                              module
==============  ================================================  =====================
runs            every member of a slab (all kinds)                :mod:`.run_rows`
dynamics        grid run x linear layer (head included)           :mod:`.dynamics_rows`
penalty         grid run (C2: the removable hidden-layer penalty) :mod:`.penalty_rows`
penalty_curve   the curve run (lowest seed at the claims λ)        :mod:`.penalty_rows`
==============  ================================================  =====================

:func:`wdnorm.tables.slab.slab_tables` reads one slab (its ``slab.json`` and the run
directories beside it) into these four; :func:`wdnorm.frames.aggregate` concatenates
per-slab and per-dataset tables. The column contract is docs/claims.md's; columns may be
added, never renamed (claims, figures and the audit read them). Diverged and collapsed
runs keep their rows: a table that dropped them would make a grid look cleaner than it
is.
"""

#: The per-slab tables, in the order above (the workflow's evaluate rule writes these).
SLAB_TABLES = ("runs", "dynamics", "penalty", "penalty_curve")
