"""C6: test accuracy against the hidden-layer weight decay λ, one column per
architecture, the runs of one seed joined (same initialisation and batch order); the
paired differences to λ = 0 in test accuracy and generalisation gap; and, per
architecture x λ, the share of runs that collapsed into the ε floor or diverged."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from . import panels, style
from .claims_view import ClaimsView
from .data import claim_weight_decay, grid_runs, paired_difference, settings, sorted_unique, \
    status_rates
from .registry import get

FIGURE = get("accuracy_vs_wd")
#: (column, y label, what is drawn): the level, then the paired differences to λ = 0.
ROWS = (("test_acc", "test accuracy (%)", "level"),
        ("test_acc", "Δ test accuracy\nvs λ = 0 (pp)", "paired"),
        ("gen_gap_acc", "Δ train − test acc.\nvs λ = 0 (pp)", "paired"))


def _row(ax, part, axis, column, kind, colour) -> None:
    if column not in part or not np.isfinite(part[column].astype(float)).any():
        panels.empty(ax)
        return
    frame = part
    value = column
    if kind == "paired":
        frame = paired_difference(part, column)
        frame = frame[frame["weight_decay"].astype(float) > 0]
        value = "diff"
        ax.axhline(0.0, color="black", linewidth=0.7, zorder=1)
        if frame.empty:
            panels.empty(ax, "no λ = 0 baseline")
            return
    x = pd.Series(axis.x(frame["weight_decay"]), index=frame.index)
    panels.paired_seeds(ax, frame, x, value, colour, scale=100.0)


def _curves(target, grid, names, claim_wd) -> None:
    axis = panels.WdAxis(grid["weight_decay"])
    axes = target.subplots(len(ROWS), len(names), sharex=True, sharey="row", squeeze=False)
    for c, arch in enumerate(names):
        part = grid[grid["arch"] == arch]
        for r, (column, ylabel, kind) in enumerate(ROWS):
            ax = axes[r, c]
            _row(ax, part, axis, column, kind, style.colour(arch))
            axis.mark_break(ax)
            if claim_wd is not None and claim_wd > 0:
                ax.axvline(claim_wd, color="#999999", linewidth=4, alpha=0.25, zorder=0,
                           gid="claim-wd")
            panels.ygrid(ax)
            if c == 0:
                ax.set_ylabel(ylabel)
        axes[0, c].set_title(f"{arch}\n{style.invariance_tag(arch)}", color=style.colour(arch),
                             fontsize=mpl.rcParams["axes.titlesize"] * 0.9)
        axes[-1, c].set_xlabel("λ")
    axis.setup(axes[0, 0])


def _rates(target, grid, names, claim_wd) -> None:
    rates = status_rates(grid, ["arch", "weight_decay"])
    wds = sorted_unique(grid["weight_decay"])
    axes = target.subplots(1, 2, sharey=True)
    for ax, (status, cmap, title) in zip(axes, (
            ("collapsed", "Oranges", "runs collapsed into the ε floor"),
            ("diverged", "Reds", "runs diverged"))):
        panels.share_heatmap(ax, rates, names, wds, status, cmap=cmap, mark_wd=claim_wd)
        ax.set_title(title)
        ax.set_xlabel("λ")


def _block(target, grid, claim_wd) -> None:
    names = style.order(grid["arch"])
    curves, rates = style.split(target, [3 * 1.35, 0.6 + 0.2 * len(names)])
    _curves(curves, grid, names, claim_wd)
    _rates(rates, grid, names, claim_wd)
    n_lr = ", ".join(f"{v:g}" for v in sorted(grid["lr"].unique()))
    curves.suptitle(f"grid runs at η = {n_lr}", fontsize=mpl.rcParams["axes.labelsize"])


def _legend():
    return [Line2D([], [], color="black", marker="o", label="mean, 95% t-interval over seeds"),
            Line2D([], [], color="black", alpha=0.3, linewidth=0.6, label="one seed"),
            Line2D([], [], color="black", marker="x", linestyle="",
                   label="diverged (chance accuracy)"),
            Line2D([], [], color="black", marker="o", markerfacecolor="white", linestyle="",
                   label="collapsed into the ε floor"),
            Patch(facecolor="#999999", alpha=0.25, label="C6's pre-declared λ")]


@style.themed
def draw(tables, claims: ClaimsView):
    runs = tables["runs"]
    claim_wd = claim_weight_decay(runs, claims.declared_weight_decay()) if len(runs) else None
    blocks = settings(runs)
    n_archs = max(len(style.order(runs["arch"])) if len(runs) else 1, 1)
    handles = _legend()
    cv = style.canvas(1.35 * n_archs + 1.2, 3 * 1.35 + 1.6 + 0.2 * n_archs, len(blocks), 1,
                      style.legend_rows(handles, 3))
    for (label_text, (sub,)), target in zip(blocks, cv.blocks):
        grid = grid_runs(sub) if len(sub) else sub
        if grid.empty:
            panels.empty(target.subplots(), "no grid runs")
        else:
            _block(target, grid, claim_wd)
        style.setting_title(target, blocks, label_text)
    cv.legend(handles, ncol=3)
    style.header(cv, claims, FIGURE.claims, FIGURE.title,
                 blocks[0][0] if len(blocks) == 1 else "")
    return cv.fig
