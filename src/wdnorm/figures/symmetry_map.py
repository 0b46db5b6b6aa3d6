"""C1, the symmetry map: log10 relative logit change for scaling one hidden layer (or all
of them, "joint") by a, per architecture (BatchNorm in its three modes), one heatmap per
a. Circles mark the cells predicted invariant; a black frame marks a measurement that
contradicts the prediction; "ε" a cell whose verdict flips with the model's own ε."""

from __future__ import annotations

import math

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import colors as mcolors
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from . import panels, style
from .claims_view import ClaimsView
from ..frames import as_bool
from .data import settings, with_columns
from .registry import get

FIGURE = get("symmetry_map")
#: Relative output change below which a probe counts as invariant (C1's default).
SYMMETRY_TOL = 1e-5
#: log10 floor for relative changes that are exactly 0 (float64 resolution).
LOG_FLOOR = -17.0
BN_MODE_LABELS = {"train": "train (batch stats)", "eval": "eval (stats kept)",
                  "eval_rescaled": "eval (stats rescaled)"}
_BOOL_COLUMNS = ("predicted_invariant", "matches_prediction", "invariant", "invariant_model_eps")


def _rows(sym: pd.DataFrame) -> list[tuple[str, str]]:
    rows = []
    for arch in style.order(sym["arch"]):
        modes = list(dict.fromkeys(sym.loc[sym["arch"] == arch, "mode"]))
        ordered = [m for m in BN_MODE_LABELS if m in modes] + [m for m in modes
                                                               if m not in BN_MODE_LABELS]
        rows += [(arch, m) for m in ordered]
    return rows


def _row_label(arch: str, mode: str, n_modes: int) -> str:
    if n_modes == 1 and mode == "eval":
        return style.label(arch)
    return f"{style.label(arch)}  [{BN_MODE_LABELS.get(mode, mode)}]"


def _columns(sym: pd.DataFrame):
    layers = sym[sym["transform"] == "layer"]
    top = int(layers["layer_index"].max()) if len(layers) else -1
    cols = [("layer", i) for i in range(top + 1)] + [("joint", -1)]
    names = ["\n".join(dict.fromkeys(layers.loc[layers["layer_index"] == i, "layer"]))
             for i in range(top + 1)] + ["joint\n(all)"]
    return cols, names


def _cells(sym: pd.DataFrame, a: float, rows, cols) -> pd.DataFrame:
    """One row per map cell of scale ``a`` (rows x columns of the map), with its log10
    change (floored), and whether it was predicted invariant, contradicts the
    prediction, or flips with the model's own ε; NaN where there is no such layer."""
    cells = sym[np.isclose(sym["scale"], a)].assign(
        log=lambda f: np.log10(f["rel_change"].astype(float).clip(lower=1e-300)).clip(LOG_FLOOR),
        mismatch=lambda f: ~f["matches_prediction"].astype(bool),
        flip=lambda f: (f["invariant_model_eps"] != f["invariant"]) if "invariant_model_eps" in f
        else False)
    index = pd.MultiIndex.from_tuples(rows, names=["arch", "mode"])
    columns = pd.MultiIndex.from_tuples(cols, names=["transform", "layer_index"])
    return {name: cells.pivot_table(index=["arch", "mode"], columns=["transform", "layer_index"],
                                    values=name, aggfunc="first").reindex(index=index,
                                                                         columns=columns)
            for name in ("log", "predicted_invariant", "mismatch", "flip")}


def _heatmap(ax, sym, a, rows, cols, col_names, cmap, norm):
    cells = _cells(sym, a, rows, cols)
    ax.set_facecolor("#e6e6e6")
    sns.heatmap(cells["log"], mask=cells["log"].isna(), cmap=cmap, norm=norm, cbar=False,
                linewidths=0.6, linecolor="white", ax=ax)
    mesh = ax.collections[-1]
    marks = {k: np.nonzero(cells[k].fillna(False).astype(bool).to_numpy())
             for k in ("predicted_invariant", "mismatch", "flip")}
    rr, cc = marks["predicted_invariant"]
    ax.scatter(cc + 0.5, rr + 0.5, s=20, facecolors="none", edgecolors="black",
               linewidths=0.8, zorder=3)
    for r, c in zip(*marks["mismatch"]):
        ax.add_patch(Rectangle((c + 0.07, r + 0.07), 0.86, 0.86, fill=False,
                               edgecolor="black", linewidth=2.0, zorder=4, gid="mismatch"))
    for r, c in zip(*marks["flip"]):
        ax.text(c + 0.84, r + 0.32, "ε", ha="center", va="center", fontsize=6.5, zorder=5)
    n_modes = sym.groupby("arch")["mode"].nunique().to_dict()
    ax.set_xticks(np.arange(len(cols)) + 0.5, col_names, rotation=0)
    ax.set_yticks(np.arange(len(rows)) + 0.5,
                  [_row_label(arch, m, n_modes.get(arch, 1)) for arch, m in rows], rotation=0)
    ax.set(xlabel="", ylabel="", title=f"a = {a:g}  ({'shrink' if a < 1 else 'grow'} by "
                                          f"{max(a, 1 / a):g}×)")
    style.colour_ticklabels(ax.get_yticklabels(), [arch for arch, _ in rows])
    ax.tick_params(length=0, labelsize=mpl.rcParams["xtick.labelsize"] * 0.9)
    ax.tick_params(axis="x", labelbottom=True)
    return mesh


def _colorbar(target, mesh, axes, tol: float, tol_changed: float, vmax: float) -> None:
    bar = target.colorbar(mesh, ax=list(axes), shrink=0.7, aspect=28, pad=0.02,
                          extend="both")
    bar.ax.set_label("<colorbar>")
    bar.set_label("log$_{10}$ max|Δlogits| / max|logits|")
    marks = {round(math.log10(tol), 6): "invariant below"}
    if math.isfinite(tol_changed) and tol_changed > tol:
        marks[round(math.log10(tol_changed), 6)] = "changed above"
    ticks = sorted({t for t in range(int(LOG_FLOOR) + 1, int(vmax) + 1, 4)
                    if all(abs(t - m) >= 2.5 for m in marks)} | set(marks))
    bar.set_ticks(ticks, labels=[f"{t:g}  {marks[t]}" if t in marks else f"{t:g}"
                                 for t in ticks])
    for m in marks:
        bar.ax.axhline(m, color="black", linewidth=1.0)


def _legend_handles():
    return [Line2D([], [], marker="o", linestyle="", markerfacecolor="none",
                   markeredgecolor="black", label="predicted invariant (docs/architectures.md)"),
            Patch(facecolor="none", edgecolor="black", linewidth=2.0,
                  label="measurement ≠ prediction"),
            Line2D([], [], marker="$ε$", linestyle="", color="black",
                   label="verdict differs with the model's own ε"),
            Patch(facecolor="#e6e6e6", label="no such layer")]


def _draw_block(target, sym, scales, cmap, norm, tol, tol_changed, vmax) -> None:
    rows = _rows(sym)
    cols, col_names = _columns(sym)
    ncols = 2 if len(scales) > 1 else 1
    nrows = max(math.ceil(len(scales) / ncols), 1)
    axes = target.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    for ax in axes[max(len(scales), 1):]:
        ax.remove()
    if sym.empty:
        panels.empty(axes[0], "no symmetry probes")
        return
    meshes = [_heatmap(ax, sym, a, rows, cols, col_names, cmap, norm)
              for ax, a in zip(axes, scales)]
    _colorbar(target, meshes[-1], axes[:len(scales)], tol, tol_changed, vmax)


@style.themed
def draw(tables, claims: ClaimsView):
    sym_all = with_columns(tables["symmetry"].copy(), "dataset", "arch", "mode", "scale",
                           "transform", "layer", "layer_index", "rel_change")
    for col in _BOOL_COLUMNS:
        if col in sym_all:
            sym_all[col] = as_bool(sym_all[col])
    blocks = settings(sym_all, keys=("dataset",))
    scales = sorted(sym_all["scale"].unique()) if "scale" in sym_all else []
    nrows = max(math.ceil(len(scales) / 2), 1)
    n_map_rows = max(len(_rows(sub)) if len(sub) else 1 for _, (sub,) in blocks)
    cv = style.canvas(8.8, 0.25 + nrows * (0.75 + 0.2 * n_map_rows), len(blocks), style.Header(
        claims, FIGURE.claims, FIGURE.title, blocks[0][0] if len(blocks) == 1 else ""),
        _legend_handles())
    default_tol = float(sym_all["tol"].iloc[0]) if "tol" in sym_all and len(sym_all) \
        else SYMMETRY_TOL
    tol = claims.tolerance("c1_invariant", default_tol)
    tol_changed = claims.tolerance("c1_non_invariant", math.nan)
    top = float(np.log10(sym_all["rel_change"].clip(lower=1e-300).max())) if len(sym_all) else 0
    vmax = max(1.0, math.ceil(top))
    norm = mcolors.TwoSlopeNorm(vmin=LOG_FLOOR + 1, vcenter=math.log10(tol), vmax=vmax)
    cmap = mpl.colormaps["RdBu_r"]
    for (label_text, (sym,)), target in zip(blocks, cv.blocks):
        _draw_block(target, sym, scales, cmap, norm, tol, tol_changed, vmax)
        style.setting_title(target, blocks, label_text)
    return cv.fig
