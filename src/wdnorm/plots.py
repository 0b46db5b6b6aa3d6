"""The six figures of the replication, one function each: tidy tables in, Figure out.

Every function takes the evaluation tables (``results/tables/*.csv`` as DataFrames) and
the parsed ``results/claims.json``, and returns a :class:`matplotlib.figure.Figure`. No
file is read here and nothing touches pyplot's global state: figures are built with the
object API inside :func:`style_rc`, so the same call gives the same picture in a
notebook, a test or a script. :func:`save_figure` writes them (atomically, reproducibly).

Conventions shared by all figures:

* one colour per architecture (:data:`PALETTE`), in the order of
  :data:`wdnorm.archs.ARCHITECTURES`, labelled with its formula (:func:`arch_label`);
* intervals are 95% bootstrap intervals of the mean over seeds (:func:`mean_ci`);
* the verdict of the claim a figure decides is printed in its header, read from
  claims.json (never computed here);
* a table holding several (dataset, optimiser) settings gives one block of panels per
  setting, stacked as subfigures.
"""

from __future__ import annotations

import functools
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import colors as mcolors
from matplotlib import ticker as mticker
from matplotlib import transforms as mtransforms
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.text import Annotation

from .fileio import atomic_path
from .layout import parse_run_id
from .archs import (
    ARCHITECTURES,
    FORMULAS,
    PREDICTED_JOINT_INVARIANT,
    PREDICTED_PER_LAYER_INVARIANT,
    STACKED,
)

FIGURES: tuple[str, ...] = (
    "symmetry_map", "accuracy_vs_wd", "norm_dynamics", "penalty_removal",
    "lr_wd_collapse", "mechanism",
)
#: The claims each figure shows (the first is the one it decides).
FIGURE_CLAIMS: dict[str, tuple[str, ...]] = {
    "symmetry_map": ("C1",),
    "accuracy_vs_wd": ("C6",),
    "norm_dynamics": ("C4", "C3"),
    "penalty_removal": ("C2",),
    "lr_wd_collapse": ("C5",),
    "mechanism": ("C6",),
}
#: The tables each figure function takes, in argument order.
FIGURE_TABLES: dict[str, tuple[str, ...]] = {
    "symmetry_map": ("symmetry",),
    "accuracy_vs_wd": ("runs",),
    "norm_dynamics": ("dynamics", "gradient_identity"),
    "penalty_removal": ("penalty", "penalty_curve"),
    "lr_wd_collapse": ("runs", "dynamics"),
    "mechanism": ("runs",),
}

# Related architectures share a hue family: LN/BN stacks blue, plain residual and
# LN-after-add orange/red, LN-on-branch green, pre-LN purples; plain is the grey baseline.
PALETTE: dict[str, str] = {
    "plain": "#404040",
    "ln": "#0173b2",
    "bn": "#56b4e9",
    "res": "#de8f05",
    "postln": "#d55e00",
    "resln": "#029e73",
    "preln": "#cc78bc",
    "preln_final": "#7a3b8f",
}
VERDICT_COLOURS = {"supported": "#1b7837", "refuted": "#b2182b", "inconclusive": "#b35806"}
MISSING_COLOUR = "#7f7f7f"

#: Relative output change below which a symmetry probe counts as invariant (C1 default).
SYMMETRY_TOL = 1e-5
#: Relative train-loss change allowed when removing the penalty (C2, DESIGN §4).
LOSS_TOL = 1e-4
#: Equilibrium band of C4 (DESIGN §4).
ANGLE_BAND = 0.15
#: |cos(w, g)| below which a gradient counts as orthogonal to its weight (C3).
COS_THRESHOLD = 1e-3
#: log10 floor for relative changes that are exactly 0 (float64 resolution).
LOG_FLOOR = -17.0

BN_MODE_LABELS = {
    "train": "train (batch stats)",
    "eval": "eval (stats kept)",
    "eval_rescaled": "eval (stats rescaled)",
}
_RNG_SEED = 0
_N_BOOT = 1000


# --------------------------------------------------------------------------- style

def arch_label(arch: str) -> str:
    """``"ln: ReLU(LN(Wh+b))"``: the name and the block it computes (archs.FORMULAS)."""
    formula = FORMULAS.get(arch)
    if formula is None:
        return arch
    formula = formula.removeprefix("h <- ").replace("W h + b", "Wh+b").replace(" + ", "+")
    return f"{arch}: {formula}"


def arch_colour(arch: str) -> str:
    return PALETTE.get(arch, MISSING_COLOUR)


def arch_order(values: Iterable[str]) -> list[str]:
    """The architectures present, in :data:`ARCHITECTURES` order (unknown ones last)."""
    present = list(dict.fromkeys(values))
    known = [a for a in ARCHITECTURES if a in present]
    return known + sorted(a for a in present if a not in ARCHITECTURES)


def style_rc(font_scale: float = 1.0) -> dict[str, Any]:
    """rcParams of every figure: seaborn "ticks" at "paper" context, the arch palette as
    the colour cycle, embeddable fonts, and no per-save randomness."""
    rc: dict[str, Any] = {}
    rc.update(sns.axes_style("ticks"))
    rc.update(sns.plotting_context("paper", font_scale=font_scale))
    rc.update({
        "axes.prop_cycle": mpl.cycler(color=list(PALETTE.values())),
        "axes.titleweight": "normal",
        "figure.titlesize": rc.get("axes.titlesize", 10) * 1.15,
        "legend.frameon": False,
        "legend.title_fontsize": rc.get("legend.fontsize", 8),
        "lines.markersize": 4.5,
        "pdf.fonttype": 42,
        "ps.fonttype": 42,
        "svg.fonttype": "path",
        "svg.hashsalt": "wdnorm",
        "image.cmap": "RdBu_r",
    })
    return rc


def set_style(font_scale: float = 1.0) -> None:
    """Apply :func:`style_rc` globally (notebooks); the figure functions apply it
    themselves, so calling this is only needed for ad-hoc plots."""
    sns.set_theme(context="paper", style="ticks", palette=list(PALETTE.values()),
                  font_scale=font_scale)
    mpl.rcParams.update(style_rc(font_scale))


def _styled(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with mpl.rc_context(style_rc()):
            return func(*args, **kwargs)
    return wrapper


# --------------------------------------------------------------------------- claims

def claim(claims: dict | None, cid: str) -> dict:
    """One claim's record from claims.json: ``{"claims": [{"id": cid, ...}, ...]}`` (a
    mapping by id is accepted too); the top-level ``verdicts`` fills in a missing
    verdict. {} when absent."""
    if not claims:
        return {}
    table = claims.get("claims", claims) if isinstance(claims, dict) else claims
    record = None
    if isinstance(table, list):
        record = next((r for r in table if isinstance(r, dict) and r.get("id") == cid), None)
    elif isinstance(table, dict):
        record = table.get(cid)
    record = dict(record) if isinstance(record, dict) else {}
    verdicts = claims.get("verdicts") if isinstance(claims, dict) else None
    if "verdict" not in record and isinstance(verdicts, dict) and cid in verdicts:
        record["verdict"] = verdicts[cid]
    return record


def verdict(claims: dict | None, cid: str) -> str:
    return str(claim(claims, cid).get("verdict") or "n/a")


def tolerance(claims: dict | None, key: str, default: float) -> float:
    """A tolerance from claims.json's ``tolerances`` (e.g. ``c3_cos``), so the lines a
    figure draws are the ones the verdict used; ``default`` without it."""
    table = claims.get("tolerances") if isinstance(claims, dict) else None
    value = table.get(key) if isinstance(table, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return float(default)


def _header(canvas: "_Canvas", claims: dict | None, cids: Sequence[str], title: str,
            setting: str = "") -> None:
    """The header strip: a bold title, then one line per claim -- a badge coloured by
    verdict and the claim's one-line summary from claims.json."""
    head, height, width = canvas.head, canvas.head_h, canvas.fig.get_figwidth()
    size = mpl.rcParams["figure.titlesize"]
    small = mpl.rcParams["legend.fontsize"]
    text = f"{title}  ({setting})" if setting else title
    # shrink (down to 75%) a title that would not fit on one line, then cut it
    fit = (width - 0.15) * 72 / (0.62 * len(text))
    size = max(min(size, fit), 0.75 * size)
    max_chars = int((width - 0.15) * 72 / (0.62 * size))
    if len(text) > max_chars:
        text = textwrap.shorten(text, max_chars, placeholder=" …")
    y = 1 - 0.06 / height
    head.text(0.005, y, text, ha="left", va="top", fontweight="bold", fontsize=size)
    for k, cid in enumerate(cids):
        record = claim(claims, cid)
        v = verdict(claims, cid)
        colour = VERDICT_COLOURS.get(v.lower(), MISSING_COLOUR)
        yk = 1 - (0.06 + _TITLE_H + k * _CLAIM_H + 0.5 * _CLAIM_H) / height
        badge = head.text(0.012, yk, f"{cid}: {v}", ha="left", va="center", color="white",
                          fontweight="bold", fontsize=small, gid=f"verdict-{cid}",
                          bbox=dict(boxstyle="round,pad=0.22", facecolor=colour,
                                    edgecolor="none"))
        summary = str(record.get("summary") or record.get("title") or "")
        if summary:
            chars = int((width - 1.2) * 72 / (small * 0.5))
            summary = textwrap.shorten(" ".join(summary.split()), max(chars, 20),
                                       placeholder=" …")
            # placed after the badge, whatever its rendered width
            head.add_artist(Annotation(summary, xy=(1, 0.5), xycoords=badge, xytext=(8, 0),
                                       textcoords="offset points", ha="left", va="center",
                                       fontsize=small, color="#222222"))


_TITLE_H = 0.26   # inches of the header's title line
_CLAIM_H = 0.23   # inches per claim line
_LEGEND_ROW_H = 0.19  # inches per legend row
_MIN_WIDTH = 6.8      # inches: room for the header


# --------------------------------------------------------------------------- data helpers

def mean_ci(values, n_boot: int = _N_BOOT, seed: int = _RNG_SEED) -> tuple[float, float, float]:
    """Mean and 95% percentile-bootstrap interval of the mean (as seaborn's
    ``errorbar=("ci", 95)``); one value gives (v, nan, nan)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(v.mean())
    if v.size == 1:
        return mean, math.nan, math.nan
    rng = np.random.default_rng(seed)
    boots = rng.choice(v, size=(n_boot, v.size), replace=True).mean(axis=1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return mean, float(lo), float(hi)


def summarise(frame: pd.DataFrame, by: Sequence[str], value: str) -> pd.DataFrame:
    """mean, lo, hi (95% bootstrap CI over rows, i.e. seeds) and n per group."""
    rows = []
    for key, group in frame.groupby(list(by), sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        m, lo, hi = mean_ci(group[value])
        rows.append(dict(zip(by, key), mean=m, lo=lo, hi=hi,
                         n=int(np.isfinite(group[value].astype(float)).sum())))
    return pd.DataFrame(rows, columns=[*by, "mean", "lo", "hi", "n"])


def _as_bool(series: pd.Series) -> pd.Series:
    if series.dtype == bool:
        return series
    return series.map(lambda v: str(v).strip().lower() in ("true", "1", "1.0", "yes"))


def _ok(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"] == "ok"] if "status" in runs else runs


def grid_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The weight-decay grid: kind "runs" at the grid learning rate (matched pairs only
    where their lr is the grid lr). The grid lr is the lr of the runs that are not
    matched pairs, per (dataset, optimiser)."""
    grid = runs[runs["kind"] == "runs"] if "kind" in runs else runs
    keys = [k for k in ("dataset", "optimiser") if k in grid]
    parts = []
    for _, group in (grid.groupby(keys, sort=False) if keys else [(None, grid)]):
        plain_grid = group
        if "is_matched_pair" in group:
            not_pair = group[~_as_bool(group["is_matched_pair"])]
            plain_grid = not_pair if len(not_pair) else group
        lr = plain_grid["lr"].mode().iloc[0]
        parts.append(group[np.isclose(group["lr"], lr)])
    return pd.concat(parts) if parts else grid.iloc[:0]


def mimic_references(runs: pd.DataFrame) -> set[tuple[float, float]]:
    """The (lr, weight decay) settings of the grid runs the mimic runs follow, from their
    ``mimic_reference`` run ids (a bare id or a path)."""
    if "kind" not in runs or "mimic_reference" not in runs:
        return set()
    refs = runs.loc[runs["kind"] == "mimic", "mimic_reference"].dropna().astype(str)
    return {parse_run_id(Path(r).name)[:2] for r in refs}


def mimic_reference(runs: pd.DataFrame) -> tuple[float, float]:
    """(lr, weight decay) of the grid run the mimic runs of one setting follow; (nan, nan)
    without mimic rows. Several settings at once: call it per (dataset, optimiser)."""
    refs = mimic_references(runs)
    if not refs:
        return math.nan, math.nan
    if len(refs) > 1:
        raise ValueError(f"mimic runs follow several reference settings: {sorted(refs)}")
    return refs.pop()


def mimic_weight_decay(runs: pd.DataFrame) -> float:
    """The mimic runs' reference λ if there is one for all settings, else nan."""
    wds = {wd for _, wd in mimic_references(runs)}
    return wds.pop() if len(wds) == 1 else math.nan


def _settings(primary: pd.DataFrame, *others: pd.DataFrame | None,
              keys: Sequence[str] = ("dataset", "optimiser")):
    """[(label, [primary_sub, *other_subs])] per (dataset, optimiser) of ``primary``;
    each other table is filtered on the keys it has."""
    present = [k for k in keys if k in primary]
    if not present or primary.empty:
        return [("", [primary, *others])]
    combos = primary[present].drop_duplicates()
    out = []
    for combo in combos.itertuples(index=False):
        sel = dict(zip(present, combo))
        subs = []
        for frame in (primary, *others):
            if frame is None:
                subs.append(None)
                continue
            mask = np.ones(len(frame), dtype=bool)
            for k, v in sel.items():
                if k in frame:
                    mask &= (frame[k] == v).to_numpy()
            subs.append(frame[mask])
        out.append((" · ".join(str(v) for v in sel.values()), subs))
    return out


@dataclass
class _Canvas:
    fig: Figure
    head: Any          # header strip (title, verdicts)
    blocks: list       # one drawing target per (dataset, optimiser) setting
    foot: Any          # legend strip
    head_h: float      # header height (inches)

    def legend(self, handles, ncol: int, **kwargs) -> None:
        self.foot.legend(handles=handles, loc="center", ncol=ncol, handlelength=1.8,
                         columnspacing=1.4, borderaxespad=0.0, **kwargs)


def _canvas(width: float, block_h: float, n_blocks: int, n_claims: int,
            legend_rows: int) -> _Canvas:
    """A figure of fixed strips, top to bottom: header, one block per setting, legend.
    Each strip is a constrained-layout subfigure, so panels never run into the header
    or the legend whatever the labels' sizes."""
    head_h = 0.1 + _TITLE_H + n_claims * _CLAIM_H
    foot_h = 0.1 + legend_rows * _LEGEND_ROW_H
    heights = [head_h] + [block_h] * n_blocks + [foot_h]
    width = max(width, _MIN_WIDTH)
    fig = Figure(figsize=(width, sum(heights)), layout="constrained")
    fig.get_layout_engine().set(w_pad=0.02, h_pad=0.02, hspace=0.0, wspace=0.0)
    subs = list(fig.subfigures(len(heights), 1, height_ratios=heights))
    return _Canvas(fig, subs[0], subs[1:-1], subs[-1], head_h)


def _arch_handles(archs: Sequence[str], marker: str = "o", line: bool = True):
    return [Line2D([], [], color=arch_colour(a), marker=marker, linestyle="-" if line else "",
                   markersize=5, label=arch_label(a)) for a in archs]


def _colour_ticklabels(labels, archs: Sequence[str]) -> None:
    for label, arch in zip(labels, archs):
        label.set_color(arch_colour(arch))


def _empty(ax, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes,
            color=MISSING_COLOUR)
    ax.plot([], [])


def _note(ax, text: str, loc: str = "upper left") -> None:
    x, ha = (0.02, "left") if "left" in loc else (0.98, "right")
    y, va = (0.98, "top") if "upper" in loc else (0.02, "bottom")
    ax.text(x, y, text, transform=ax.transAxes, ha=ha, va=va,
            fontsize=mpl.rcParams["legend.fontsize"] * 0.95, color="#333333")


# --------------------------------------------------------------------------- C1

def _symmetry_rows(sym: pd.DataFrame) -> list[tuple[str, str]]:
    rows = []
    for arch in arch_order(sym["arch"]):
        modes = list(dict.fromkeys(sym.loc[sym["arch"] == arch, "mode"]))
        order = [m for m in ("train", "eval", "eval_rescaled") if m in modes]
        order += [m for m in modes if m not in order]
        rows += [(arch, m) for m in order]
    return rows


def _symmetry_row_label(arch: str, mode: str, n_modes: int) -> str:
    if n_modes == 1 and mode == "eval":
        return arch_label(arch)
    return f"{arch_label(arch)}  [{BN_MODE_LABELS.get(mode, mode)}]"


@_styled
def symmetry_map(symmetry: pd.DataFrame, claims: dict | None = None) -> Figure:
    """C1: log10 relative logit change for scaling one hidden layer (or all of them,
    "joint") by a, per architecture (BN in its three modes) -- one heatmap per a.
    Circles mark cells DESIGN §3 predicts invariant; a black frame marks a cell whose
    measurement disagrees with the prediction; "ε" marks a cell whose verdict flips with
    the model's own norm ε instead of ε → 0."""
    sym_all = symmetry.copy()
    for col in ("predicted_invariant", "matches_prediction", "invariant", "invariant_model_eps"):
        if col in sym_all:
            sym_all[col] = _as_bool(sym_all[col])
    blocks = _settings(sym_all, keys=("dataset",))
    scales = sorted(sym_all["scale"].unique())
    ncols = 2 if len(scales) > 1 else 1
    nrows = math.ceil(len(scales) / ncols)
    n_rows_map = max(len(_symmetry_rows(sub)) for _, (sub,) in blocks)
    canvas = _canvas(8.8, 0.25 + nrows * (0.75 + 0.2 * n_rows_map), len(blocks), 1, 1)
    tol = float(sym_all["tol"].iloc[0]) if "tol" in sym_all and len(sym_all) else SYMMETRY_TOL
    tol = tolerance(claims, "c1_invariant", tol)
    tol_changed = tolerance(claims, "c1_non_invariant", math.nan)
    top = float(np.log10(sym_all["rel_change"].clip(lower=1e-300).max())) if len(sym_all) else 0
    vmax = max(1.0, math.ceil(top))
    norm = mcolors.TwoSlopeNorm(vmin=LOG_FLOOR + 1, vcenter=math.log10(tol), vmax=vmax)
    cmap = mpl.colormaps["RdBu_r"]
    for (label, (sym,)), target in zip(blocks, canvas.blocks):
        rows = _symmetry_rows(sym)
        n_modes = sym.groupby("arch")["mode"].nunique().to_dict()
        layers = sym[sym["transform"] == "layer"]
        max_index = int(layers["layer_index"].max()) if len(layers) else -1
        cols = [("layer", i) for i in range(max_index + 1)] + [("joint", -1)]
        col_labels = ["\n".join(dict.fromkeys(layers.loc[layers["layer_index"] == i, "layer"]))
                      for i in range(max_index + 1)] + ["joint\n(all)"]
        axes = target.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
        for ax in axes[len(scales):]:
            ax.remove()
        cells = sym.set_index(["scale", "arch", "mode", "transform", "layer_index"]).sort_index()
        mesh = None
        for ax, a in zip(axes, scales):
            value = np.full((len(rows), len(cols)), np.nan)
            pred, mismatch, eps_flip = (np.zeros(value.shape, dtype=bool) for _ in range(3))
            for r, (arch, mode) in enumerate(rows):
                for c, (transform, i) in enumerate(cols):
                    key = (a, arch, mode, transform, i)
                    if key not in cells.index:
                        continue
                    row = cells.loc[key]
                    row = row.iloc[0] if isinstance(row, pd.DataFrame) else row
                    value[r, c] = max(math.log10(max(float(row["rel_change"]), 1e-300)),
                                      LOG_FLOOR)
                    pred[r, c] = bool(row["predicted_invariant"])
                    mismatch[r, c] = not bool(row["matches_prediction"])
                    if "invariant_model_eps" in row and "invariant" in row:
                        eps_flip[r, c] = bool(row["invariant_model_eps"]) != bool(row["invariant"])
            ax.set_facecolor("#e6e6e6")
            mesh = ax.pcolormesh(np.ma.masked_invalid(value), cmap=cmap, norm=norm,
                                 edgecolors="white", linewidth=0.6)
            rr, cc = np.nonzero(pred)
            ax.scatter(cc + 0.5, rr + 0.5, s=20, facecolors="none", edgecolors="black",
                       linewidths=0.8, zorder=3)
            for r, c in zip(*np.nonzero(mismatch)):
                ax.add_patch(Rectangle((c + 0.07, r + 0.07), 0.86, 0.86, fill=False,
                                       edgecolor="black", linewidth=2.0, zorder=4,
                                       gid="mismatch"))
            for r, c in zip(*np.nonzero(eps_flip)):
                ax.text(c + 0.84, r + 0.32, "ε", ha="center", va="center", fontsize=6.5,
                        color="black", zorder=5)
            ax.set_xlim(0, len(cols))
            ax.set_ylim(len(rows), 0)
            ax.set_xticks(np.arange(len(cols)) + 0.5, col_labels)
            ax.set_yticks(np.arange(len(rows)) + 0.5,
                          [_symmetry_row_label(a_, m, n_modes.get(a_, 1)) for a_, m in rows])
            _colour_ticklabels(ax.get_yticklabels(), [a_ for a_, _ in rows])
            ax.tick_params(length=0, labelsize=mpl.rcParams["xtick.labelsize"] * 0.9)
            ax.tick_params(axis="x", labelbottom=True)
            ax.set_title(f"a = {a:g}  ({'shrink' if a < 1 else 'grow'} by {max(a, 1 / a):g}×)")
            for spine in ax.spines.values():
                spine.set_visible(False)
        if mesh is not None:
            cbar = target.colorbar(mesh, ax=list(axes[:len(scales)]), shrink=0.7, aspect=28,
                                   pad=0.02, extend="both")
            cbar.ax.set_label("<colorbar>")
            cbar.set_label("log$_{10}$ max|Δlogits| / max|logits|")
            marks = {round(math.log10(tol), 6): "invariant below"}
            if math.isfinite(tol_changed) and tol_changed > tol:
                marks[round(math.log10(tol_changed), 6)] = "changed above"
            ticks = sorted({t for t in range(int(LOG_FLOOR) + 1, int(vmax) + 1, 4)
                            if all(abs(t - m) >= 2.5 for m in marks)} | set(marks))
            cbar.set_ticks(ticks, labels=[f"{t:g}  {marks[t]}" if t in marks else f"{t:g}"
                                          for t in ticks])
            for m in marks:
                cbar.ax.axhline(m, color="black", linewidth=1.0)
        if label and len(blocks) > 1:
            target.suptitle(label)
    handles = [
        Line2D([], [], marker="o", linestyle="", markerfacecolor="none",
               markeredgecolor="black", label="predicted invariant (DESIGN §3)"),
        Patch(facecolor="none", edgecolor="black", linewidth=2.0,
              label="measurement ≠ prediction"),
        Line2D([], [], marker="$ε$", linestyle="", color="black",
               label="verdict differs with the model's own ε"),
        Patch(facecolor="#e6e6e6", label="no such layer"),
    ]
    canvas.legend(handles, ncol=4)
    _header(canvas, claims, FIGURE_CLAIMS["symmetry_map"],
            "C1 · Which scalings leave the logits unchanged? (float64, ε → 0)",
            blocks[0][0] if len(blocks) == 1 else "")
    return canvas.fig


# --------------------------------------------------------------------------- C6 (grid)

class _WdAxis:
    """Log x axis for weight decays with λ = 0 placed one decade left of the smallest
    positive λ, separated by a break mark."""

    def __init__(self, wds: Iterable[float]):
        wds = np.asarray(sorted({float(w) for w in wds}), dtype=float)
        positive = wds[wds > 0]
        self.min_pos = float(positive.min()) if positive.size else 1.0
        self.max_pos = float(positive.max()) if positive.size else 1.0
        self.zero = self.min_pos / 10 ** 1.2
        self.has_zero = bool((wds == 0).any())

    def x(self, wd):
        wd = np.asarray(wd, dtype=float)
        return np.where(wd > 0, wd, self.zero)

    def setup(self, ax, label: bool = True) -> None:
        ax.set_xscale("log")
        ax.set_xlim(self.zero / 10 ** 0.35, self.max_pos * 10 ** 0.35)
        lo, hi = math.ceil(math.log10(self.min_pos)), math.floor(math.log10(self.max_pos))
        decades = [10.0 ** k for k in range(lo, hi + 1)]
        ticks = ([self.zero] if self.has_zero else []) + decades
        fmt = mticker.LogFormatterSciNotation()
        labels = (["0"] if self.has_zero else []) + [fmt(t) for t in decades]
        ax.set_xticks(ticks, labels if label else [""] * len(ticks))
        ax.xaxis.set_minor_locator(mticker.NullLocator())
        if self.has_zero:
            xb = math.sqrt(self.zero * self.min_pos)
            trans = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
            ax.plot([xb], [0], marker=r"$/\!\!/$", markersize=9, color="black",
                    transform=trans, clip_on=False, zorder=10,
                    markeredgewidth=0.0)
            ax.axvline(xb, color="#bbbbbb", linewidth=0.6, linestyle=":", zorder=0)


def _plot_wd_curve(ax, axis: _WdAxis, summary: pd.DataFrame, arch: str, scale: float,
                   dodge: float = 0.0) -> None:
    colour = arch_colour(arch)
    pos = summary[summary["weight_decay"] > 0].sort_values("weight_decay")
    zero = summary[summary["weight_decay"] == 0]
    if len(pos):
        x = axis.x(pos["weight_decay"])
        ax.plot(x, pos["mean"] * scale, color=colour, marker="o", label=arch_label(arch))
        ax.fill_between(x, pos["lo"] * scale, pos["hi"] * scale, color=colour, alpha=0.15,
                        linewidth=0)
    if len(zero):
        m, lo, hi = (zero.iloc[0][k] * scale for k in ("mean", "lo", "hi"))
        yerr = None if not np.isfinite(lo) else [[m - lo], [hi - m]]
        # λ = 0 is a category, not a position on the log axis: dodge the archs apart
        ax.errorbar([axis.zero * 10 ** dodge], [m], yerr=yerr, color=colour, marker="D",
                    markerfacecolor="white", capsize=2, linewidth=1.0, zorder=4)
        ax.axhline(m, color=colour, linewidth=0.7, linestyle=(0, (4, 3)), alpha=0.7, zorder=1)


def _headline_wd(claims: dict | None, runs: pd.DataFrame) -> float | None:
    """The λ at which C6's verdict is taken: claims.json's ``headline_weight_decay``, else
    the mimic runs' reference λ."""
    measured = claim(claims, "C6").get("measured")
    value = measured.get("headline_weight_decay") if isinstance(measured, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    wd = mimic_weight_decay(runs)
    return wd if np.isfinite(wd) else None


@_styled
def accuracy_vs_wd(runs: pd.DataFrame, claims: dict | None = None) -> Figure:
    """C6: test accuracy and generalisation gap vs hidden-layer weight decay λ (grid runs
    at the grid lr), per architecture, mean ± 95% CI over seeds; λ = 0 at the left (open
    diamond, and a dashed level across the panel to compare against)."""
    grid = grid_runs(runs)
    blocks = _settings(grid)
    groups = [("without residual", [a for a in ARCHITECTURES if a in STACKED]),
              ("with residual", [a for a in ARCHITECTURES if a not in STACKED])]
    present = arch_order(grid["arch"])
    groups = [(t, [a for a in g if a in present]) for t, g in groups]
    extra = [a for a in present if a not in ARCHITECTURES]
    if extra:
        groups.append(("other", extra))
    groups = [(t, g) for t, g in groups if g] or [("", [])]
    metrics = [("test_acc", "test accuracy (%)", 100.0),
               ("gen_gap_acc", "generalisation gap\ntrain − test accuracy (pp)", 100.0)]
    handles = _arch_handles(present)
    handles.append(Line2D([], [], color="black", marker="D", markerfacecolor="white",
                          linestyle=(0, (4, 3)), label="λ = 0 (its level dashed across)"))
    handles.append(Patch(facecolor="black", alpha=0.15, label="95% CI of the mean over seeds"))
    ncol = 3
    canvas = _canvas(3.7 * len(groups) + 0.7, 4.7, len(blocks), 1, math.ceil(len(handles) / ncol))
    headline = _headline_wd(claims, runs)
    settings = []
    for (label, (sub,)), target in zip(blocks, canvas.blocks):
        ok = _ok(sub)
        axis = _WdAxis(sub["weight_decay"])
        axes = target.subplots(len(metrics), len(groups), sharex=True, sharey="row",
                               squeeze=False)
        for c, (group_title, archs) in enumerate(groups):
            for r, (col, ylabel, scale) in enumerate(metrics):
                ax = axes[r, c]
                for k, arch in enumerate(archs):
                    summary = summarise(ok[ok["arch"] == arch], ["weight_decay"], col)
                    _plot_wd_curve(ax, axis, summary, arch, scale,
                                   dodge=0.07 * (k - (len(archs) - 1) / 2))
                axis.setup(ax, label=(r == len(metrics) - 1))
                if headline is not None and headline > 0:
                    ax.axvline(headline, color="#999999", linewidth=3, alpha=0.25, zorder=0)
                    if r == 0:
                        ax.text(headline, 0.99, " C6 λ", transform=ax.get_xaxis_transform(),
                                ha="left", va="top", color="#666666",
                                fontsize=mpl.rcParams["xtick.labelsize"] * 0.9)
                if r == 0 and group_title:
                    ax.set_title(f"{group_title}: " + ", ".join(archs))
                if c == 0:
                    ax.set_ylabel(ylabel)
                if r == len(metrics) - 1:
                    ax.set_xlabel("weight decay λ on the hidden layers")
                ax.grid(axis="y", color="#eeeeee", linewidth=0.6)
        diverged = int((sub["status"] != "ok").sum()) if "status" in sub else 0
        if diverged:
            _note(axes[0, 0], f"{diverged} diverged run(s) omitted", "lower left")
        lr_text = ", ".join(f"{v:g}" for v in sorted(sub["lr"].unique()))
        setting = f"{label}, lr {lr_text}" if label else f"lr {lr_text}"
        settings.append(setting)
        if len(blocks) > 1:
            target.suptitle(setting)
    canvas.legend(handles, ncol=ncol)
    _header(canvas, claims, FIGURE_CLAIMS["accuracy_vs_wd"],
            "C6 · Does weight decay change test accuracy and the generalisation gap?",
            settings[0] if len(settings) == 1 else "")
    return canvas.fig


# --------------------------------------------------------------------------- C3/C4

_LAYER_MARKERS = {"invariant": "o", "hidden": "^", "joint": "D", "head": "s"}
_ROLE_OFFSETS = {"invariant": -0.24, "hidden": -0.08, "joint": 0.08, "head": 0.24}


def _layer_role(row) -> str:
    """invariant / hidden (not predicted invariant) / joint (all hidden layers together,
    gradient_identity only) / head."""
    if str(row.get("is_head", False)).lower() == "true" or row.get("layer") == "head":
        return "head"
    if row.get("transform") == "joint" or row.get("layer") == "joint":
        return "joint"
    return "invariant" if str(row.get("predicted_invariant", False)).lower() == "true" \
        else "hidden"


def _strip(ax, frame: pd.DataFrame, archs: Sequence[str], value: str,
           filled: pd.Series | None = None, seed: int = _RNG_SEED,
           marker_override: str | None = None, size: float = 16, alpha: float = 0.85) -> None:
    """Jittered points per architecture (x = arch position), colour = arch, marker =
    layer role (or ``marker_override``), hollow where ``filled`` is False."""
    rng = np.random.default_rng(seed)
    for i, arch in enumerate(archs):
        part = frame[(frame["arch"] == arch) & np.isfinite(frame[value].astype(float))]
        if part.empty:
            continue
        roles = part.apply(_layer_role, axis=1)
        fill = filled.loc[part.index] if filled is not None else pd.Series(True, part.index)
        colour = arch_colour(arch)
        for role, marker in _LAYER_MARKERS.items():
            for is_filled in (True, False):
                sel = part[(roles == role) & (fill == is_filled)]
                if sel.empty:
                    continue
                x = i + _ROLE_OFFSETS[role] + rng.uniform(-0.05, 0.05, len(sel))
                if marker_override is not None:
                    ax.scatter(x, sel[value], marker=marker_override, s=size, linewidths=0.9,
                               color=colour, alpha=alpha, zorder=2)
                    continue
                ax.scatter(x, sel[value], marker=marker, s=size, linewidths=0.8,
                           facecolors=colour if is_filled else "white", edgecolors=colour,
                           alpha=alpha, zorder=3)
    ax.set_xticks(range(len(archs)), archs, rotation=35, ha="right", rotation_mode="anchor")
    _colour_ticklabels(ax.get_xticklabels(), archs)
    ax.set_xlim(-0.6, len(archs) - 0.4)


def _threshold(ax, y: float, text: str) -> None:
    ax.axhline(y, color="black", linestyle="--", linewidth=0.8, zorder=1)
    ax.text(0.99, y, text, ha="right", va="bottom", transform=ax.get_yaxis_transform(),
            fontsize=mpl.rcParams["ytick.labelsize"] * 0.9)


@_styled
def norm_dynamics(dynamics: pd.DataFrame, gradient_identity: pd.DataFrame,
                  claims: dict | None = None) -> Figure:
    """C4 (top): measured equilibrium angular update per hidden layer vs √(2ηλ/(1+α))
    (or the AdamW form), y = x with the ±15% band; and the ratio per architecture with,
    as a black bar, the median over the predicted-invariant layers of runs past
    equilibrium (the statistic C4's verdict uses). C3 (bottom, λ = 0, plain SGD): the
    largest |cos(w, ∇w L)| over the steps per layer, and the relative error of the
    summed norm-growth identity ‖w_T‖² − ‖w_0‖² = η²Σ‖g_t‖², both with ε → 0 (markers)
    and with the model's ε (+), against the tolerances of the verdict."""
    band = tolerance(claims, "c4_rel", ANGLE_BAND)
    cos_tol = tolerance(claims, "c3_cos", COS_THRESHOLD)
    identity_tol = tolerance(claims, "c3_identity", 1e-2)
    blocks = _settings(dynamics, gradient_identity)
    all_archs = arch_order(list(dynamics["arch"]) + list(gradient_identity["arch"]))
    handles = _arch_handles(all_archs, line=False)
    handles += [
        Line2D([], [], marker="o", color="black", linestyle="", label="layer predicted invariant"),
        Line2D([], [], marker="^", color="black", linestyle="", label="other hidden layer"),
        Line2D([], [], marker="D", color="black", linestyle="", markersize=4,
               label="all hidden layers jointly"),
        Line2D([], [], marker="s", color="black", linestyle="", label="head"),
        Line2D([], [], marker="o", color="black", markerfacecolor="white", linestyle="",
               label="run not past equilibrium (t < 3/(2ηλ))"),
        Line2D([], [], color="black", linewidth=2.2,
               label="C4 statistic: median, invariant, past eq."),
        Line2D([], [], marker="+", color="black", linestyle="",
               label="C3 with the model's ε (markers: ε → 0)"),
    ]
    ncol = 3
    canvas = _canvas(7.8, 6.5, len(blocks), 2, math.ceil(len(handles) / ncol))
    for (label, (dyn, gid)), target in zip(blocks, canvas.blocks):
        axes = target.subplots(2, 2, gridspec_kw=dict(width_ratios=[1, 1.15]))
        (ax_eq, ax_ratio), (ax_cos, ax_id) = axes
        archs = arch_order(list(dyn["arch"]) + list(gid["arch"] if gid is not None else []))
        healthy = _ok(dyn)
        hidden = healthy[~_as_bool(healthy["is_head"])] if "is_head" in healthy else healthy
        eq = hidden[np.isfinite(hidden["angle_pred"].astype(float))
                    & (hidden["angle_pred"] > 0) & (hidden["angle_mean"] > 0)]
        past = (_as_bool(eq["past_equilibrium"]) if "past_equilibrium" in eq
                else pd.Series(True, eq.index))
        # (a) measured vs predicted
        if eq.empty:
            _empty(ax_eq, "no run with λ > 0")
            _empty(ax_ratio, "no run with λ > 0")
        else:
            lo = min(eq["angle_pred"].min(), eq["angle_mean"].min()) / 1.6
            hi = max(eq["angle_pred"].max(), eq["angle_mean"].max()) * 1.6
            line = np.array([lo, hi])
            ax_eq.fill_between(line, line * (1 - band), line * (1 + band),
                               color="#dddddd", linewidth=0, zorder=0, label=f"±{band:.0%}")
            ax_eq.plot(line, line, color="black", linewidth=0.8, zorder=1, label="y = x")
            for arch in archs:
                part = eq[eq["arch"] == arch]
                if part.empty:
                    continue
                roles = part.apply(_layer_role, axis=1)
                colour = arch_colour(arch)
                for role, marker in _LAYER_MARKERS.items():
                    for is_past in (True, False):
                        sel = part[(roles == role) & (past.loc[part.index] == is_past)]
                        if sel.empty:
                            continue
                        ax_eq.scatter(sel["angle_pred"], sel["angle_mean"], marker=marker,
                                      s=16, linewidths=0.8, alpha=0.8, zorder=3,
                                      facecolors=colour if is_past else "white",
                                      edgecolors=colour)
            ax_eq.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi),
                      xlabel="predicted  √(2ηλ/(1+α))  (rad/step)",
                      ylabel="measured angular update (rad/step)")
            ax_eq.set_aspect("equal")
            _log_ticks_125(ax_eq.xaxis, lo, hi)
            _log_ticks_125(ax_eq.yaxis, lo, hi)
            ax_eq.legend(loc="upper left", handlelength=1.2)
            ax_eq.set_title("C4 · equilibrium angular update")
            # (b) ratio per arch, with the verdict's statistic
            ratio = eq["angle_mean"] / eq["angle_pred"]
            ax_ratio.axhspan(1 - band, 1 + band, color="#dddddd", linewidth=0, zorder=0)
            ax_ratio.axhline(1.0, color="black", linewidth=0.8, zorder=1)
            _strip(ax_ratio, eq.assign(ratio=ratio), archs, "ratio", filled=past)
            inv = _as_bool(eq["predicted_invariant"]) if "predicted_invariant" in eq \
                else pd.Series(False, eq.index)
            for i, arch in enumerate(archs):
                sel = ratio[(eq["arch"] == arch) & inv & past]
                if len(sel):
                    ax_ratio.plot([i - 0.38, i + 0.38], [float(sel.median())] * 2,
                                  color="black", linewidth=2.2, zorder=4,
                                  solid_capstyle="butt")
            _ratio_axis(ax_ratio, ratio, band)
            ax_ratio.set_ylabel("measured / predicted")
            ax_ratio.set_title(f"C4 · ratio per layer (band ±{band:.0%})")
        # (c) |cos| at λ = 0, (d) identity error
        if gid is None or gid.empty:
            _empty(ax_cos)
            _empty(ax_id)
        else:
            gid = _ok(gid)
            for ax, col, tol_, text, ylabel, title in (
                    (ax_cos, "cos_abs_max", cos_tol, "C3 tolerance",
                     "|cos(w, ∇w L)|, max over steps",
                     "C3 · gradient ⊥ weight at λ = 0 (plain SGD)"),
                    (ax_id, "identity_rel_err_total", identity_tol, "C3 tolerance",
                     "relative error of\n‖w_T‖² − ‖w_0‖² = η²Σ‖g_t‖²",
                     "C3 · norm growth at λ = 0")):
                if col not in gid:
                    col = {"cos_abs_max": "cos_abs_mean",
                           "identity_rel_err_total": "identity_rel_err"}[col]
                _strip(ax, gid.assign(y=gid[col].astype(float).clip(lower=1e-17)), archs, "y")
                if f"{col}_model_eps" in gid:
                    _strip(ax, gid.assign(y=gid[f"{col}_model_eps"].astype(float)
                                          .clip(lower=1e-17)),
                           archs, "y", marker_override="+", size=28, alpha=0.7)
                _threshold(ax, tol_, f"{text} {tol_:g}")
                ax.set_yscale("log")
                ax.set_ylabel(ylabel)
                ax.set_title(title)
        for ax in (ax_ratio, ax_cos, ax_id):
            ax.grid(axis="y", color="#eeeeee", linewidth=0.6)
        if len(blocks) > 1:
            target.suptitle(label)
    canvas.legend(handles, ncol=ncol)
    _header(canvas, claims, FIGURE_CLAIMS["norm_dynamics"],
            "C3/C4 · Orthogonal gradients and the angular equilibrium",
            blocks[0][0] if len(blocks) == 1 else "")
    return canvas.fig


def _log_ticks_125(axis, lo: float, hi: float) -> None:
    """1-2-5 ticks in plain numbers on a log axis spanning few decades (decades only
    when it spans many)."""
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    span = math.log10(hi / lo)
    mantissas = (1, 2, 5) if span < 1.5 else (1, 3) if span < 3 else (1,)
    ticks = [m * 10.0 ** k for k in decades for m in mantissas if lo <= m * 10.0 ** k <= hi]
    axis.set_major_locator(mticker.FixedLocator(ticks))
    axis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:.3g}"))
    axis.set_minor_locator(mticker.NullLocator())


def _decade_ticks(axis, lo: float, hi: float, max_ticks: int = 6) -> None:
    """Decade ticks at multiples of a common stride (1, 1e-3, 1e-6, ...), at most
    ``max_ticks`` of them, labelled 10^k."""
    k_lo, k_hi = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    stride = max(1, math.ceil((k_hi - k_lo) / (max_ticks - 1)))
    ks = [k for k in range(k_lo, k_hi + 1) if k % stride == 0]
    axis.set_major_locator(mticker.FixedLocator([10.0 ** k for k in ks]))
    axis.set_major_formatter(mticker.LogFormatterSciNotation())
    axis.set_minor_locator(mticker.NullLocator())


_RATIO_TICKS = (0.01, 0.03, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2, 3, 5, 10, 30, 100)


def _ratio_axis(ax, ratio: pd.Series, band: float = ANGLE_BAND) -> None:
    """Log y for ratios around 1, labelled in plain numbers; the band edges get ticks
    while the range is narrow enough for them not to crowd 1."""
    finite = ratio[np.isfinite(ratio) & (ratio > 0)]
    lo = min(float(finite.min()) if len(finite) else 1.0, 1 - band) / 1.15
    hi = max(float(finite.max()) if len(finite) else 1.0, 1 + band) * 1.15
    ax.set_yscale("log")
    ax.set_ylim(lo, hi)
    narrow = math.log10(hi / lo) < 1.3
    edges = {round(1 - band, 6), round(1 + band, 6)}
    candidates = sorted(set(_RATIO_TICKS) | edges)
    ticks = [t for t in candidates if lo <= t <= hi
             and (narrow or (t not in edges and t not in (0.7, 1.5)))]
    if narrow:  # drop ticks crowding a band edge
        ticks = [t for t in ticks if t in edges or t == 1.0
                 or all(abs(math.log10(t / e)) > 0.05 for e in edges)]
    ax.yaxis.set_major_locator(mticker.FixedLocator(ticks))
    ax.yaxis.set_major_formatter(mticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_locator(mticker.NullLocator())


# --------------------------------------------------------------------------- C2

def _loss_tol(claims: dict | None, penalty: pd.DataFrame | None = None) -> float:
    """The relative train-loss tolerance of C2: claims.json's ``c2_rel_loss``, else the
    penalty table's ``rel_tol``, else :data:`LOSS_TOL`."""
    default = LOSS_TOL
    if penalty is not None and "rel_tol" in penalty and penalty["rel_tol"].notna().any():
        default = float(penalty["rel_tol"].dropna().iloc[0])
    return tolerance(claims, "c2_rel_loss", default)


def _curve_floor(part: pd.DataFrame, pen: pd.DataFrame | None, tol: float):
    """(scale, relative penalty) where the shrink stops: the bisection result of the
    penalty table for the curve's run when there is one, else the last curve point
    within ``tol`` (the curve is sorted by decreasing scale)."""
    run = part["run_id"].iloc[0] if "run_id" in part else None
    if pen is not None and run is not None and {"run_id", "scale", "ratio"} <= set(pen):
        row = pen[(pen["run_id"] == run) & (pen["arch"] == part["arch"].iloc[0])]
        row = row[np.isfinite(row["scale"].astype(float))]
        if len(row):
            return float(row["scale"].iloc[0]), float(row["ratio"].iloc[0])
    within = (part["rel_loss_change"].abs() <= tol).to_numpy()
    last = (np.argmin(within) if not within.all() else len(part)) - 1
    if last < 0:
        return math.nan, math.nan
    return float(part["scale"].iloc[last]), float(part["rel_penalty"].iloc[last])


@_styled
def penalty_removal(penalty: pd.DataFrame, penalty_curve: pd.DataFrame,
                    claims: dict | None = None) -> Figure:
    """C2, on trained nets: (a) hidden-layer penalty relative to the trained one as the
    invariant layers shrink together by a -- solid while the train loss stays within
    the tolerance with the model's ε, pale beyond (valid only with ε ≈ 0); the star is
    where the shrink stops (the ε floor); (b) the relative train-loss change this costs,
    with the model's ε and with ε ≈ 0, against the tolerance; (c) the penalty after the
    best symmetry transform over the penalty before, per architecture, with the model's
    ε and with ε ≈ 0 (median over trained runs with λ > 0; dots: single runs)."""
    tol = _loss_tol(claims, penalty)
    blocks = _settings(penalty, penalty_curve)
    all_archs = arch_order(list(penalty["arch"]) + list(penalty_curve["arch"]))
    handles = _arch_handles(all_archs)
    handles += [
        Line2D([], [], color="black", linewidth=1.5, label="model ε"),
        Line2D([], [], color="black", linewidth=1.0, alpha=0.35, label="ε ≈ 0 (ideal symmetry)"),
        Line2D([], [], color="black", marker="*", linestyle="", markersize=8,
               label="ε floor: smallest a within tolerance"),
    ]
    ncol = 4
    canvas = _canvas(10.0, 3.7, len(blocks), 1, math.ceil(len(handles) / ncol))
    for (label, (pen, curve)), target in zip(blocks, canvas.blocks):
        archs = arch_order(list(pen["arch"]) + list(curve["arch"] if curve is not None else []))
        ax_pen, ax_loss, ax_bar = target.subplots(
            1, 3, gridspec_kw=dict(width_ratios=[1, 1, 1.2 + 0.06 * len(archs)]))
        if curve is None or curve.empty:
            _empty(ax_pen, "no penalty curve")
            _empty(ax_loss, "no penalty curve")
            curve = pd.DataFrame(columns=["arch", "scale", "penalty", "rel_loss_change"])
        variants = curve["variant"] if "variant" in curve else pd.Series("model_eps", curve.index)
        floors = []
        for arch in archs:
            colour = arch_colour(arch)
            for variant, alpha, width in (("eps0", 0.35, 1.0), ("model_eps", 1.0, 1.5)):
                part = curve[(curve["arch"] == arch) & (variants == variant)]
                if part.empty:
                    continue
                part = part.sort_values("scale", ascending=False)
                ref = part.loc[np.isclose(part["scale"], 1.0), "penalty"]
                base = float(ref.iloc[0]) if len(ref) else float(part["penalty"].max())
                part = part.assign(rel_penalty=part["penalty"] / base)
                loss = part["rel_loss_change"].abs().clip(lower=_LOSS_FLOOR)
                ax_loss.plot(part["scale"], loss, color=colour, alpha=alpha, linewidth=width)
                if variant == "eps0":
                    ax_pen.plot(part["scale"], part["rel_penalty"], color=colour, alpha=alpha,
                                linewidth=width)
                    continue
                floor_scale, floor_ratio = _curve_floor(part, pen, tol)
                if np.isfinite(floor_scale):
                    keep = part["scale"] >= floor_scale
                    ax_pen.plot(np.r_[part["scale"][keep], floor_scale],
                                np.r_[part["rel_penalty"][keep], floor_ratio],
                                color=colour, linewidth=width, zorder=3)
                    ax_pen.plot([floor_scale], [floor_ratio], marker="*", markersize=10,
                                color=colour, markeredgecolor="black", markeredgewidth=0.4,
                                zorder=5, linestyle="")
                    ax_loss.axvline(floor_scale, color=colour, linewidth=0.7, linestyle=":")
                    left = f"{floor_ratio:.0%}" if floor_ratio >= 0.01 else f"{floor_ratio:.1g}"
                    floors.append(f"{arch}: a = {floor_scale:.2g}, {left} left")
        for ax in (ax_pen, ax_loss):
            ax.set(xscale="log", yscale="log", xlabel="shrink factor a of the invariant layers")
            ax.invert_xaxis()
            if len(curve):
                _decade_ticks(ax.xaxis, float(curve["scale"].min()), float(curve["scale"].max()))
            ax.grid(color="#eeeeee", linewidth=0.6)
        ax_pen.set_ylabel("hidden penalty / trained penalty")
        ax_pen.set_title("(a) penalty as the layers shrink")
        ax_loss.axhline(tol, color="black", linestyle="--", linewidth=0.8)
        ax_loss.text(0.98, tol, f"tolerance {tol:g}", transform=ax_loss.get_yaxis_transform(),
                     va="bottom", ha="right", fontsize=mpl.rcParams["ytick.labelsize"])
        ax_loss.set_ylabel("|relative change of the train loss|")
        ax_loss.set_ylim(bottom=_LOSS_FLOOR / 3)
        ax_loss.text(0.98, 0.01, f"0 drawn at {_LOSS_FLOOR:g}", transform=ax_loss.transAxes,
                     ha="right", va="bottom", fontsize=mpl.rcParams["ytick.labelsize"] * 0.9,
                     color="#555555")
        ax_loss.set_title("(b) its cost in train loss")
        _ratio_bars(ax_bar, pen, archs)
        runs = list(dict.fromkeys(curve["run_id"].astype(str))) if "run_id" in curve else []
        note = ([f"run {runs[0]}"] if len(runs) == 1 else []) + (
            ["ε floor (star):"] + floors if floors else [])
        if note:
            _note(ax_pen, "\n".join(note), "upper right")
        if len(blocks) > 1:
            target.suptitle(label)
    canvas.legend(handles, ncol=ncol)
    _header(canvas, claims, FIGURE_CLAIMS["penalty_removal"],
            "C2 · How much hidden-layer L2 penalty can symmetries remove from a trained net?",
            blocks[0][0] if len(blocks) == 1 else "")
    return canvas.fig


#: Loss changes of exactly 0 (float32 cannot resolve less) are drawn at this level.
_LOSS_FLOOR = 1e-9
_METHOD_SHORT = {"invariant_shrink": "shrink", "relu_rebalance": "rebalance", "none": "none"}
#: Plot floor of the ratio bars: a ratio of exactly 0 is drawn here.
_RATIO_FLOOR = 1e-30


def _ratio_bars(ax, pen: pd.DataFrame, archs: Sequence[str]) -> None:
    if pen is None or pen.empty:
        _empty(ax, "no penalty table")
        return
    use = pen[pen["weight_decay"] > 0] if (pen["weight_decay"] > 0).any() else pen
    if "status" in use:
        use = use[use["status"] == "ok"]
    series = [("ratio", "model ε", 0.9), ("ratio_eps0", "ε ≈ 0", 0.35)]
    series = [s for s in series if s[0] in use]
    width = 0.38
    rng = np.random.default_rng(_RNG_SEED)
    labels = []
    lowest = 1.0
    for i, arch in enumerate(archs):
        part = use[use["arch"] == arch]
        method = part["method"].mode().iloc[0] if len(part) and "method" in part else ""
        labels.append(f"{arch} ({_METHOD_SHORT.get(method, method)})" if method else arch)
        for j, (col, _, alpha) in enumerate(series):
            values = part[col].astype(float)
            values = values[np.isfinite(values)].clip(lower=_RATIO_FLOOR)
            if values.empty:
                continue
            lowest = min(lowest, float(values.min()))
            x = i + (j - (len(series) - 1) / 2) * width
            colour = arch_colour(arch)
            ax.bar(x, float(np.median(values)), width=width * 0.92, color=colour, alpha=alpha,
                   edgecolor=colour, linewidth=0.8)
            ax.scatter(x + rng.uniform(-0.07, 0.07, len(values)), values, s=5,
                       color="black", zorder=3, linewidths=0)
    ax.set_yscale("log")
    ax.set_ylim(lowest / 30, 1e4)  # headroom above 1 for the legend
    ax.yaxis.set_major_locator(mticker.LogLocator(base=10, numticks=8))
    ax.yaxis.set_minor_locator(mticker.NullLocator())
    ax.axhline(1.0, color="black", linewidth=0.6)
    ax.set_xticks(range(len(archs)), labels, rotation=40, ha="right", rotation_mode="anchor",
                  fontsize=mpl.rcParams["xtick.labelsize"] * 0.95)
    _colour_ticklabels(ax.get_xticklabels(), archs)
    ax.set_xlim(-0.6, len(archs) - 0.4)
    ax.set_ylabel("hidden penalty after / before")
    ax.set_title("(c) removable penalty, runs with λ > 0")
    ax.grid(axis="y", color="#eeeeee", linewidth=0.6)
    ax.legend(handles=[Patch(facecolor="#555555", alpha=a, label=lab) for _, lab, a in series],
              loc="upper right", ncol=len(series), handlelength=1.2, columnspacing=0.8)


# --------------------------------------------------------------------------- C5

def invariance_tag(arch: str) -> str:
    """DESIGN §3's prediction in words: "per-layer invariant", "jointly invariant" or
    "not invariant"."""
    if PREDICTED_PER_LAYER_INVARIANT.get(arch, "none") != "none":
        return "per-layer invariant"
    if PREDICTED_JOINT_INVARIANT.get(arch, False):
        return "jointly invariant"
    return "not invariant"


def run_angles(dynamics: pd.DataFrame) -> pd.DataFrame:
    """One equilibrium angle per run: the mean ``angle_mean`` over the layers predicted
    invariant on their own, or over all hidden layers where none is."""
    hidden = dynamics[~_as_bool(dynamics["is_head"])] if "is_head" in dynamics else dynamics
    keys = [k for k in ("dataset", "optimiser", "arch", "kind", "run_id") if k in hidden]
    rows = []
    for key, group in hidden.groupby(keys, sort=False):
        inv = group[_as_bool(group["predicted_invariant"])] if "predicted_invariant" in group \
            else group.iloc[:0]
        use = inv if len(inv) else group
        past = bool(_as_bool(use["past_equilibrium"]).all()) if "past_equilibrium" in use \
            else True
        rows.append(dict(zip(keys, key), angle=float(use["angle_mean"].mean()),
                         angle_pred=float(use["angle_pred"].median())
                         if "angle_pred" in use else math.nan,
                         layers="invariant" if len(inv) else "hidden", past_equilibrium=past))
    return pd.DataFrame(rows)


@_styled
def lr_wd_collapse(runs: pd.DataFrame, dynamics: pd.DataFrame,
                   claims: dict | None = None) -> Figure:
    """C5: the matched (η, λ) pairs of equal product ηλ, per architecture: equilibrium
    angular update (top; dashed: the prediction) and test accuracy (bottom), mean ± 95%
    CI over seeds. Flat lines = "only ηλ matters"."""
    pairs_all = runs[(runs["kind"] == "runs") & _as_bool(runs["is_matched_pair"])] \
        if "kind" in runs else runs[_as_bool(runs["is_matched_pair"])]
    blocks = _settings(pairs_all, dynamics)
    archs_all = arch_order(pairs_all["arch"]) if len(pairs_all) else arch_order(runs["arch"])
    ncols = max(len(archs_all), 1)
    handles = [Line2D([], [], color="black", marker="o", label="mean, 95% CI over seeds"),
               Line2D([], [], color="black", marker="o", linestyle="", alpha=0.45,
                      markersize=3, label="single seeds"),
               Line2D([], [], color="black", linestyle="--", label="predicted √(2ηλ/(1+α))"),
               Line2D([], [], color="black", marker="o", markerfacecolor="white",
                      linestyle="", label="angle: runs not past equilibrium")]
    c5 = claim(claims, "C5").get("measured", {})
    c5 = c5.get("per_arch", {}) if isinstance(c5, dict) else {}
    ncol = 4
    canvas = _canvas(1.3 * ncols + 1.0, 4.3, len(blocks), 1, math.ceil(len(handles) / ncol))
    settings = []
    for (label, (pairs, dyn)), target in zip(blocks, canvas.blocks):
        pairs = _ok(pairs)
        angles = run_angles(dyn) if dyn is not None and len(dyn) else pd.DataFrame(
            columns=["run_id", "arch", "angle", "angle_pred"])
        merged = pairs.merge(angles[[c for c in ("arch", "kind", "run_id", "angle", "angle_pred",
                                                 "past_equilibrium") if c in angles]],
                             on=[c for c in ("arch", "kind", "run_id") if c in angles],
                             how="left")
        points = sorted({(float(a), float(b)) for a, b in zip(pairs["lr"], pairs["weight_decay"])},
                        reverse=True)
        xpos = {p: i for i, p in enumerate(points)}
        xlabels = [f"{a:g}" for a, _ in points]
        products = sorted({f"{a * b:.3g}" for a, b in points})
        pair_text = ", ".join(f"({a:g}, {b:g})" for a, b in points)
        axes = target.subplots(2, ncols, sharex=True, sharey="row", squeeze=False)
        verdicts = {}  # per-arch C5 accuracy check from claims.json, shown under the panels
        for c, arch in enumerate(archs_all):
            part = merged[merged["arch"] == arch]
            colour = arch_colour(arch)
            for r, (col, scale) in enumerate((("angle", 1.0), ("test_acc", 100.0))):
                ax = axes[r, c]
                if part.empty or col not in part:
                    _empty(ax)
                    continue
                summary = summarise(part.assign(p=list(zip(part["lr"], part["weight_decay"]))),
                                    ["lr", "weight_decay"], col)
                x = [xpos[(float(a), float(b))] for a, b in zip(summary["lr"],
                                                                summary["weight_decay"])]
                order = np.argsort(x)
                xs = np.asarray(x)[order]
                s = summary.iloc[order]
                yerr = np.vstack([s["mean"] - s["lo"], s["hi"] - s["mean"]]) * scale
                yerr = np.where(np.isfinite(yerr), yerr, 0.0)
                ax.errorbar(xs, s["mean"] * scale, yerr=yerr, color=colour, marker="none",
                            capsize=2.5, linewidth=1.2)
                for xi, (_, row) in zip(xs, s.iterrows()):
                    filled = True
                    if r == 0 and "past_equilibrium" in part:
                        runs_here = part[np.isclose(part["lr"], row["lr"])
                                         & np.isclose(part["weight_decay"], row["weight_decay"])]
                        filled = bool(runs_here["past_equilibrium"].fillna(False)
                                      .astype(bool).all())
                    ax.plot([xi], [row["mean"] * scale], marker="o", color=colour,
                            markerfacecolor=colour if filled else "white", zorder=4)
                stats = c5.get(arch, {}) if r == 1 else {}
                if isinstance(stats, dict) and stats.get("test_acc_spread") is not None \
                        and stats.get("accuracy_tolerance") is not None:
                    ok = stats.get("accuracy_consistent")
                    mark = "" if ok is None else ("  ✓" if ok else "  ✗")
                    verdicts[arch] = (f"spread {100 * stats['test_acc_spread']:.2g} pp\n"
                                      f"tol {100 * stats['accuracy_tolerance']:.2g} pp{mark}")
                seeds = part[col].astype(float) * scale
                # seeds just right of their mean, so hollow and filled markers stay legible
                jitter = 0.2 + np.random.default_rng(_RNG_SEED).uniform(-0.04, 0.04, len(part))
                ax.scatter([xpos[(float(a), float(b))] + j for a, b, j in
                            zip(part["lr"], part["weight_decay"], jitter)], seeds, s=7,
                           color=colour, alpha=0.45, linewidths=0, zorder=2)
                if r == 0 and "angle_pred" in part and np.isfinite(part["angle_pred"]).any():
                    ax.axhline(float(np.nanmedian(part["angle_pred"])), color="black",
                               linestyle="--", linewidth=0.7)
                ax.grid(axis="y", color="#eeeeee", linewidth=0.6)
            tag = invariance_tag(arch).replace("per-layer invariant", "invariant per layer")
            axes[0, c].set_title(f"{arch}\n" + tag.replace(" ", "\n", 1) if tag.count(" ") > 1
                                 else f"{arch}\n{tag}", color=colour,
                                 fontsize=mpl.rcParams["axes.titlesize"] * 0.95)
        for c, ax in enumerate(axes[-1]):
            ax.set_xticks(range(len(points)), xlabels)
            arch = archs_all[c] if c < len(archs_all) else ""
            ax.set_xlabel("η" + (f"\n{verdicts[arch]}" if arch in verdicts else ""))
        for ax in axes.ravel():
            ax.set_xlim(-0.5, len(points) - 0.5)
        axes[0, 0].set_ylabel("equilibrium angular\nupdate (rad/step)")
        axes[1, 0].set_ylabel("test accuracy (%)")
        target.supxlabel(f"matched pairs (η, λ) = {pair_text}: ηλ = {' / '.join(products)}",
                         fontsize=mpl.rcParams["axes.labelsize"])
        settings.append(label)
        if len(blocks) > 1:
            target.suptitle(label)
    canvas.legend(handles, ncol=ncol)
    _header(canvas, claims, FIGURE_CLAIMS["lr_wd_collapse"],
            "C5 · Does only the product ηλ matter?",
            settings[0] if len(settings) == 1 else "")
    return canvas.fig


# --------------------------------------------------------------------------- C6 mechanism

_CONDITIONS = (
    ("no_decay", "λ = 0", "o", False),
    ("decay", "λ = {wd:g}", "s", True),
    ("mimic", "λ = 0, LR matched to the λ = {wd:g} run's η/‖w‖² (mimic)", "D", True),
)


def mechanism_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs of the three C6 mechanism conditions with a ``condition`` column: the grid
    run without decay, the grid run with the mimic's reference λ, and the mimic run."""
    lr, wd = mimic_reference(runs)
    ok = _ok(runs)
    kind = ok["kind"] if "kind" in ok else pd.Series("runs", ok.index)
    parts = [ok[kind == "mimic"].assign(condition="mimic")]
    if np.isfinite(lr):
        grid = ok[(kind == "runs") & np.isclose(ok["lr"], lr)]
    else:
        grid = grid_runs(ok)
    parts.append(grid[grid["weight_decay"] == 0].assign(condition="no_decay"))
    if np.isfinite(wd):
        parts.append(grid[np.isclose(grid["weight_decay"], wd)].assign(condition="decay"))
    return pd.concat(parts, ignore_index=True)


def _mechanism_note(record) -> str:
    """"mimic − decay −1.9 pp ✓" from claims.json's C6 mechanism record of one arch."""
    if not isinstance(record, dict):
        return ""
    diff = record.get("mimic_minus_decay")
    mean = diff.get("mean") if isinstance(diff, dict) else None
    if not isinstance(mean, (int, float)):
        return ""
    ok = record.get("reproduces")
    mark = "" if ok is None else ("  ✓" if ok else "  ✗")
    return f"\nmimic − decay\n{100 * mean:+.2g} pp{mark}"


@_styled
def mechanism(runs: pd.DataFrame, claims: dict | None = None) -> Figure:
    """C6 mechanism: per architecture, test accuracy without decay, with the mimic's
    reference decay, and of the no-decay run whose learning rate mimics the decay run's
    effective LR (Hoffer et al. 2018); mean ± 95% CI over seeds, dots = seeds."""
    blocks = _settings(runs)
    wd = mimic_weight_decay(runs)
    archs_all = arch_order(runs["arch"])
    wd_text = "λ_ref" if not np.isfinite(wd) else f"{wd:g}"
    handles = [Line2D([], [], color="black", marker=marker, linestyle="",
                      markerfacecolor="black" if filled else "white",
                      label=text.replace("{wd:g}", wd_text))
               for _, text, marker, filled in _CONDITIONS]
    canvas = _canvas(0.95 * len(archs_all) + 1.4, 3.3, len(blocks), 1, 1)
    for (label, (sub,)), target in zip(blocks, canvas.blocks):
        frame = mechanism_frame(sub)
        ax = target.subplots()
        archs = arch_order(sub["arch"])
        width = 0.25
        rng = np.random.default_rng(_RNG_SEED)
        for i, arch in enumerate(archs):
            colour = arch_colour(arch)
            means = []
            for j, (cond, _, marker, filled) in enumerate(_CONDITIONS):
                vals = frame.loc[(frame["arch"] == arch) & (frame["condition"] == cond),
                                 "test_acc"].astype(float) * 100
                x = i + (j - 1) * width
                if vals.empty:
                    means.append((x, math.nan))
                    continue
                m, lo, hi = mean_ci(vals)
                yerr = [[m - lo], [hi - m]] if np.isfinite(lo) else None
                ax.errorbar([x], [m], yerr=yerr, marker=marker, color=colour, capsize=2.5,
                            markerfacecolor=colour if filled else "white",
                            markersize=6 if marker != "D" else 5, linewidth=1.2, zorder=4)
                ax.scatter(x + rng.uniform(-0.05, 0.05, len(vals)), vals, s=6, color=colour,
                           alpha=0.45, linewidths=0, zorder=3)
                means.append((x, m))
            xs, ms = zip(*means)
            ax.plot(xs, ms, color=colour, linewidth=0.6, alpha=0.5, zorder=2)
        mech = claim(claims, "C6").get("measured", {})
        mech = mech.get("mechanism", {}) if isinstance(mech, dict) else {}
        ax.set_xticks(range(len(archs)), [arch_label(a).replace(": ", ":\n", 1)
                                          .replace("; ", ";\n") + _mechanism_note(mech.get(a))
                                          for a in archs], rotation=0)
        ax.tick_params(axis="x", labelsize=mpl.rcParams["xtick.labelsize"] * 0.85)
        _colour_ticklabels(ax.get_xticklabels(), archs)
        ax.set_xlim(-0.6, len(archs) - 0.4)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(axis="y", color="#eeeeee", linewidth=0.6)
        if frame.empty:
            _empty(ax)
        if len(blocks) > 1:
            target.suptitle(label)
    canvas.legend(handles, ncol=3)
    _header(canvas, claims, FIGURE_CLAIMS["mechanism"],
            "C6 · Does weight decay act through the learning rate?",
            blocks[0][0] if len(blocks) == 1 else "")
    return canvas.fig


# --------------------------------------------------------------------------- dispatch, IO

_FUNCTIONS = {
    "symmetry_map": symmetry_map,
    "accuracy_vs_wd": accuracy_vs_wd,
    "norm_dynamics": norm_dynamics,
    "penalty_removal": penalty_removal,
    "lr_wd_collapse": lr_wd_collapse,
    "mechanism": mechanism,
}


def build_figure(name: str, tables: dict[str, pd.DataFrame], claims: dict | None) -> Figure:
    """The figure ``name`` from a dict of tables (by table name)."""
    if name not in _FUNCTIONS:
        raise ValueError(f"unknown figure {name!r}; valid: {', '.join(FIGURES)}")
    return _FUNCTIONS[name](*(tables[t] for t in FIGURE_TABLES[name]), claims)


# Metadata that would otherwise change on every save (dates), so that rerunning a figure
# on the same tables reproduces the same bytes.
_METADATA = {"pdf": {"CreationDate": None}, "svg": {"Date": None}, "png": {"Software": None}}


def save_figure(fig: Figure, stem: str | Path, formats: Sequence[str] = ("png",),
                dpi: int = 150) -> list[Path]:
    """Write ``{stem}.{fmt}`` for every format, each atomically (temporary file in the
    same directory, then rename). Returns the paths in ``formats`` order."""
    formats = [str(f).lower().lstrip(".") for f in formats]
    supported = fig.canvas.get_supported_filetypes()
    unknown = [f for f in formats if f not in supported]
    if unknown:
        raise ValueError(f"unsupported figure format(s) {unknown}; "
                         f"matplotlib writes: {', '.join(sorted(supported))}")
    paths = []
    for fmt in formats:
        path = Path(f"{stem}.{fmt}")
        with atomic_path(path) as tmp, mpl.rc_context({"svg.hashsalt": "wdnorm"}):
            # the temporary name ends in .tmp: the format must be given explicitly
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight", pad_inches=0.05,
                        metadata=_METADATA.get(fmt))
        paths.append(path)
    return paths

