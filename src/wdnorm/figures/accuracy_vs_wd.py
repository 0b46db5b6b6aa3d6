"""C6: (a) the verdict itself -- per architecture, the paired effect of weight decay at
the pre-declared λ* on test accuracy and on the generalisation gap (Hodges-Lehmann shift
and 95% CI) against C6's margin; (b) the same effect at every λ of the grid, one column
per architecture on its own y range, with the test accuracy itself and the runs of one
seed joined; (c) per architecture x λ, the runs that collapsed into the ε floor or
diverged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from . import panels, style
from .claims_view import ClaimsView
from .data import claim_weight_decay, grid_runs, hl_interval, hl_shift, main_protocol, \
    paired_difference, settings, sorted_unique, status_rates
from .registry import get

FIGURE = get("accuracy_vs_wd")
#: (column, y label, what is drawn): the level, then the paired differences to λ = 0.
ROWS = (("test_acc", "test accuracy (%)", "level"),
        ("test_acc", "Δ test accuracy\nvs λ = 0 (pp)", "paired"),
        ("gen_gap_acc", "Δ train − test acc.\nvs λ = 0 (pp)", "paired"))
#: What C6 calls an improvement: higher test accuracy, a lower gap.
EFFECTS = (("test_acc", "Δ test accuracy (pp)", 1), ("gen_gap_acc", "Δ train − test gap (pp)", -1))


def differences(grid: pd.DataFrame, value: str, wds) -> pd.DataFrame:
    """Per architecture and λ > 0: each seed's ``value`` minus the same seed's at λ = 0,
    in pp, with the λ's position in ``wds`` (``x``)."""
    parts = [paired_difference(g, value) for _, g in grid.groupby("arch", sort=False)]
    diff = pd.concat(parts, ignore_index=True) if parts else grid.assign(diff=np.nan)
    diff = diff[diff["weight_decay"].astype(float) > 0]
    return diff.assign(pp=100 * diff["diff"], x=[wds.index(float(w)) for w in diff["weight_decay"]])


def roles(claims: ClaimsView) -> dict[str, str]:
    """{arch: its role in C6's rule (headline, control, ...)} as claims.json states it."""
    per_arch = claims.measured("C6").get("per_arch") or {}
    return {key.split("/")[-1]: cell["role"] for key, cell in per_arch.items()
            if isinstance(cell, dict) and cell.get("role")}


def _forest(ax, diff: pd.DataFrame, names, value, xlabel, sign, margin) -> None:
    """HL shift and CI at λ* per architecture (rows), C6's margin marked."""
    if diff.empty:
        panels.empty(ax, "no λ* run paired with λ = 0")
        return
    sns.pointplot(diff, x="pp", y="arch", order=names, hue="arch", palette=style.palette(names),
                  estimator=hl_shift, errorbar=hl_interval, linestyle="none", markersize=5,
                  capsize=0.25, err_kws=dict(linewidth=1.4), legend=False, ax=ax, gid="hl")
    ax.axvline(0, color="black", linewidth=0.7)
    if margin is not None:
        ax.axvline(sign * 100 * margin, color="black", linestyle="--", linewidth=0.8)
        ax.text(sign * 100 * margin, -0.7, f" margin {sign * 100 * margin:+g} pp",
                ha="left" if sign > 0 else "right", va="bottom", fontsize="small")
    ax.set(xlabel=xlabel, ylabel="")
    ax.set_ylim(len(names) - 0.5, -0.9)
    style.colour_ticklabels(ax.get_yticklabels(), names)
    ax.grid(axis="x", color=style.GRID_COLOUR, linewidth=0.6)


def _verdict_strip(target, grid, names, claim_wd, margin, role) -> None:
    axes = target.subplots(1, 2, sharey=True)
    at = grid[np.isclose(grid["weight_decay"].astype(float), claim_wd)] if claim_wd else grid[:0]
    base = grid[grid["weight_decay"].astype(float) == 0]
    for ax, (value, xlabel, sign) in zip(axes, EFFECTS):
        _forest(ax, differences(pd.concat([base, at]), value, sorted_unique(grid["weight_decay"])), names, value, xlabel, sign,
                margin if value == "test_acc" else None)
    labels = [f"{a} · {role[a]}" if a in role else a for a in names]
    axes[0].set_yticks(range(len(names)), labels)
    for text, arch in zip(axes[0].get_yticklabels(), names):
        text.set_color(style.colour(arch))
        text.set_fontweight("bold" if role.get(arch) == "headline" else "normal")
    target.suptitle(f"(a) the verdict's comparison: λ* = {claim_wd:g} vs λ = 0, paired by seed"
                    if claim_wd else "(a) no pre-declared λ*", fontsize="medium")


def _column(axes, part: pd.DataFrame, wds, colour) -> None:
    part = part.assign(x=[wds.index(float(w)) for w in part["weight_decay"]], level=100 * part["test_acc"])
    for ax, (value, _, kind) in zip(axes, ROWS):
        frame = part if kind == "level" else differences(part, value, wds)
        y = "level" if kind == "level" else "pp"
        if frame.empty or not np.isfinite(frame[y].astype(float)).any():
            panels.empty(ax, "no λ = 0 baseline" if kind == "paired" else "no data")
            continue
        panels.seeds(ax, frame, "x", y, colour)
        if kind == "level":
            panels.medians(ax, frame, "x", y, colour)
        else:
            ax.axhline(0.0, color="black", linewidth=0.7, zorder=1)
            panels.hl_shifts(ax, frame, "x", y, colour)


def _curves(target, grid, names, claim_wd) -> None:
    wds = sorted_unique(grid["weight_decay"])
    axes = target.subplots(len(ROWS), len(names), sharex=True, squeeze=False,
                           gridspec_kw=dict(hspace=0.05))
    star = next((i for i, w in enumerate(wds) if claim_wd and np.isclose(w, claim_wd)), None)
    for c, arch in enumerate(names):
        _column(axes[:, c], grid[grid["arch"] == arch], wds, style.colour(arch))
        for ax in axes[:, c]:
            if star is not None:
                ax.axvspan(star - 0.4, star + 0.4, color="#999999", alpha=0.2, zorder=0,
                           gid="claim-wd", linewidth=0)
            panels.ygrid(ax)
            ax.set(xlabel="", ylabel="")
        style.arch_title(axes[0, c], arch)
        axes[-1, c].set_xlabel("λ")
    for r, (_, ylabel, _) in enumerate(ROWS):
        axes[r, 0].set_ylabel(ylabel)
    for ax in axes[-1]:
        panels.named_xticks(ax, [f"{w:g}" for w in wds], rotation=45, bold=star, size=0.85)
    target.suptitle(f"(b) every λ of the grid (η = {', '.join(f'{v:g}' for v in sorted(grid['lr'].unique()))})"
                    "; each column on its own y range", fontsize="medium")


def _rates(target, grid, names, claim_wd) -> None:
    rates = status_rates(grid, ["arch", "weight_decay"])
    wds = sorted_unique(grid["weight_decay"])
    axes = target.subplots(1, 2, sharey=True)
    for ax, (status, cmap, title) in zip(axes, (
            ("collapsed", "Oranges", "(c) runs collapsed into the ε floor"),
            ("diverged", "Reds", "runs diverged"))):
        panels.share_heatmap(ax, rates, names, wds, status, cmap=cmap, mark_wd=claim_wd)
        ax.set_title(title)
        ax.set_xlabel("λ")


def _legend(margin, runs):
    handles = [panels.HL_HANDLE, panels.SEED_HANDLE, panels.MEDIAN_HANDLE,
               *panels.status_handles(runs), Patch(facecolor="#999999", alpha=0.2, label="C6's pre-declared λ*")]
    if margin is not None:
        handles.append(Line2D([], [], color="black", linestyle="--",
                              label=f"C6 margin: improvement < {100 * margin:g} pp"))
    return handles


@style.themed
def draw(tables, claims: ClaimsView):
    runs = main_protocol(tables["runs"])
    claim_wd = claim_weight_decay(runs, claims.declared_weight_decay()) if len(runs) else None
    margin = claims.number("C6", "margin")
    blocks = settings(runs)
    grids = [grid_runs(sub) for _, (sub,) in blocks if len(sub)]
    n_archs = max(len(style.order(runs["arch"])) if len(runs) else 1, 1)
    block_h = 1.0 + 0.22 * n_archs + 3 * 1.3 + 0.9 + 0.6 + 0.2 * n_archs
    cv = style.canvas(1.4 * n_archs + 1.2, block_h, len(blocks),
                      style.Header(claims, FIGURE.claims, FIGURE.title,
                                   blocks[0][0] if len(blocks) == 1 else ""),
                      _legend(margin, pd.concat(grids) if grids else runs))
    for (label_text, (sub,)), target in zip(blocks, cv.blocks):
        grid = grid_runs(sub) if len(sub) else sub
        if grid.empty:
            panels.empty(target.subplots(), "no grid runs")
        else:
            names = style.order(grid["arch"])
            verdict, curves, rates = style.split(
                target, [1.0 + 0.22 * len(names), 3 * 1.3 + 0.9, 0.6 + 0.2 * len(names)])
            _verdict_strip(verdict, grid, names, claim_wd, margin, roles(claims))
            _curves(curves, grid, names, claim_wd)
            _rates(rates, grid, names, claim_wd)
        style.setting_title(target, blocks, label_text)
    return cv.fig
