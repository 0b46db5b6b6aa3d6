"""Panel pieces several figures draw: "no data" panels, notes and thresholds, the
weight-decay axis with λ = 0 left of a break, paired-by-seed points, and the share
heatmap (runs per architecture x λ with some property)."""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib import ticker as mticker
from matplotlib import transforms as mtransforms
from matplotlib.patches import Rectangle

from . import style
from .data import mean_ci


def empty(ax, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes,
            color=style.MISSING_COLOUR, gid="no-data")
    ax.plot([], [])


def note(ax, text: str, loc: str = "upper left") -> None:
    x, ha = (0.02, "left") if "left" in loc else (0.98, "right")
    y, va = (0.98, "top") if "upper" in loc else (0.02, "bottom")
    ax.text(x, y, text, transform=ax.transAxes, ha=ha, va=va,
            fontsize=mpl.rcParams["legend.fontsize"] * 0.9, color="#333333")


def threshold(ax, y: float, text: str) -> None:
    ax.axhline(y, color="black", linestyle="--", linewidth=0.8, zorder=1)
    ax.text(0.99, y, text, ha="right", va="bottom", transform=ax.get_yaxis_transform(),
            fontsize=mpl.rcParams["ytick.labelsize"] * 0.85)


def ygrid(ax) -> None:
    ax.grid(axis="y", color=style.GRID_COLOUR, linewidth=0.6)


class WdAxis:
    """Log x axis for weight decays with λ = 0 one decade and a bit left of the smallest
    positive λ, behind a break mark."""

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

    def setup(self, ax) -> None:
        """Scale, limits and ticks: once per group of axes sharing x (shared axes share
        them; setting them on every axis of a group costs quadratic time)."""
        ax.set_xscale("log")
        ax.set_xlim(self.zero / 10 ** 0.35, self.max_pos * 10 ** 0.35)
        lo, hi = math.ceil(math.log10(self.min_pos)), math.floor(math.log10(self.max_pos))
        stride = max(1, math.ceil((hi - lo + 1) / 3))  # at most 3 decades labelled
        decades = [10.0 ** k for k in range(lo, hi + 1) if (k - lo) % stride == 0]
        ticks = ([self.zero] if self.has_zero else []) + decades
        fmt = mticker.LogFormatterSciNotation()
        ax.set_xticks(ticks, (["0"] if self.has_zero else []) + [fmt(t) for t in decades])
        ax.xaxis.set_minor_locator(mticker.NullLocator())

    def mark_break(self, ax) -> None:
        """The break mark between λ = 0 and the smallest positive λ, on every axis."""
        if self.has_zero:
            xb = math.sqrt(self.zero * self.min_pos)
            trans = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
            ax.plot([xb], [0], marker=r"$/\!\!/$", markersize=8, color="black",
                    transform=trans, clip_on=False, zorder=10, markeredgewidth=0.0)


def paired_seeds(ax, frame: pd.DataFrame, x: pd.Series, value: str, colour: str,
                 scale: float = 1.0, mean_marker: str = "o") -> None:
    """One thin line per seed through its points (the pairing), markers for diverged
    (×) and collapsed (hollow) runs, and the mean with its 95% t-interval per x."""
    y = frame[value].astype(float) * scale
    status = frame["status"].fillna("ok") if "status" in frame else pd.Series("ok", frame.index)
    for _, rows in frame.assign(_x=x, _y=y).sort_values("_x").groupby("seed", sort=True):
        ax.plot(rows["_x"], rows["_y"], color=colour, alpha=0.25, linewidth=0.6, zorder=2)
    for state, kw in (("diverged", dict(marker="x", color=colour, s=14, linewidths=0.8)),
                      ("collapsed", dict(marker="o", facecolors="white", edgecolors=colour,
                                         s=10, linewidths=0.7))):
        sel = status == state
        if sel.any():
            ax.scatter(x[sel], y[sel], zorder=3, gid=state, **kw)
    xs = sorted(set(x))
    stats = [mean_ci(y[x == xi]) for xi in xs]
    means = np.array([s[0] for s in stats])
    err = np.array([[s[0] - s[1], s[2] - s[0]] for s in stats]).T
    ax.errorbar(xs, means, yerr=np.where(np.isfinite(err), err, 0.0), color=colour,
                marker=mean_marker, markersize=4, capsize=2, linewidth=1.3, zorder=4)


def share_heatmap(ax, table: pd.DataFrame, names: Sequence[str], wds: Sequence[float],
                  count: str, total: str = "runs", cmap: str = "Greys",
                  mark_wd: float | None = None) -> None:
    """Rows: architectures, columns: λ; each cell the share ``count/total`` (coloured,
    0 to 1) with "k/n" written in it; grey where no run exists; a frame on ``mark_wd``."""
    value = np.full((len(names), len(wds)), np.nan)
    ax.set_facecolor("#e6e6e6")
    for r, arch in enumerate(names):
        for c, wd in enumerate(wds):
            cell = table[(table["arch"] == arch) & np.isclose(table["weight_decay"], wd)]
            if cell.empty or int(cell[total].sum()) == 0:
                continue
            k, n = int(cell[count].sum()), int(cell[total].sum())
            value[r, c] = k / n
            ax.text(c + 0.5, r + 0.5, f"{k}/{n}", ha="center", va="center",
                    fontsize=mpl.rcParams["xtick.labelsize"] * 0.7,
                    color="white" if k / n > 0.6 else "black")
    ax.pcolormesh(np.ma.masked_invalid(value), cmap=cmap, vmin=0, vmax=1,
                  edgecolors="white", linewidth=0.6)
    if mark_wd is not None:
        for c, wd in enumerate(wds):
            if np.isclose(wd, mark_wd):
                ax.add_patch(Rectangle((c, 0), 1, len(names), fill=False, edgecolor="black",
                                       linewidth=1.4))
    ax.set_xlim(0, max(len(wds), 1))
    ax.set_ylim(max(len(names), 1), 0)
    ax.set_xticks(np.arange(len(wds)) + 0.5, [f"{w:g}" for w in wds])
    ax.set_yticks(np.arange(len(names)) + 0.5, names)
    style.colour_ticklabels(ax.get_yticklabels(), names)
    ax.tick_params(length=0, labelsize=mpl.rcParams["xtick.labelsize"] * 0.85)
    for spine in ax.spines.values():
        spine.set_visible(False)


def log_ticks_125(axis, lo: float, hi: float) -> None:
    """1-2-5 ticks in plain numbers on a log axis spanning few decades (decades only
    when it spans many)."""
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    span = math.log10(hi / lo)
    mantissas = (1, 2, 5) if span < 1.5 else (1, 3) if span < 3 else (1,)
    ticks = [m * 10.0 ** k for k in decades for m in mantissas if lo <= m * 10.0 ** k <= hi]
    axis.set_major_locator(mticker.FixedLocator(ticks))
    axis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:.3g}"))
    axis.set_minor_locator(mticker.NullLocator())


def decade_ticks(axis, lo: float, hi: float, max_ticks: int = 6) -> None:
    """Decade ticks at multiples of a common stride, at most ``max_ticks``, as 10^k."""
    k_lo, k_hi = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    stride = max(1, math.ceil((k_hi - k_lo) / (max_ticks - 1)))
    ks = [k for k in range(k_lo, k_hi + 1) if k % stride == 0]
    axis.set_major_locator(mticker.FixedLocator([10.0 ** k for k in ks]))
    axis.set_major_formatter(mticker.LogFormatterSciNotation())
    axis.set_minor_locator(mticker.NullLocator())
