"""C5: the matched (η, λ) pairs of one product ηλ, per architecture: the equilibrium RMS
angular update (top; dashed: the prediction) and the test accuracy (bottom), the runs
of one seed joined across pairs, with C5's equivalence margin where claims.json states
it. Flat lines within the margin = "only ηλ matters"; plain is the contrast."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from . import panels, style
from .claims_view import ClaimsView
from .data import GRID_KIND, as_bool, column, kinds, settings
from .registry import get

FIGURE = get("lr_wd_collapse")
RUN_KEYS = ("arch", "run_id")


def run_angles(dyn: pd.DataFrame) -> pd.DataFrame:
    """One equilibrium angle per run: the mean ``angle_rms`` over the layers predicted
    invariant, or over all hidden layers where none is; reached = all of them reached."""
    cols = [*RUN_KEYS, "angle", "angle_pred", "reached"]
    if dyn is None or dyn.empty or "angle_rms" not in dyn:
        return pd.DataFrame(columns=cols)
    hidden = dyn[~as_bool(column(dyn, "is_head", False))]
    rows = []
    for key, group in hidden.groupby(list(RUN_KEYS), sort=False):
        invariant = group[as_bool(column(group, "predicted_invariant", False))]
        use = invariant if len(invariant) else group
        rows.append(dict(zip(RUN_KEYS, key), angle=float(use["angle_rms"].mean()),
                         angle_pred=float(use["angle_pred"].median()),
                         reached=bool(as_bool(column(use, "equilibrium_reached", True)).all())))
    return pd.DataFrame(rows, columns=cols)


def matched_pairs(runs: pd.DataFrame) -> pd.DataFrame:
    if runs.empty:
        return runs
    return runs[(kinds(runs) == GRID_KIND) & as_bool(column(runs, "is_matched_pair", False))]


def _column(axes, part, points, margin) -> None:
    """One architecture's two panels; ``points`` maps (η, λ) to an x position."""
    colour = style.colour(part["arch"].iloc[0])
    x = pd.Series([points[(float(a), float(b))] for a, b in zip(part["lr"], part["weight_decay"])],
                  index=part.index)
    for ax, value, scale in ((axes[0], "angle", 1.0), (axes[1], "test_acc", 100.0)):
        if not np.isfinite(part[value].astype(float)).any():
            panels.empty(ax)
            continue
        panels.paired_seeds(ax, part, x, value, colour, scale)
        panels.ygrid(ax)
    not_reached = part[~part["reached"].fillna(False).astype(bool) & np.isfinite(part["angle"])]
    if len(not_reached):
        axes[0].scatter(x[not_reached.index], not_reached["angle"], marker="o", s=18,
                        facecolors="white", edgecolors=colour, zorder=5, gid="not-reached")
    if np.isfinite(part["angle_pred"].astype(float)).any():
        axes[0].axhline(float(np.nanmedian(part["angle_pred"])), color="black",
                        linestyle="--", linewidth=0.7)
    if margin is not None:
        centre = 100 * part.groupby(x)["test_acc"].mean().mean()
        axes[1].axhspan(centre - 100 * margin, centre + 100 * margin, color="#dddddd",
                        linewidth=0, zorder=0, gid="margin")


def _block(target, pairs, dyn, names, margin) -> None:
    merged = pairs.merge(run_angles(dyn), on=list(RUN_KEYS), how="left")
    points = sorted({(float(a), float(b)) for a, b in zip(pairs["lr"], pairs["weight_decay"])},
                    reverse=True)
    position = {p: i for i, p in enumerate(points)}
    axes = target.subplots(2, max(len(names), 1), sharex=True, sharey="row", squeeze=False)
    for c, arch in enumerate(names):
        part = merged[merged["arch"] == arch]
        if part.empty:
            panels.empty(axes[0, c])
            panels.empty(axes[1, c])
        else:
            _column(axes[:, c], part, position, margin)
        axes[0, c].set_title(f"{arch}\n{style.invariance_tag(arch)}", color=style.colour(arch),
                             fontsize=mpl.rcParams["axes.titlesize"] * 0.9)
    # x is shared by every panel: ticks and limits once (per axis costs quadratic time)
    axes[0, 0].set_xticks(range(len(points)), [f"{a:g}" for a, _ in points])
    axes[0, 0].set_xlim(-0.5, max(len(points), 1) - 0.5)
    for ax in axes[-1]:
        ax.set_xlabel("η")
    axes[0, 0].set_ylabel("equilibrium RMS angular\nupdate (rad/step)")
    axes[1, 0].set_ylabel("test accuracy (%)")
    text = ", ".join(f"({a:g}, {b:g})" for a, b in points)
    products = " / ".join(sorted({f"{a * b:.3g}" for a, b in points}))
    target.supxlabel(f"matched pairs (η, λ) = {text}: ηλ = {products}" if points else
                     "no matched pairs", fontsize=mpl.rcParams["axes.labelsize"])


def _legend(margin):
    handles = [Line2D([], [], color="black", marker="o", label="mean, 95% t-interval"),
               Line2D([], [], color="black", alpha=0.3, linewidth=0.6, label="one seed"),
               Line2D([], [], color="black", linestyle="--", label="predicted √(2ηλ/(1+α))"),
               Line2D([], [], color="black", marker="o", markerfacecolor="white",
                      linestyle="", label="angle: equilibrium not reached"),
               Line2D([], [], color="black", marker="x", linestyle="", label="diverged run")]
    if margin is not None:
        handles.append(Patch(facecolor="#dddddd", label=f"C5 margin ±{100 * margin:.2g} pp"))
    return handles


@style.themed
def draw(tables, claims: ClaimsView):
    runs, dynamics = tables["runs"], tables["dynamics"]
    pairs_all = matched_pairs(runs)
    blocks = settings(pairs_all, dynamics)
    names = style.order(pairs_all["arch"]) if len(pairs_all) else []
    margin = claims.number("C5", "margin")
    handles = _legend(margin)
    cv = style.canvas(1.35 * max(len(names), 1) + 1.0, 4.4, len(blocks), 1,
                      style.legend_rows(handles, 3))
    for (label_text, (pairs, dyn)), target in zip(blocks, cv.blocks):
        if pairs.empty:
            panels.empty(target.subplots(), "no matched-pair runs")
        else:
            _block(target, pairs, dyn, style.order(pairs["arch"]), margin)
        style.setting_title(target, blocks, label_text)
    cv.legend(handles, ncol=3)
    style.header(cv, claims, FIGURE.claims, FIGURE.title,
                 blocks[0][0] if len(blocks) == 1 else "")
    return cv.fig
