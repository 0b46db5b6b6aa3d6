"""The look shared by every figure: theme, architecture colours and labels (from the
architecture records of :mod:`wdnorm.archs`), the fixed-strip canvas with its verdict
header, and :func:`save_figure` (atomic, byte-reproducible).

Figures are built with matplotlib's object API inside :func:`themed`, never through
pyplot's global state, so the same call gives the same picture in a notebook, a test or
a script.
"""

from __future__ import annotations

import functools
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Annotation

from .. import archs
from ..fileio import atomic_path
from .claims_view import ClaimsView

VERDICT_COLOURS = {"supported": "#1b7837", "refuted": "#b2182b", "inconclusive": "#b35806"}
MISSING_COLOUR = archs.MISSING_COLOUR
GRID_COLOUR = "#eeeeee"
#: Seed of every jitter, so a figure redraws to the same bytes.
RNG_SEED = 0

# seaborn's "ticks" style at "paper" context (seaborn 0.13), frozen here because
# importing seaborn costs every figure job a second (scipy.stats); a test checks it
# against seaborn itself.
SEABORN_THEME: dict[str, Any] = {
    "figure.facecolor": "white", "axes.facecolor": "white", "axes.edgecolor": ".15",
    "axes.labelcolor": ".15", "text.color": ".15", "xtick.color": ".15", "ytick.color": ".15",
    "xtick.direction": "out", "ytick.direction": "out", "xtick.top": False,
    "ytick.right": False, "xtick.bottom": True, "ytick.left": True, "axes.axisbelow": True,
    "axes.grid": False, "grid.color": ".8", "grid.linestyle": "-",
    "font.family": ["sans-serif"],
    "font.sans-serif": ["Arial", "DejaVu Sans", "Liberation Sans", "Bitstream Vera Sans",
                        "sans-serif"],
    "lines.solid_capstyle": "round", "patch.edgecolor": "w", "patch.force_edgecolor": True,
    "image.cmap": "rocket", "axes.spines.left": True, "axes.spines.bottom": True,
    "axes.spines.right": True, "axes.spines.top": True, "axes.linewidth": 1.0,
    "grid.linewidth": 0.8, "lines.linewidth": 1.2, "lines.markersize": 4.8,
    "patch.linewidth": 0.8, "xtick.major.width": 1.0, "ytick.major.width": 1.0,
    "xtick.minor.width": 0.8, "ytick.minor.width": 0.8, "xtick.major.size": 4.8,
    "ytick.major.size": 4.8, "xtick.minor.size": 3.2, "ytick.minor.size": 3.2,
    "font.size": 9.6, "axes.labelsize": 9.6, "axes.titlesize": 9.6, "xtick.labelsize": 8.8,
    "ytick.labelsize": 8.8, "legend.fontsize": 8.8, "legend.title_fontsize": 9.6,
}


def theme() -> dict[str, Any]:
    """rcParams of every figure: the seaborn theme, the architecture colours as the
    colour cycle, embeddable fonts and no per-save randomness."""
    return {**SEABORN_THEME,
            "axes.prop_cycle": mpl.cycler(color=[a.colour for a in archs.REGISTRY.values()]),
            "figure.titlesize": SEABORN_THEME["axes.titlesize"] * 1.15,
            "legend.frameon": False, "legend.title_fontsize": SEABORN_THEME["legend.fontsize"],
            "lines.markersize": 4.5, "pdf.fonttype": 42, "ps.fonttype": 42,
            "svg.fonttype": "path", "svg.hashsalt": "wdnorm", "image.cmap": "RdBu_r"}


def themed(draw):
    """Run a draw function inside the theme's rc context."""
    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with mpl.rc_context(theme()):
            return draw(*args, **kwargs)
    return wrapper


# --------------------------------------------------------------------------- architectures

def colour(arch: str) -> str:
    return archs.colour(arch)


def order(values) -> list[str]:
    return archs.order(values)


def record(arch: str) -> archs.Arch | None:
    return archs.REGISTRY.get(arch)


def label(arch: str) -> str:
    """``"ln: ReLU(LN(Wh+b))"``: the name and the block its record computes."""
    rec = record(arch)
    if rec is None:
        return arch
    formula = rec.formula.removeprefix("h <- ").replace("W h + b", "Wh+b").replace(" + ", "+")
    return f"{arch}: {formula}"


def invariance_tag(arch: str) -> str:
    """The predicted symmetry in words (docs/architectures.md)."""
    rec = record(arch)
    if rec is None or not rec.invariant:
        return "not invariant"
    return "invariant per layer" if rec.per_layer_invariant != "none" else "jointly invariant"


def arch_handles(names: Sequence[str], marker: str = "o", line: bool = True):
    return [Line2D([], [], color=colour(a), marker=marker, linestyle="-" if line else "",
                   markersize=5, label=label(a)) for a in names]


def colour_ticklabels(labels, names: Sequence[str]) -> None:
    for text, arch in zip(labels, names):
        text.set_color(colour(arch))


# --------------------------------------------------------------------------- canvas

_TITLE_H = 0.26       # inches of the header's title line
_CLAIM_H = 0.23       # inches per claim line
_LEGEND_ROW_H = 0.19  # inches per legend row
_MIN_WIDTH = 7.2      # inches: room for the header


@dataclass
class Canvas:
    """Fixed strips, top to bottom: header, one block per (dataset, optimiser), legend.
    Each strip is a constrained-layout subfigure, so panels never run into the header or
    the legend whatever the labels' sizes."""

    fig: Figure
    head: Any
    blocks: list
    foot: Any
    head_h: float

    def legend(self, handles, ncol: int) -> None:
        self.foot.legend(handles=handles, loc="center", ncol=ncol, handlelength=1.8,
                         columnspacing=1.4, borderaxespad=0.0)


def canvas(width: float, block_h: float, n_blocks: int, n_claims: int,
           legend_rows: int) -> Canvas:
    head_h = 0.1 + _TITLE_H + n_claims * _CLAIM_H
    foot_h = 0.1 + max(legend_rows, 1) * _LEGEND_ROW_H
    heights = [head_h] + [block_h] * n_blocks + [foot_h]
    fig = Figure(figsize=(max(width, _MIN_WIDTH), sum(heights)), layout="constrained")
    fig.get_layout_engine().set(w_pad=0.02, h_pad=0.02, hspace=0.0, wspace=0.0)
    subs = split(fig, heights)
    return Canvas(fig, subs[0], subs[1:-1], subs[-1], head_h)


def split(parent, height_ratios: Sequence[float]) -> list:
    """Subfigures stacked top to bottom. Their (transparent) background patches are not
    drawn: the constrained-layout solver sometimes places a strip's edge at -0.0 rather
    than 0.0, which would change the PDF's bytes from one save to the next."""
    subs = list(parent.subfigures(len(height_ratios), 1, height_ratios=list(height_ratios)))
    for sub in subs:
        sub.patch.set_visible(False)
    return subs


def legend_rows(handles: Sequence, ncol: int) -> int:
    return -(-len(handles) // ncol)


def _fit(text: str, width_in: float, size: float) -> str:
    chars = int(width_in * 72 / (0.55 * size))
    return textwrap.shorten(text, max(chars, 20), placeholder=" …")


def header(cv: Canvas, claims: ClaimsView, cids: Sequence[str], title: str,
           setting: str = "") -> None:
    """The header strip: a bold title, then one line per claim -- a badge coloured by
    verdict, the claim's n and test, and its key numbers, all from claims.json."""
    head, width = cv.head, cv.fig.get_figwidth()
    size, small = mpl.rcParams["figure.titlesize"], mpl.rcParams["legend.fontsize"]
    text = f"{title}  ({setting})" if setting else title
    head.text(0.005, 1 - 0.06 / cv.head_h, _fit(text, width - 0.15, size), ha="left",
              va="top", fontweight="bold", fontsize=size)
    for k, cid in enumerate(cids):
        verdict = claims.verdict(cid)
        y = 1 - (0.06 + _TITLE_H + (k + 0.5) * _CLAIM_H) / cv.head_h
        badge = head.text(0.012, y, f"{cid}: {verdict}", ha="left", va="center",
                          color="white", fontweight="bold", fontsize=small,
                          gid=f"verdict-{cid}",
                          bbox=dict(boxstyle="round,pad=0.22", edgecolor="none",
                                    facecolor=VERDICT_COLOURS.get(verdict.lower(),
                                                                  MISSING_COLOUR)))
        # n first: a long test name or key numbers are what gets cut
        line = f"{claims.n(cid)} · {claims.test(cid)}"
        numbers = claims.key_numbers(cid)
        line = _fit(f"{line} — {numbers}" if numbers else line, width - 1.3, small)
        # placed after the badge, whatever its rendered width
        head.add_artist(Annotation(line, xy=(1, 0.5), xycoords=badge, xytext=(8, 0),
                                   textcoords="offset points", ha="left", va="center",
                                   fontsize=small, color="#222222", gid=f"test-{cid}"))


def setting_title(target, blocks, label_text: str) -> None:
    """A block's (dataset · optimiser) title, when the figure stacks several."""
    if len(blocks) > 1 and label_text:
        target.suptitle(label_text)


# --------------------------------------------------------------------------- saving

#: Grid (figure fraction) the solved layout is rounded to before saving.
_SNAP = 1e-5


def _snap_layout(fig: Figure) -> None:
    """Round every subfigure and axes position the layout solver chose to a grid far
    below a pixel: the solver's last digits depend on the process's history (the
    order it meets equal constraints), and would otherwise reach the PDF's bytes."""
    def snap(bbox):
        bbox.set_points(np.round(bbox.get_points() / _SNAP) * _SNAP)

    for sub in fig.subfigs:
        for nested in [sub, *_subfigures(sub)]:
            snap(nested.bbox_relative)
    for ax in fig.get_axes():
        pos = ax.get_position(original=True).frozen()
        snap(pos)
        ax._set_position(pos, which="both")


def _subfigures(parent) -> list:
    return [s for sub in parent.subfigs for s in (sub, *_subfigures(sub))]


# Metadata that would otherwise change on every save (dates), so that redrawing a figure
# from the same tables reproduces the same bytes.
_METADATA = {"pdf": {"CreationDate": None}, "svg": {"Date": None}, "png": {"Software": None}}


def save_figure(fig: Figure, stem: str | Path, formats: Sequence[str] = ("png",),
                dpi: int = 150) -> list[Path]:
    """Write ``{stem}.{fmt}`` for every format, each atomically (temporary file in the
    same directory, then rename). Returns the paths in ``formats`` order. A figure job
    (a fresh process) drawing the same tables writes the same bytes; within one long
    process the layout solver may differ in the last printed digit from draw to draw."""
    formats = [str(f).lower().lstrip(".") for f in formats]
    supported = fig.canvas.get_supported_filetypes()
    unknown = [f for f in formats if f not in supported]
    if unknown:
        raise ValueError(f"unsupported figure format(s) {unknown}; "
                         f"matplotlib writes: {', '.join(sorted(supported))}")
    # Solve the constrained layout once and keep it for every format: each savefig
    # would solve it again (the costliest part of saving a many-panel figure).
    engine = fig.get_layout_engine()
    fig.draw_without_rendering()
    fig.set_layout_engine("none")
    _snap_layout(fig)
    paths = []
    try:
        for fmt in formats:
            path = Path(f"{stem}.{fmt}")
            with atomic_path(path) as tmp, mpl.rc_context({"svg.hashsalt": "wdnorm"}):
                # the temporary name ends in .tmp: the format must be given explicitly
                fig.savefig(tmp, format=fmt, dpi=dpi, metadata=_METADATA.get(fmt))
            paths.append(path)
    finally:
        fig.set_layout_engine(engine)
    return paths
