"""C9, a specification curve: for every protocol (the main grid and the variants trained
beside it) x architecture, the effect of weight decay on test accuracy -- the
Hodges-Lehmann shift with its CI as the claims step wrote it to effects.csv -- sorted by
size, coloured by its outcome, named beside each point; on the right, each protocol's
verdict and what it changes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from . import panels, style
from ..claims.effects import NO_CHANGE
from .claims_view import ClaimsView
from .data import with_columns
from .registry import get

FIGURE = get("protocols")
CLAIM = "C9"
METRIC = "test_acc"
ROLE_MARKERS = {"headline": "D", "control": "s", "other": "o"}
ROLE_SIZES = {"headline": 42, "control": 24, "other": 24}
ROW_H = 0.17  # inches per point of the curve
FAILED_SHARE = 0.5  # an arm with more diverged runs than this: drawn hollow, CI off the axis


def specification(effects: pd.DataFrame) -> pd.DataFrame:
    """C9's test-accuracy effects with a finite estimate, in pp, sorted by size (the
    largest first), with the curve's position ``rank``."""
    frame = with_columns(effects, "claim", "protocol", "arch", "role", "metric", "estimate",
                         "ci_low", "ci_high", "outcome", "verdict", "factor", "unit",
                         "runs_wd", "diverged_wd", "runs_no_wd", "diverged_no_wd")
    if "claim" in effects:  # the table holds C6's and C8's effects too
        frame = frame[frame["claim"] == CLAIM]
    frame = frame[(frame["metric"] == METRIC) & np.isfinite(frame["estimate"].astype(float))]
    # "fraction" (0.01 = 1 pp) is the contract's unit; pp is what the verdicts quote
    scale = np.where(frame["unit"].fillna("fraction") == "fraction", 100.0, 1.0)
    frame = frame.assign(**{c: frame[c].astype(float) * scale
                            for c in ("estimate", "ci_low", "ci_high")})
    frame = frame.assign(role=frame["role"].where(frame["role"].isin(list(ROLE_MARKERS)), "other"),
                         outcome=frame["outcome"].fillna(NO_CHANGE))
    # the protocols in the table's order (main first), for the verdict list
    frame = frame.assign(protocol_order=frame["protocol"].map(
        {p: k for k, p in enumerate(dict.fromkeys(frame["protocol"]))}))
    frame = frame.assign(failed=_failed(frame))
    frame = frame.sort_values(["estimate", "protocol", "arch"], ascending=[False, True, True])
    return frame.assign(rank=np.arange(len(frame)))


def _failed(frame: pd.DataFrame) -> pd.Series:
    """Cells where most runs of an arm diverged: drawn hollow, their CI left out of the
    axis range (a chance-vs-chance interval would squash every real one)."""
    out = pd.Series(False, index=frame.index)
    for arm in ("wd", "no_wd"):
        runs = frame[f"runs_{arm}"].astype(float)
        out |= (frame[f"diverged_{arm}"].astype(float) > FAILED_SHARE * runs).fillna(False)
    return out


def _label(row) -> str:
    """The cell's name; for a mostly diverged one its counts and, as the claims say, its
    outcome: 'not comparable' only where every run of both arms failed -- weight decay
    making one arm diverge is a finding."""
    text = f" {row.protocol} · {row.arch}"
    if row.failed:
        text += (f" (diverged: WD {row.diverged_wd:.0f}/{row.runs_wd:.0f}, "
                 f"no-WD {row.diverged_no_wd:.0f}/{row.runs_no_wd:.0f}; {row.outcome})")
    return text


def _curve(ax, spec: pd.DataFrame) -> None:
    colours = spec["outcome"].map(style.OUTCOME_COLOURS).fillna(style.MISSING_COLOUR)
    lo, hi = spec["ci_low"].to_numpy(), spec["ci_high"].to_numpy()
    failed = spec["failed"].to_numpy(dtype=bool)
    bounded = np.isfinite(lo) & np.isfinite(hi) & ~failed
    ax.hlines(spec["rank"][bounded], lo[bounded], hi[bounded], colors=colours[bounded],
              linewidth=1.3, zorder=2, gid="ci")
    sound = spec[~failed]
    sns.scatterplot(sound, x="estimate", y="rank", hue="outcome",
                    palette=style.OUTCOME_COLOURS, style="role", markers=ROLE_MARKERS,
                    size="role", sizes=ROLE_SIZES, legend=False, edgecolor="face", ax=ax,
                    zorder=3)
    if failed.any():
        ax.scatter(spec["estimate"][failed], spec["rank"][failed], marker="o", s=30,
                   facecolors="none", edgecolors=style.MISSING_COLOUR, zorder=3, gid="failed")
    est = spec["estimate"].to_numpy()
    ends = np.where(bounded, hi, est)
    starts = np.where(bounded, lo, est)
    span = max(np.nanmax(ends) - np.nanmin(starts), 1e-9)
    for row, end in zip(spec.itertuples(index=False), ends):
        ax.text(end + 0.02 * span, row.rank, _label(row), va="center",
                ha="left", fontsize="x-small", color=style.colour(row.arch),
                fontweight="bold" if row.role == "headline" else "normal")
    ax.axvline(0, color="black", linewidth=0.7, zorder=1)
    ax.set_xlim(np.nanmin(starts) - 0.05 * span, np.nanmax(ends) + 0.6 * span)
    ax.set_ylim(len(spec) - 0.5, -0.5)
    ax.set_yticks([])
    ax.set(xlabel="weight decay's effect on test accuracy (pp): Hodges–Lehmann shift, 95% CI",
           ylabel="protocol × architecture, sorted by effect")
    ax.grid(axis="x", color=style.GRID_COLOUR, linewidth=0.6)


def _verdicts(ax, spec: pd.DataFrame) -> None:
    """Each protocol once: its name, what it changes and its own verdict."""
    ax.set_axis_off()
    protocols = spec.sort_values("protocol_order").drop_duplicates("protocol")
    ax.text(0, 1, "protocol verdicts", ha="left", va="top", fontweight="bold",
            transform=ax.transAxes)
    step = min(0.08, 0.9 / max(len(protocols), 1))
    for k, row in enumerate(protocols.itertuples(index=False)):
        verdict = str(row.verdict) if isinstance(row.verdict, str) else "n/a"
        y = 0.95 - (k + 0.5) * step
        ax.text(0, y, f"{row.protocol}: {verdict}", ha="left", va="center", fontsize="small",
                color=style.VERDICT_COLOURS.get(verdict, style.MISSING_COLOUR),
                fontweight="bold", transform=ax.transAxes, gid=f"protocol-{row.protocol}")
        factor = row.factor if isinstance(row.factor, str) and row.factor else "the main grid"
        ax.text(0.04, y - step * 0.38, factor, ha="left", va="center", fontsize="x-small",
                color="#444444", transform=ax.transAxes)


def _legend(spec: pd.DataFrame):
    outcomes = [o for o in style.OUTCOME_COLOURS if (spec["outcome"] == o).any()]
    roles = [r for r in ROLE_MARKERS if (spec["role"] == r).any()]
    failed = ([Line2D([], [], color=style.MISSING_COLOUR, marker="o", markerfacecolor="none",
                      linestyle="", label="most runs of an arm diverged")]
              if spec["failed"].any() else [])
    return ([Line2D([], [], color=style.OUTCOME_COLOURS[o], marker="o", label=o)
             for o in outcomes] + failed
            + [Line2D([], [], color="black", marker=ROLE_MARKERS[r], linestyle="",
                      label=f"{r} architecture") for r in roles])


@style.themed
def draw(tables, claims: ClaimsView):
    spec = specification(tables["effects"])
    cv = style.canvas(9.0, 1.0 + ROW_H * max(len(spec), 6), 1,
                      style.Header(claims, FIGURE.claims, FIGURE.title), _legend(spec))
    if spec.empty:
        ax = cv.blocks[0].subplots()
        panels.empty(ax, "no effects table (results/tables/effects.csv)")
        ax.set_axis_off()
        return cv.fig
    ax, side = cv.blocks[0].subplots(1, 2, gridspec_kw=dict(width_ratios=[3.2, 1]))
    _curve(ax, spec)
    _verdicts(side, spec)
    return cv.fig
