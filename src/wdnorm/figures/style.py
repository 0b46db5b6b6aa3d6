"""The look shared by every figure: seaborn's theme, the architecture colours and labels
(from the architecture records of :mod:`wdnorm.archs`), the fixed-strip canvas with its
verdict header, and :func:`save_figure` (atomic, byte-reproducible).

Figures are drawn with seaborn's axes-level functions and matplotlib's object API inside
:func:`themed`, never through pyplot's global state (nor ``sns.set_theme``, which is
global too), so the same call gives the same picture in a notebook, a test or a script.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import matplotlib as mpl
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextToPath

from .. import archs
from ..claims import effects
from ..fileio import atomic_path
from .claims_view import ClaimsView

VERDICT_COLOURS = {"supported": "#1b7837", "refuted": "#b2182b", "inconclusive": "#b35806"}
OUTCOME_COLOURS = {effects.IMPROVED: "#1b7837", effects.HARMED: "#b2182b",
                   effects.NO_CHANGE: "#8c8c8c"}
MISSING_COLOUR = archs.MISSING_COLOUR
GRID_COLOUR = "#eeeeee"
#: Seed of every jitter, so a figure redraws to the same bytes.
RNG_SEED = 0


def theme() -> dict[str, Any]:
    """rcParams of every figure: seaborn's "ticks" style at "paper" context, the
    architecture colours as the colour cycle, embeddable fonts, no per-save randomness."""
    base = {**sns.axes_style("ticks"), **sns.plotting_context("paper")}
    return {**base,
            "axes.prop_cycle": mpl.cycler(color=[a.colour for a in archs.REGISTRY.values()]),
            "figure.titlesize": base["axes.titlesize"] * 1.15,
            "legend.frameon": False, "legend.title_fontsize": base["legend.fontsize"],
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


def palette(names: Sequence[str]) -> dict[str, str]:
    """seaborn's ``palette`` for ``hue="arch"``: each architecture its record's colour."""
    return {a: colour(a) for a in names}


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


def arch_title(ax, arch: str, scale: float = 0.9) -> None:
    """A panel's title: the architecture and its predicted symmetry, in its colour."""
    ax.set_title(f"{arch}\n{invariance_tag(arch)}", color=colour(arch),
                 fontsize=mpl.rcParams["axes.titlesize"] * scale)


def colour_ticklabels(labels, names: Sequence[str]) -> None:
    for text, arch in zip(labels, names):
        text.set_color(colour(arch))


# --------------------------------------------------------------------------- text

def text_width(text: str, size: float, bold: bool = False) -> float:
    """Rendered width of ``text`` in inches (the font's own metrics, no renderer)."""
    prop = FontProperties(size=size, weight="bold" if bold else "normal")
    return TextToPath().get_text_width_height_descent(text, prop, ismath=False)[0] / 72


def wrap(text: str, width_in: float, size: float, bold: bool = False) -> list[str]:
    """``text`` broken at spaces into lines no wider than ``width_in`` inches: a long
    line is wrapped, never cut, so key numbers are never lost."""
    lines: list[str] = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and text_width(candidate, size, bold) <= width_in:
            lines[-1] = candidate
        else:
            lines.append(word)
    return lines or [""]


# --------------------------------------------------------------------------- canvas

_LINE = 1.4            # line height, in font sizes
_BADGE_PAD = 0.22      # badge padding, in font sizes
_MARGIN = 0.08         # inches left and right of the header and legend
_MIN_WIDTH = 7.2       # inches: room for the header


@dataclass(frozen=True)
class Header:
    """What the header strip says: a bold title (and the setting it shows), then one
    line per claim -- a badge coloured by verdict ("fragile" where claims.json's
    stability check says so), the claim's n, test and key numbers, wrapped."""

    claims: ClaimsView
    cids: Sequence[str]
    title: str
    setting: str = ""

    def badge(self, cid: str) -> str:
        fragile = " · fragile" if self.claims.fragile(cid) else ""
        return f"{cid}: {self.claims.verdict(cid)}{fragile}"

    def claim_text(self, cid: str) -> str:
        numbers = self.claims.key_numbers(cid)
        line = f"{self.claims.n(cid)} · {self.claims.test(cid)}"
        return f"{line} — {numbers}" if numbers else line


@dataclass
class Canvas:
    """Fixed strips, top to bottom: header, one block per (dataset, optimiser), legend.
    Each strip is a constrained-layout subfigure, so panels never run into the header or
    the legend whatever the labels' sizes."""

    fig: Figure
    head: Any
    blocks: list
    foot: Any


def _legend_columns(handles, width: float) -> int:
    """As many legend columns as the widest entry allows at figure width ``width``."""
    small = mpl.rcParams["legend.fontsize"]
    widest = max(text_width(h.get_label(), small) for h in handles) + 4 * small / 72
    return max(1, min(len(handles), int((width - 2 * _MARGIN) // widest)))


def _legend_height(handles, width: float) -> float:
    if not handles:
        return 0.05
    rows = -(-len(handles) // _legend_columns(handles, width))
    lines = max(h.get_label().count("\n") + 1 for h in handles)
    return 0.1 + rows * lines * mpl.rcParams["legend.fontsize"] * _LINE / 72


def _header_rows(header: Header, width: float) -> list[list[tuple]]:
    """Lines of the header, top to bottom; each a list of (x inches, text, size, bold,
    badge colour or None)."""
    size, small = mpl.rcParams["figure.titlesize"], mpl.rcParams["legend.fontsize"]
    title = f"{header.title}  ({header.setting})" if header.setting else header.title
    rows = [[(0.0, line, size, True, None)] for line in wrap(title, width, size, True)]
    for cid in header.cids:
        badge = header.badge(cid)
        face = VERDICT_COLOURS.get(header.claims.verdict(cid).lower(), MISSING_COLOUR)
        indent = text_width(badge, small, True) + (2 * _BADGE_PAD + 0.7) * small / 72
        lines = wrap(header.claim_text(cid), width - indent, small)
        rows.append([(0.03, badge, small, True, face), (indent, lines[0], small, False, None)])
        rows += [[(indent, line, small, False, None)] for line in lines[1:]]
    return rows


def _draw_header(head, rows, width: float, height: float, cids) -> None:
    badges = iter(cids)
    y = height - 0.06
    for row in rows:
        y -= row[0][2] * _LINE / 72
        for x, text, size, bold, face in row:
            badge = dict(color="white", gid=f"verdict-{next(badges)}", bbox=dict(
                boxstyle=f"round,pad={_BADGE_PAD}", edgecolor="none", facecolor=face)) \
                if face else {}
            head.text((_MARGIN + x) / width, y / height, text, ha="left", va="baseline",
                      fontsize=size, fontweight="bold" if bold else "normal", **badge)


def canvas(width: float, block_h: float, n_blocks: int, header: Header,
           handles: Sequence = ()) -> Canvas:
    """The figure: ``header`` on top (its height from its wrapped lines), ``n_blocks``
    strips of ``block_h`` inches, the legend of ``handles`` at the bottom."""
    width = max(width, _MIN_WIDTH)
    rows = _header_rows(header, width - 2 * _MARGIN - 0.05)
    head_h = 0.14 + sum(row[0][2] * _LINE / 72 for row in rows)
    heights = [head_h] + [block_h] * n_blocks + [_legend_height(handles, width)]
    fig = Figure(figsize=(width, sum(heights)), layout="constrained")
    fig.get_layout_engine().set(w_pad=0.02, h_pad=0.02, hspace=0.0, wspace=0.0)
    subs = split(fig, heights)
    _draw_header(subs[0], rows, width, head_h, header.cids)
    if handles:
        subs[-1].legend(handles=list(handles), loc="center", borderaxespad=0.0,
                        ncol=_legend_columns(handles, width), handlelength=1.8,
                        columnspacing=1.0)
    return Canvas(fig, subs[0], subs[1:-1], subs[-1])


def split(parent, height_ratios: Sequence[float], horizontal: bool = False) -> list:
    """Subfigures stacked top to bottom (or side by side). Their (transparent)
    background patches are not drawn: the constrained-layout solver sometimes places a
    strip's edge at -0.0 rather than 0.0, which would change the PDF's bytes."""
    ratios = list(height_ratios)
    grid = ((1, len(ratios)), dict(width_ratios=ratios)) if horizontal else \
        ((len(ratios), 1), dict(height_ratios=ratios))
    subs = list(parent.subfigures(*grid[0], squeeze=False, **grid[1]).ravel())
    for sub in subs:
        sub.patch.set_visible(False)
    return subs


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
    # Solved at the saving dpi: Agg's hinted text is not exactly proportional to the
    # dpi, and a layout solved at another one clips the longest tick labels.
    engine = fig.get_layout_engine()
    fig.set_dpi(dpi)
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
