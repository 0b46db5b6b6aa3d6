"""C8, tuned arms: per architecture, top, the test accuracy of the best-tuned run with
weight decay and of that run's exact LR-schedule equivalent minus that of the best-tuned
run without weight decay of the same seed (Hodges-Lehmann shift and CI, as the verdict),
against C8's margin; bottom, the validation accuracy of every candidate (learning rate ×
λ) the selection chose from, the selected ones ringed. The selection is C8's own, read
from claims.json, so the figure shows exactly the arms the verdict compared."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from . import panels, style
from .claims_view import ClaimsView
from .data import GRID_KIND, kinds, main_protocol, paired, with_columns
from .registry import get

FIGURE = get("tuned")
BASELINE = "no WD, tuned"
ARMS = ("WD, tuned", "exact equivalent")


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
    return pd.concat([at(GRID_KIND, no_wd).assign(arm=BASELINE),
                      at(GRID_KIND, wd).assign(arm=ARMS[0]),
                      at("exact", wd).assign(arm=ARMS[1])], ignore_index=True)


def _arms_panel(ax, frame: pd.DataFrame, arch: str, selected: dict, margin_pp) -> None:
    diff = paired(frame, frame["arm"] == BASELINE)
    panels.paired_panel(ax, diff.assign(x=diff["arm"].map({a: i for i, a in enumerate(ARMS)})),
                        style.colour(arch), bound=margin_pp, connect=False)
    wd = selected["weight_decay"]
    trained = (frame["arm"] == ARMS[1]).any()
    panels.named_xticks(ax, [f"{ARMS[0]}\nη={wd['lr']:g}, λ={wd['weight_decay']:g}",
                             ARMS[1] if trained else f"{ARMS[1]}\n(not trained)"], size=0.8)
    ax.set(xlabel="", ylabel="")


def _candidates_panel(ax, cell: dict, arch: str) -> None:
    table = pd.DataFrame(cell.get("candidates") or [])
    if table.empty:
        panels.empty(ax)
        return
    wds = sorted(table["weight_decay"].astype(float).unique())
    # the learning rates in increasing order, light to dark (the table is sorted by score)
    order = [f"η = {v:g}" for v in sorted(table["lr"].astype(float).unique())]
    table = table.assign(x=table["weight_decay"].astype(float).map(wds.index),
                         val=100 * table["val_acc_mean"].astype(float),
                         lr=[f"η = {float(v):g}" for v in table["lr"]])
    shades = sns.light_palette(style.colour(arch), n_colors=len(order) + 1)[1:]
    sns.lineplot(table, x="x", y="val", hue="lr", hue_order=order, palette=shades, style="lr",
                 style_order=order, markers=True, dashes=False, markersize=5, linewidth=1.0,
                 ax=ax)
    for point in cell["selected"].values():
        ax.scatter(wds.index(float(point["weight_decay"])), 100 * point["val_acc_mean"], s=90,
                   facecolors="none", edgecolors="black", linewidths=1.0, zorder=5,
                   gid="selected")
    panels.named_xticks(ax, [f"{w:g}" for w in wds], rotation=30)
    ax.set(xlabel="λ", ylabel="")
    ax.legend(fontsize="x-small", title=None)
    panels.ygrid(ax)


def _tuned(target, runs, per_arch, names, margin_pp) -> None:
    top, bottom = style.split(target, [3.0, 2.6])
    upper = top.subplots(1, len(names), sharey=True, squeeze=False)[0]
    lower = bottom.subplots(1, len(names), sharey=True, squeeze=False)[0]
    for ax, ax_val, label in zip(upper, lower, names):
        cell, parts = per_arch[label], label.split("/")
        arch = parts[-1]
        mine = runs["arch"] == arch
        if len(parts) == 3:  # claims.json labels 'dataset/optimiser/arch' when several
            mine &= (runs["dataset"] == parts[0]) & (runs["optimiser"] == parts[1])
        _arms_panel(ax, arms(runs[mine], cell["selected"]), arch, cell["selected"], margin_pp)
        style.arch_title(ax, arch)
        _candidates_panel(ax_val, cell, arch)
    upper[0].set_ylabel("Δ test accuracy vs tuned\nno WD of the seed (pp)")
    lower[0].set_ylabel("validation accuracy (%),\nmean over seeds")


def _legend(margin_pp):
    handles = [panels.HL_HANDLE, panels.SEED_HANDLE,
               Line2D([], [], color="black", marker="o", markerfacecolor="none",
                      markersize=9, linestyle="", label="selected on validation")]
    if margin_pp is not None:
        handles.append(panels.bound_handle(f"C8 margin: improvement < {margin_pp:g} pp"))
    return handles


@style.themed
def draw(tables, claims: ClaimsView):
    runs = with_columns(main_protocol(tables["runs"]), "arch", "kind", "lr", "weight_decay",
                        "seed", "test_acc")
    per_arch = claims.measured("C8").get("per_arch") or {}
    names = [a for a in per_arch if a.split("/")[-1] in set(runs["arch"])] or list(per_arch)
    margin = claims.number("C8", "margin")
    margin_pp = 100 * margin if margin is not None else None
    cv = style.canvas(2.3 * max(len(names), 3) + 0.8, 5.8 if names else 1.2, 1,
                      style.Header(claims, FIGURE.claims, FIGURE.title),
                      _legend(margin_pp) if names else ())
    if names:
        _tuned(cv.blocks[0], runs, per_arch, names, margin_pp)
    else:
        reason = claims.measured("C8").get("reason") or "no tuned comparison in claims.json"
        ax = cv.blocks[0].subplots()
        panels.empty(ax, "\n".join(textwrap.wrap(f"not tuned: {reason}", 70)))
        ax.set_axis_off()
    return cv.fig
