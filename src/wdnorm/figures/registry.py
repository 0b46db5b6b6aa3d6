"""The figure registry: one record per figure, the single place that says what it draws.

A record names the module whose ``draw(tables, claims)`` builds the figure, the tables it
reads (the figure rule's inputs are exactly these, plus results/claims.json), the claims
it shows (the first is the one it decides), its header title and its caption. Captions
are reStructuredText with ``{test[C6]}`` / ``{n[C6]}`` fields that the figure job fills
in from claims.json, so the caption states the test and sample size the verdict used.

Light on purpose (no pandas, no matplotlib): the Snakefile imports it for the list of
figures and each figure's inputs; the drawing modules load only when a figure is drawn.
"""

from __future__ import annotations

import importlib
import re
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

from .claims_view import ClaimsView

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.figure
    import pandas as pd

@dataclass(frozen=True)
class Figure:
    name: str                    # figures/{name}.{png,pdf}, workflow/notebooks/{name}.ipynb
    module: str                  # wdnorm.figures.{module}.draw(tables, claims)
    tables: tuple[str, ...]      # results/tables/{table}.csv it reads
    claims: tuple[str, ...]      # claim ids it shows; the first is the one it decides
    title: str                   # header line
    caption: str                 # reStructuredText with {test[Cx]} / {n[Cx]} fields

    def draw(self, tables: Mapping[str, "pd.DataFrame"],
             claims: ClaimsView | None = None) -> "matplotlib.figure.Figure":
        module = importlib.import_module(f"{__package__}.{self.module}")
        return module.draw(tables, claims if claims is not None else ClaimsView())

    def caption_text(self, claims: ClaimsView | None = None) -> str:
        """The caption with each claim's test and n from claims.json ("n/a" without)."""
        claims = claims if claims is not None else ClaimsView()
        return string.Formatter().vformat(self.caption, (), {
            "test": _PerClaim(claims.test), "n": _PerClaim(claims.n)})


_RST_SPECIAL = re.compile(r"([\\`*_|])")


def rst_escape(text: str) -> str:
    """Plain text safe inside reStructuredText (no accidental markup)."""
    return _RST_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


class _PerClaim:
    """``{test[C6]}`` in a caption: item access by claim id, escaped for rst."""

    def __init__(self, lookup):
        self._lookup = lookup

    def __getitem__(self, cid: str) -> str:
        return rst_escape(self._lookup(cid))


_HEADER_NOTE = ("The header gives each claim's verdict (\"fragile\" where its stability "
                "check says so), its test, n and key numbers from ``results/claims.json``; "
                "the decision rules are in ``docs/claims.md``.")
#: How every interval drawn beside a paired comparison is computed.
_HL_NOTE = ("Intervals are the verdict's own: the Hodges–Lehmann shift of the seed-paired "
            "differences with its 95% distribution-free CI, computed by "
            "``wdnorm.claims.stats.hodges_lehmann`` as the claims step does (none below 6 "
            "pairs, where the 95% interval is unbounded).")

REGISTRY: dict[str, Figure] = {f.name: f for f in (
    Figure(
        "symmetry_map", "symmetry_map", ("symmetry",), ("C1",),
        "C1 · Which scalings leave the logits unchanged? (float64, ε → 0)",
        "**Symmetry map (claim C1; {test[C1]}, {n[C1]}).** Each cell is log\\ :sub:`10` of "
        "max\\|Δlogits\\| / max\\|logits\\| when one hidden linear layer (weights and bias "
        "together) or all of them (\"joint\") is multiplied by *a*; one panel per *a*. Rows "
        "are the architectures by formula; BatchNorm appears in train mode, in eval mode "
        "with its running statistics kept, and in eval mode with them rescaled. Probes run "
        "on float64 copies with ε ≈ 0: blue (below the \"invariant\" mark of the colour bar) "
        "is an exact symmetry, red (above \"changed\") a changed function. Circles mark the "
        "cells predicted invariant (``docs/architectures.md``); a black frame marks a "
        "measurement that contradicts the prediction; \"ε\" marks a cell whose verdict "
        "changes with the model's own ε (the floor behind C2); grey: no such layer. "
        + _HEADER_NOTE),
    Figure(
        "penalty_removal", "penalty_removal", ("penalty", "penalty_curve"), ("C2",),
        "C2 · How much hidden-layer L2 penalty can symmetries remove from a trained net?",
        "**Removable L2 penalty (claim C2; {test[C2]}, {n[C2]}).** (a) For one trained run "
        "per architecture with an invariant group, the hidden-layer penalty relative to the "
        "trained one as the invariant layers shrink together by *a* (x reversed): solid down "
        "to the star, the smallest *a* keeping the train loss within tolerance with the "
        "model's ε (the ε floor), pale beyond (valid only for ε ≈ 0). (b) The relative "
        "change of the train loss this costs, model ε (solid) and ε ≈ 0 (pale), against the "
        "tolerance (dashed). (c) For every trained run with λ > 0, the hidden penalty after "
        "the best function-preserving transform over the penalty before (dots: runs, bars "
        "across: medians; log scale), with the method beside each architecture: *shrink* (invariant "
        "layers), *rebalance* (ReLU positive rescaling into the head) or *none*. "
        + _HEADER_NOTE),
    Figure(
        "norm_dynamics", "norm_dynamics", ("dynamics", "gradient_identity"), ("C4", "C3"),
        "C3/C4 · Orthogonal gradients and the angular equilibrium",
        "**Angular equilibrium and orthogonal gradients (claims C4: {test[C4]}, {n[C4]}; "
        "C3: {test[C3]}, {n[C3]}).** Top left: for every hidden layer of every grid run with "
        "λ > 0, the root-mean-square angle between successive weights over the equilibrium "
        "window (from max(t\\ :sub:`eq`, T/2), t\\ :sub:`eq` = 3(1−α)/(2ηλ) for SGD with "
        "momentum α) against √(2ηλ/(1+α)) (the AdamW form for AdamW); y = x and the C4 band. "
        "Hollow markers: windows shorter than 100 steps (equilibrium not reached, not "
        "compared). Top middle: the ratio per architecture; the black bar is the median over "
        "predicted-invariant layers of runs at equilibrium. Top right: the runs C4 counts at equilibrium "
        "per architecture and λ -- those at equilibrium on every predicted-invariant decayed "
        "layer (grey: no such layer, no prediction; frame: the λ of C6). Bottom (λ = 0, "
        "plain SGD): max \\|cos(w, ∇L)\\| per layer and the relative error of ‖w\\ :sub:`T`‖² "
        "− ‖w\\ :sub:`0`‖² = η²Σ‖g\\ :sub:`t`‖², exact probe (markers) and model ε (+), "
        "against the C3 tolerances. " + _HEADER_NOTE),
    Figure(
        "lr_wd_collapse", "lr_wd_collapse", ("runs", "dynamics"), ("C5",),
        "C5 · Does only the product ηλ matter?",
        "**Only ηλ matters (claim C5; {test[C5]}, {n[C5]}).** For the matched (η, λ) pairs "
        "sharing one product ηλ, one column per architecture: the equilibrium RMS angular "
        "update (top; mean over the predicted-invariant layers, or all hidden layers where "
        "none is; median over seeds; dashed: √(2ηλ/(1+α)); hollow: equilibrium not "
        "reached) and the test accuracy of each pair minus that of C5's reference pair "
        "(bold) of the same seed (bottom). Thin lines join the runs of one seed (same "
        "initialisation and batch order); the grey band is C5's equivalence margin, where "
        "claims.json states one: equivalence needs the whole interval inside it. × marks "
        "diverged runs (chance accuracy). plain is the contrast. " + _HL_NOTE + " "
        + _HEADER_NOTE),
    Figure(
        "accuracy_vs_wd", "accuracy_vs_wd", ("runs",), ("C6",),
        "C6 · Does hidden-layer weight decay change, and improve, test accuracy?",
        "**Weight decay and test accuracy (claim C6; {test[C6]}, {n[C6]}).** Grid runs at "
        "the grid learning rate. (a) The verdict's comparison: per architecture, the test "
        "accuracy and the generalisation gap (train − test accuracy) at C6's pre-declared "
        "λ\\* minus those at λ = 0 of the same seed, with C6's margin (support needs the "
        "improvement's one-sided bound below it). (b) Every λ of the grid, one column per "
        "architecture, each on its own y range: test accuracy (thin lines join the runs "
        "of one seed, same initialisation and batch order; markers: medians) and the "
        "paired differences to λ = 0; the grey band and the bold tick mark λ\\*. "
        "Diverged runs count at chance accuracy (×), collapsed runs are hollow: outcomes, "
        "never dropped. (c) Per architecture and λ, the runs whose norms collapsed into "
        "the ε floor (status \"collapsed\") and the diverged runs. " + _HL_NOTE + " "
        + _HEADER_NOTE),
    Figure(
        "mechanism", "mechanism", ("runs", "equivalence_probe"), ("C7",),
        "C7 · Is weight decay's effect a learning-rate schedule?",
        "**Weight decay as a learning-rate schedule (claim C7; {test[C7]}, {n[C7]}).** Top, "
        "per architecture with a predicted symmetry: the test accuracy of each arm minus "
        "that of the grid run with C6's λ (λ\\*) of the same seed -- the grid run without "
        "weight decay (λ = 0) and the λ\\* run's three equivalents without decay on the "
        "invariant layers: *exact* (learning rate and ε rescaled by k\\ :sub:`t`), "
        "*schedule* (the same learning-rate schedule, ε fixed; C7 (b) asks that it stay "
        "within the grey equivalence margin) and *mimic* (Hoffer et al. 2018: learning "
        "rate matched to the decay run's ‖w‖²). Thin lines join the arms of one seed; tick "
        "labels count diverged runs per arm. Bottom: the float64 equivalence probe for "
        "every architecture: the largest relative per-step loss difference to the "
        "weight-decay run, and the number of steps it stays within the tolerance (dashed: "
        "the steps C7 requires; hollow: does not track). The exact equivalent must track "
        "on the invariant architectures and fail on the others. " + _HL_NOTE + " "
        + _HEADER_NOTE),
    Figure(
        "tuned", "tuned", ("runs",), ("C8",),
        "C8 · Does the best-tuned weight-decay run beat the best-tuned run without it?",
        "**Best-tuned weight decay against best-tuned no weight decay (claim C8; "
        "{test[C8]}, {n[C8]}).** Top, per architecture: the test accuracy of the run with "
        "weight decay at its best (learning rate, λ) and of that run's exact "
        "learning-rate-schedule equivalent (no weight decay; learning rate and ε rescaled "
        "by k\\ :sub:`t`), where trained, minus that of the run without weight decay at its "
        "best learning rate, of the same seed (dashed: C8's margin). Thin lines join the "
        "arms of one seed. Bottom: the mean validation accuracy of every candidate, one "
        "line per learning rate; the selected arms are ringed. Selection reads the "
        "validation split only, the comparison the test split only. Without a "
        "learning-rate grid or a validation split the figure says which is missing. "
        + _HL_NOTE + " " + _HEADER_NOTE),
    Figure(
        "protocols", "protocols", ("effects",), ("C9",),
        "C9 · Does weight decay's effect survive a change of protocol?",
        "**Weight decay's effect across protocols (claim C9; {test[C9]}, {n[C9]}).** A "
        "specification curve: for every protocol (the main grid and each variant trained "
        "beside it, named with what it changes) and every architecture, the effect of "
        "weight decay on test accuracy -- the Hodges–Lehmann shift of the seed-paired "
        "differences with its CI, as ``results/tables/effects.csv`` states them (the "
        "claims step's own numbers) -- sorted by size and coloured by its outcome: "
        "improves, harms, or no detectable change (Holm-adjusted signed-rank tests). "
        "Larger diamonds: the headline architectures. A hollow grey circle marks an effect "
        "where most runs of an arm diverged (its interval is left out of the axis range; "
        "its label gives the counts and the outcome, *not comparable* where every run of "
        "both arms failed, chance against chance). "
        "Right: each protocol's own verdict. " + _HEADER_NOTE),
)}

#: Figure names in drawing order (figure_outputs() in the Snakefile).
NAMES: tuple[str, ...] = tuple(REGISTRY)


def get(name: str) -> Figure:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown figure {name!r}; valid: {', '.join(NAMES)}") from None


def figure_of(cid: str) -> str:
    """``figures/{name}.png`` of the figure that decides claim ``cid`` (the first claim
    of its record), else of the first figure showing it; "" for none."""
    deciding = [f for f in REGISTRY.values() if f.claims[0] == cid]
    showing = [f for f in REGISTRY.values() if cid in f.claims]
    chosen = (deciding or showing or [None])[0]
    return f"figures/{chosen.name}.png" if chosen else ""

