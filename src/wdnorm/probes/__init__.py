"""Probes of the scale symmetries (docs/claims.md, docs/math.md).

=================== ===========================================================
module              job
=================== ===========================================================
transforms          scale a model's layers, set its norms' ε, BatchNorm statistics
symmetry_map        C1: which (W, b) scalings leave the logits unchanged
epsilon_floor       C1: how far an invariant layer shrinks before the norm's ε shows
symmetry_tables     C1: the per-dataset ``symmetry`` and ``epsilon_floor`` tables
penalty             C2: the hidden-layer penalty symmetry transforms remove
rebalance           C2: the ReLU positive-rescaling symmetry (no invariant layer)
gradient_identity   C3: orthogonal gradients and norm growth at λ = 0
equivalence         C7a: the exact LR-schedule equivalent, checked in float64
=================== ===========================================================

Every probe asks the architecture registry (:mod:`wdnorm.archs`) what an architecture
predicts; none branches on architecture names, so a new record needs no edit here.
"""
