"""C2, on trained nets: (a) the hidden-layer penalty relative to the trained one as the
invariant layers shrink together by a -- solid while the train loss stays within the
tolerance with the model's ε, pale beyond (valid only with ε ≈ 0), a star where the
shrink stops (the ε floor); (b) the relative train-loss change this costs; (c) the
penalty after the best symmetry transform over the penalty before, per architecture."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import ticker as mticker
from matplotlib.lines import Line2D

from . import panels, style
from .claims_view import ClaimsView
from .data import settings
from .registry import get

FIGURE = get("penalty_removal")
#: Relative train-loss change allowed when removing the penalty (C2's default).
LOSS_TOL = 1e-4
#: Loss changes of exactly 0 (float32 cannot resolve less) are drawn at this level.
LOSS_FLOOR = 1e-9
#: A ratio of exactly 0 is drawn here on the log axis.
RATIO_FLOOR = 1e-30
METHOD_SHORT = {"invariant_shrink": "shrink", "relu_rebalance": "rebalance", "none": "none"}
_VARIANTS = (("eps0", 0.35, 1.0), ("model_eps", 1.0, 1.5))  # (variant, alpha, linewidth)


def _loss_tol(claims: ClaimsView, penalty: pd.DataFrame) -> float:
    default = LOSS_TOL
    if "rel_tol" in penalty and penalty["rel_tol"].notna().any():
        default = float(penalty["rel_tol"].dropna().iloc[0])
    return claims.tolerance("c2_rel_loss", default)


def _floor(part: pd.DataFrame, pen: pd.DataFrame, tol: float):
    """(scale, relative penalty) where the shrink stops: the penalty table's bisection
    result for the curve's run, else the last curve point within ``tol`` (the curve is
    sorted by decreasing scale)."""
    if {"run_id", "scale", "ratio"} <= set(pen) and "run_id" in part:
        row = pen[(pen["run_id"] == part["run_id"].iloc[0]) & (pen["arch"] == part["arch"].iloc[0])]
        row = row[np.isfinite(row["scale"].astype(float))]
        if len(row):
            return float(row["scale"].iloc[0]), float(row["ratio"].iloc[0])
    within = (part["rel_loss_change"].abs() <= tol).to_numpy()
    last = (np.argmin(within) if not within.all() else len(part)) - 1
    if last < 0:
        return math.nan, math.nan
    return float(part["scale"].iloc[last]), float(part["rel_penalty"].iloc[last])


def _curve(ax_pen, ax_loss, curve, pen, arch, tol) -> str | None:
    """Both variants' curves of one architecture; its floor's note (model ε)."""
    colour = style.colour(arch)
    variants = curve["variant"] if "variant" in curve else pd.Series("model_eps", curve.index)
    note = None
    for variant, alpha, width in _VARIANTS:
        part = curve[(curve["arch"] == arch) & (variants == variant)]
        if part.empty:
            continue
        part = part.sort_values("scale", ascending=False)
        ref = part.loc[np.isclose(part["scale"], 1.0), "penalty"]
        base = float(ref.iloc[0]) if len(ref) else float(part["penalty"].max())
        part = part.assign(rel_penalty=part["penalty"] / base)
        loss = part["rel_loss_change"].abs().clip(lower=LOSS_FLOOR)
        ax_loss.plot(part["scale"], loss, color=colour, alpha=alpha, linewidth=width)
        if variant == "eps0":
            ax_pen.plot(part["scale"], part["rel_penalty"], color=colour, alpha=alpha,
                        linewidth=width)
            continue
        scale, ratio = _floor(part, pen, tol)
        if not np.isfinite(scale):
            continue
        keep = part["scale"] >= scale
        ax_pen.plot(np.r_[part["scale"][keep], scale], np.r_[part["rel_penalty"][keep], ratio],
                    color=colour, linewidth=width, zorder=3)
        ax_pen.plot([scale], [ratio], marker="*", markersize=10, color=colour, linestyle="",
                    markeredgecolor="black", markeredgewidth=0.4, zorder=5)
        ax_loss.axvline(scale, color=colour, linewidth=0.7, linestyle=":")
        left = f"{ratio:.0%}" if ratio >= 0.01 else f"{ratio:.1g}"
        note = f"{arch}: a = {scale:.2g}, {left} left"
    return note


def _curves(ax_pen, ax_loss, curve, pen, names, tol) -> None:
    if curve is None or curve.empty:
        panels.empty(ax_pen, "no penalty curve")
        panels.empty(ax_loss, "no penalty curve")
        return
    floors = [n for n in (_curve(ax_pen, ax_loss, curve, pen, a, tol) for a in names) if n]
    for ax in (ax_pen, ax_loss):
        ax.set(xscale="log", yscale="log", xlabel="shrink factor a of the invariant layers")
        ax.invert_xaxis()
        panels.decade_ticks(ax.xaxis, float(curve["scale"].min()), float(curve["scale"].max()))
        ax.grid(color=style.GRID_COLOUR, linewidth=0.6)
    ax_pen.set_ylabel("hidden penalty / trained penalty")
    panels.threshold(ax_loss, tol, f"tolerance {tol:g}")
    ax_loss.set_ylabel("|relative change of the train loss|")
    ax_loss.set_ylim(bottom=LOSS_FLOOR / 3)
    panels.note(ax_loss, f"0 drawn at {LOSS_FLOOR:g}", "lower right")
    runs = list(dict.fromkeys(curve["run_id"].astype(str))) if "run_id" in curve else []
    text = ([f"run {runs[0]}"] if len(runs) == 1 else []) + (
        ["ε floor (star):"] + floors if floors else [])
    if text:
        panels.note(ax_pen, "\n".join(text), "upper right")


#: (column, label, colour) of the two penalty ratios panel (c) shows.
RATIOS = (("ratio", "model ε", "#333333"), ("ratio_eps0", "ε ≈ 0", "#a6a6a6"))


def _ratio_dots(ax, pen: pd.DataFrame, names) -> None:
    """Every run's hidden penalty after / before with the model's ε and with ε ≈ 0
    (dots; a log axis, so no bars: only positions mean something), and their medians
    (bars across), for the runs with λ > 0; the method beside each architecture."""
    if pen.empty:
        panels.empty(ax, "no penalty table")
        return
    use = pen[pen["weight_decay"] > 0] if (pen["weight_decay"] > 0).any() else pen
    series = [r for r in RATIOS if r[0] in use]
    long = use.melt(id_vars=["arch"], value_vars=[r[0] for r in series], var_name="col",
                    value_name="value")
    long = long[np.isfinite(long["value"].astype(float))].assign(
        variant=lambda f: f["col"].map({c: lab for c, lab, _ in series}),
        value=lambda f: f["value"].astype(float).clip(lower=RATIO_FLOOR))
    colours = {lab: c for _, lab, c in series}
    offset = {lab: (k - (len(series) - 1) / 2) * 0.36 for k, (_, lab, _) in enumerate(series)}
    rng = np.random.default_rng(style.RNG_SEED)  # seaborn's own jitter is unseeded
    long = long.assign(x=long["arch"].map({a: i for i, a in enumerate(names)})
                       + long["variant"].map(offset))
    common = dict(y="value", hue="variant", hue_order=list(colours), palette=colours,
                  legend=False, ax=ax)
    sns.scatterplot(long.assign(jittered=long["x"] + rng.uniform(-0.08, 0.08, len(long))),
                    x="jittered", s=6, alpha=0.6, linewidth=0, **common)
    sns.pointplot(long, x="x", native_scale=True, estimator="median", errorbar=None,
                  linestyle="none", marker="_", markersize=16, markeredgewidth=2.2, **common)
    ax.set_yscale("log")
    ax.axhline(1.0, color="black", linewidth=0.6)
    methods = use.groupby("arch")["method"].agg(lambda m: m.mode().iloc[0]) \
        if "method" in use else pd.Series(dtype=str)
    labels = [f"{a} ({METHOD_SHORT.get(methods.get(a, ''), methods.get(a, ''))})"
              if a in methods else a for a in names]
    ax.set_xticks(range(len(names)), labels, rotation=40, ha="right", rotation_mode="anchor")
    ax.set_xlim(-0.6, len(names) - 0.4)
    style.colour_ticklabels(ax.get_xticklabels(), names)
    ax.yaxis.set_major_locator(mticker.LogLocator(base=10, numticks=8))
    ax.yaxis.set_minor_locator(mticker.NullLocator())
    ax.set(xlabel="", ylabel="hidden penalty after / before")
    panels.ygrid(ax)


def _legend(names):
    return [Line2D([], [], color=style.colour(a), label=style.label(a)) for a in names] + [
        Line2D([], [], color="black", linewidth=1.5, label="(a, b) model ε"),
        Line2D([], [], color="black", linewidth=1.0, alpha=0.35, label="(a, b) ε ≈ 0 (ideal symmetry)"),
        Line2D([], [], color="black", marker="*", linestyle="", markersize=8,
               label="ε floor: smallest a within tolerance"),
        *[Line2D([], [], color=c, marker="o", linestyle="", markersize=3,
                 label=f"(c) one run, {lab}") for _, lab, c in RATIOS],
        Line2D([], [], color="black", marker="_", linestyle="", markersize=10,
               markeredgewidth=2, label="(c) median over runs")]


@style.themed
def draw(tables, claims: ClaimsView):
    penalty, curve_all = tables["penalty"], tables["penalty_curve"]
    tol = _loss_tol(claims, penalty)
    blocks = settings(penalty, curve_all)
    # the architectures with a shrink curve: the others appear in (c) only
    handles = _legend(style.order(curve_all.get("arch", [])))
    cv = style.canvas(10.0, 3.7, len(blocks), style.Header(
        claims, FIGURE.claims, FIGURE.title, blocks[0][0] if len(blocks) == 1 else ""), handles)
    for (label_text, (pen, curve)), target in zip(blocks, cv.blocks):
        names = style.order([*pen.get("arch", []),
                             *(curve.get("arch", []) if curve is not None else [])])
        ax_pen, ax_loss, ax_bar = target.subplots(
            1, 3, gridspec_kw=dict(width_ratios=[1, 1, 1.2 + 0.06 * len(names)]))
        _curves(ax_pen, ax_loss, curve, pen, names, tol)
        _ratio_dots(ax_bar, pen, names)
        ax_pen.set_title("(a) penalty as the layers shrink")
        ax_loss.set_title("(b) its cost in train loss")
        ax_bar.set_title("(c) removable penalty, runs with λ > 0")
        style.setting_title(target, blocks, label_text)
    return cv.fig
