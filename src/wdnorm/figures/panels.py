"""Panel pieces several figures draw: "no data" panels, notes and thresholds, a
categorical axis of named points, runs joined by seed, the verdicts' Hodges-Lehmann
shifts with their CIs (seaborn's point plot with the verdict's estimator and interval),
the equivalence or non-superiority margin, and the share heatmap (runs per
architecture x λ with some property, seaborn's heatmap)."""

from __future__ import annotations

import math
from typing import Sequence

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import ticker as mticker
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from . import style
from .data import CI_LEVEL, column, hl_interval, hl_shift

MARGIN_COLOUR = "#dddddd"
#: Legend entries of the marks every paired panel uses.
SEED_HANDLE = Line2D([], [], color="black", alpha=0.3, linewidth=0.6, label="one seed")
DIVERGED_HANDLE = Line2D([], [], color="black", marker="x", linestyle="",
                         label="diverged (chance accuracy)")
COLLAPSED_HANDLE = Line2D([], [], color="black", marker="o", markerfacecolor="white",
                          linestyle="", label="collapsed into the ε floor")
MEDIAN_HANDLE = Line2D([], [], color="black", marker="o", markersize=4,
                       label="median over seeds")
HL_HANDLE = Line2D([], [], color="black", marker="o",
                   label=f"Hodges–Lehmann shift, {CI_LEVEL:.0%} CI (the verdict's)")


def band_handle(label: str) -> Patch:
    return Patch(facecolor=MARGIN_COLOUR, label=label)


def bound_handle(label: str) -> Line2D:
    return Line2D([], [], color="black", linestyle="--", label=label)


def status_handles(runs: pd.DataFrame) -> list:
    """Legend entries of the run outcomes ``runs`` has (only those drawn)."""
    status = set(column(runs, "status", "ok").fillna("ok"))
    return [h for state, h in (("diverged", DIVERGED_HANDLE), ("collapsed", COLLAPSED_HANDLE))
            if state in status]


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


def named_xticks(ax, labels: Sequence[str], rotation: float = 0, bold: int | None = None,
                 size: float = 1.0) -> None:
    """Ticks at 0..n-1 named ``labels`` (``bold``: the index of the one the verdict is
    about), with half a step of room either side."""
    ax.set_xticks(range(len(labels)), labels, rotation=rotation,
                  ha="right" if rotation else "center", rotation_mode="anchor",
                  fontsize=mpl.rcParams["xtick.labelsize"] * size)
    ax.xaxis.set_minor_locator(mticker.NullLocator())
    if bold is not None:
        ax.get_xticklabels()[bold].set_fontweight("bold")
    ax.set_xlim(-0.5, max(len(labels), 1) - 0.5)


def seeds(ax, frame: pd.DataFrame, x: str, y: str, colour: str) -> None:
    """One thin line per seed through its points (the pairing), × for diverged and
    hollow circles for collapsed runs."""
    sns.lineplot(frame, x=x, y=y, units="seed", estimator=None, color=colour, alpha=0.3,
                 linewidth=0.6, ax=ax, zorder=2, legend=False)
    status = column(frame, "status", "ok").fillna("ok")
    for state, kw in (("diverged", dict(marker="x", color=colour, s=14, linewidths=0.8)),
                      ("collapsed", dict(marker="o", facecolors="white", edgecolors=colour,
                                         s=10, linewidths=0.7))):
        rows = frame[status == state]
        if len(rows):
            ax.scatter(rows[x], rows[y], zorder=3, gid=state, **kw)


def medians(ax, frame: pd.DataFrame, x: str, y: str, colour: str) -> None:
    """The median over seeds at each x (a level: no interval, the verdicts are about
    the paired differences)."""
    sns.pointplot(frame, x=x, y=y, estimator="median", errorbar=None, native_scale=True,
                  color=colour, markersize=4, linewidth=1.3, ax=ax, zorder=4)


def hl_shifts(ax, frame: pd.DataFrame, x: str, y: str, colour: str, **kw) -> None:
    """The Hodges-Lehmann shift of the paired differences ``y`` at each x with its 95%
    CI -- the estimate and interval the verdicts use (no bar where n < 6)."""
    sns.pointplot(frame, x=x, y=y, estimator=hl_shift, errorbar=hl_interval,
                  native_scale=True, color=colour, markersize=4, linewidth=1.3,
                  capsize=0.15, err_kws=dict(linewidth=1.2), ax=ax, zorder=4, gid="hl", **kw)


def hollow(ax) -> None:
    """The last scatter drawn as rings in its own colours (seaborn fills every point)."""
    points = ax.collections[-1]
    points.set_edgecolors(points.get_facecolors())
    points.set_facecolor("none")


def paired_panel(ax, diff: pd.DataFrame, colour: str, band: float | None = None,
                 bound: float | None = None, connect: bool = True) -> None:
    """Paired differences ``pp`` at positions ``x``: the runs of one seed joined, the
    HL shift and CI, zero, an equivalence ``band`` (±, pp) or a non-superiority ``bound``."""
    ax.axhline(0.0, color="black", linewidth=0.7, zorder=1)
    if band is not None:
        ax.axhspan(-band, band, color=MARGIN_COLOUR, linewidth=0, zorder=0, gid="margin")
    if bound is not None:
        ax.axhline(bound, color="black", linestyle="--", linewidth=0.8, zorder=1)
    ygrid(ax)
    if diff.empty or not np.isfinite(diff["pp"].astype(float)).any():
        empty(ax, "no paired runs")
        return
    seeds(ax, diff, "x", "pp", colour)
    hl_shifts(ax, diff, "x", "pp", colour, **({} if connect else {"linestyle": "none"}))


def share_heatmap(ax, table: pd.DataFrame, names: Sequence[str], wds: Sequence[float],
                  count: str, total: str = "runs", cmap: str = "Greys",
                  mark_wd: float | None = None) -> None:
    """Rows: architectures, columns: λ; each cell the share ``count/total`` (coloured,
    0 to 1) with "k/n" written in it; grey where no run exists; a frame on ``mark_wd``."""
    cells = table.assign(wd=[_closest(w, wds) for w in table["weight_decay"]])
    cells = cells.groupby(["arch", "wd"])[[count, total]].sum()
    index = pd.MultiIndex.from_product([names, range(len(wds))])
    cells = cells.reindex(index)
    share = (cells[count] / cells[total].where(cells[total] > 0)).unstack()
    text = (cells[count].map(lambda k: f"{k:.0f}") + "/"
            + cells[total].map(lambda n: f"{n:.0f}")).unstack()
    ax.set_facecolor("#e6e6e6")
    sns.heatmap(share.reindex(names), mask=share.reindex(names).isna(), vmin=0, vmax=1,
                cmap=cmap, cbar=False, annot=text.reindex(names), fmt="", linewidths=0.6,
                linecolor="white", ax=ax, annot_kws=dict(
                    fontsize=mpl.rcParams["xtick.labelsize"] * 0.7))
    if mark_wd is not None and any(np.isclose(wds, mark_wd)):
        c = int(np.flatnonzero(np.isclose(wds, mark_wd))[0])
        ax.add_patch(mpl.patches.Rectangle((c, 0), 1, len(names), fill=False,
                                           edgecolor="black", linewidth=1.4, clip_on=False))
    ax.set_xticks(np.arange(len(wds)) + 0.5, [f"{w:g}" for w in wds], rotation=0)
    ax.set_yticks(np.arange(len(names)) + 0.5, names, rotation=0)
    ax.set(xlabel="", ylabel="")
    style.colour_ticklabels(ax.get_yticklabels(), names)
    ax.tick_params(length=0, labelsize=mpl.rcParams["xtick.labelsize"] * 0.85)


def _closest(value: float, grid: Sequence[float]) -> int:
    return int(np.argmin(np.abs(np.asarray(grid, dtype=float) - float(value))))


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
