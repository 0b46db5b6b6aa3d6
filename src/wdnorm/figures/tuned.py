"""C8, tuned arms: per architecture, top, the test accuracy of the best-tuned run without
weight decay, the best-tuned run with it and that run's exact LR-schedule equivalent,
paired by seed; bottom, the validation accuracy of every candidate (learning rate × λ)
the selection chose from, the selected ones ringed. The selection is C8's own, read
from claims.json, so the figure shows exactly the arms the verdict compared."""

from __future__ import annotations

import textwrap

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from . import panels, style
from .claims_view import ClaimsView
from .data import GRID_KIND, kinds, with_columns
from .registry import get

FIGURE = get("tuned")
ARMS = ("no WD, tuned", "WD, tuned", "exact equivalent")
LR_MARKERS = ("o", "s", "^", "D", "v", "P")


def _close(series: pd.Series, value: float) -> pd.Series:
    return pd.Series(np.isclose(series.astype(float), value, rtol=1e-9, atol=0.0),
                     index=series.index)


def arms(runs: pd.DataFrame, selected: dict) -> pd.DataFrame:
    """The runs of the three arms of one architecture, with an ``arm`` column."""
    def at(kind: str, point: dict) -> pd.DataFrame:
        rows = runs[kinds(runs) == kind]
        return rows[_close(rows["lr"], point["lr"])
                    & _close(rows["weight_decay"], point["weight_decay"])]
    wd, no_wd = selected["weight_decay"], selected["no_weight_decay"]
    return pd.concat([at(GRID_KIND, no_wd).assign(arm=ARMS[0]),
                      at(GRID_KIND, wd).assign(arm=ARMS[1]),
                      at("exact", wd).assign(arm=ARMS[2])], ignore_index=True)


def _arms_panel(ax, frame: pd.DataFrame, arch: str, selected: dict) -> None:
    x = frame["arm"].map({a: i for i, a in enumerate(ARMS)})
    panels.paired_seeds(ax, frame, x, "test_acc", style.colour(arch), scale=100.0)
    wd, no_wd = selected["weight_decay"], selected["no_weight_decay"]
    labels = [f"{ARMS[0]}\nη={no_wd['lr']:g}",
              f"{ARMS[1]}\nη={wd['lr']:g}, λ={wd['weight_decay']:g}",
              ARMS[2] if (frame["arm"] == ARMS[2]).any() else f"{ARMS[2]}\n(not trained)"]
    ax.set_xticks(range(len(ARMS)), labels, fontsize=mpl.rcParams["xtick.labelsize"] * 0.8,
                  rotation=30, ha="right", rotation_mode="anchor")
    ax.set_xlim(-0.5, len(ARMS) - 0.5)
    panels.ygrid(ax)


def _candidates_panel(ax, cell: dict, arch: str) -> None:
    table = pd.DataFrame(cell.get("candidates") or [])
    if table.empty:
        panels.empty(ax)
        return
    wds = sorted(table["weight_decay"].astype(float).unique())
    position = {w: i for i, w in enumerate(wds)}
    for k, (lr, rows) in enumerate(table.groupby("lr", sort=True)):
        rows = rows.sort_values("weight_decay")
        ax.plot(rows["weight_decay"].map(position), 100 * rows["val_acc_mean"].astype(float),
                marker=LR_MARKERS[k % len(LR_MARKERS)], color=style.colour(arch),
                alpha=0.4 + 0.6 * (k + 1) / table["lr"].nunique(), markersize=4,
                linewidth=1.0, label=f"η = {float(lr):g}")
    for point in cell["selected"].values():
        ax.scatter(position[point["weight_decay"]], 100 * point["val_acc_mean"], s=90,
                   facecolors="none", edgecolors="black", linewidths=1.0, zorder=5)
    ax.set_xticks(range(len(wds)), [f"{w:g}" for w in wds], rotation=30, ha="right",
                  rotation_mode="anchor")
    ax.set_xlabel("λ")
    ax.legend(fontsize=mpl.rcParams["legend.fontsize"] * 0.8, loc="lower left")
    panels.ygrid(ax)


@style.themed
def draw(tables, claims: ClaimsView):
    runs = with_columns(tables["runs"], "arch", "kind", "lr", "weight_decay", "seed", "test_acc")
    per_arch = claims.measured("C8").get("per_arch") or {}
    names = [a for a in per_arch if a in set(runs.get("arch", []))] or list(per_arch)
    handles = [Line2D([], [], color="black", marker="o", label="mean, 95% t-interval over seeds"),
               Line2D([], [], color="black", alpha=0.3, linewidth=0.6, label="one seed"),
               Line2D([], [], color="black", marker="o", markerfacecolor="none",
                      markersize=9, linestyle="", label="selected on validation")]
    cv = style.canvas(2.3 * max(len(names), 3) + 0.8, 5.6 if names else 1.6, 1, 1,
                      style.legend_rows(handles, 3))
    target = cv.blocks[0]
    if not names:
        reason = claims.measured("C8").get("reason") or "no tuned comparison in claims.json"
        ax = target.subplots()
        panels.empty(ax, "\n".join(textwrap.wrap(f"not tuned: {reason}", 70)))
        ax.set_axis_off()
    else:
        top, bottom = style.split(target, [3.0, 2.6])
        upper = top.subplots(1, len(names), sharey=True, squeeze=False)[0]
        lower = bottom.subplots(1, len(names), sharey=True, squeeze=False)[0]
        for ax, ax_val, label in zip(upper, lower, names):
            cell, parts = per_arch[label], label.split("/")
            arch = parts[-1]
            mine = runs["arch"] == arch
            if len(parts) == 3:  # claims.json labels 'dataset/optimiser/arch' when several
                mine &= (runs["dataset"] == parts[0]) & (runs["optimiser"] == parts[1])
            frame = arms(runs[mine], cell["selected"])
            _arms_panel(ax, frame, arch, cell["selected"])
            ax.set_title(f"{style.label(arch)}\n{style.invariance_tag(arch)}",
                         color=style.colour(arch), fontsize=mpl.rcParams["axes.titlesize"] * 0.85)
            _candidates_panel(ax_val, cell, arch)
        upper[0].set_ylabel("test accuracy (%)")
        lower[0].set_ylabel("validation accuracy (%),\nmean over seeds")
    cv.legend(handles, ncol=3)
    style.header(cv, claims, FIGURE.claims, FIGURE.title, "")
    return cv.fig
