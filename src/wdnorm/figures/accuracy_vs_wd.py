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
from matplotlib.patches import Patch

from . import panels, style
from .claims_view import ClaimsView
from .data import claim_weight_decay, grid_runs, hl_interval, hl_shift, main_protocol, paired, \
    settings, sorted_unique, status_rates
from .registry import get

FIGURE = get("accuracy_vs_wd")
#: (column, y label) of the rows of (b): the level, then the paired differences to λ = 0.
ROWS = (("level", "test accuracy (%)"), ("test_acc", "Δ test accuracy\nvs λ = 0 (pp)"),
        ("gen_gap_acc", "Δ train − test acc.\nvs λ = 0 (pp)"))
#: The two effects of (a) and the sign of an improvement (C6's margin bounds it).
EFFECTS = (("test_acc", "Δ test accuracy (pp)", 1), ("gen_gap_acc", "Δ train − test gap (pp)", -1))


def differences(grid: pd.DataFrame, value: str, wds) -> pd.DataFrame:
    """Per architecture and λ > 0, ``pp``: each seed's ``value`` minus its own at λ = 0,
    with the λ's position in ``wds`` (``x``)."""
    parts = [paired(g, g["weight_decay"].astype(float) == 0, value)
             for _, g in grid.groupby("arch", sort=False)]
    diff = pd.concat(parts) if parts else grid.assign(pp=np.nan)
    return diff.assign(x=[wds.index(float(w)) for w in diff["weight_decay"]])


def roles(claims: ClaimsView) -> dict[str, str]:
    """{arch: its role in C6's rule (headline, control, ...)} as claims.json states it."""
    per_arch = claims.measured("C6").get("per_arch") or {}
    return {key.split("/")[-1]: cell["role"] for key, cell in per_arch.items()
            if isinstance(cell, dict) and cell.get("role")}


def _forest(ax, diff: pd.DataFrame, names, xlabel, bound) -> None:
    """HL shift and CI at λ* per architecture (rows), C6's margin marked."""
    ax.axvline(0, color="black", linewidth=0.7)
    ax.grid(axis="x", color=style.GRID_COLOUR, linewidth=0.6)
    ax.set(xlabel=xlabel, ylabel="")
    if diff.empty:
        panels.empty(ax, "no λ* run paired with λ = 0")
        return
    sns.pointplot(diff, x="pp", y="arch", order=names, hue="arch", palette=style.palette(names),
                  estimator=hl_shift, errorbar=hl_interval, linestyle="none", markersize=5,
                  capsize=0.25, err_kws=dict(linewidth=1.4), legend=False, ax=ax)
    if bound is not None:
        ax.axvline(bound, color="black", linestyle="--", linewidth=0.8)
    ax.set(xlabel=xlabel, ylabel="")


def _verdict_strip(target, grid, names, claim_wd, margin, role) -> None:
    axes = target.subplots(1, 2, sharey=True)
    wd = grid["weight_decay"].astype(float)
    pair = grid[(wd == 0) | (np.isclose(wd, claim_wd) if claim_wd else False)]
    for ax, (value, xlabel, sign) in zip(axes, EFFECTS):
        _forest(ax, differences(pair, value, sorted_unique(grid["weight_decay"])), names, xlabel,
                100 * sign * margin if margin is not None and value == "test_acc" else None)
    axes[0].set_yticks(range(len(names)), [f"{a} · {role[a]}" if a in role else a for a in names])
    for text, arch in zip(axes[0].get_yticklabels(), names):
        text.set(color=style.colour(arch), fontweight="bold" if role.get(arch) == "headline"
                 else "normal")
    axes[0].set_ylim(len(names) - 0.5, -0.5)
    target.suptitle(f"(a) the verdict's comparison: λ* = {claim_wd:g} vs λ = 0, paired by seed"
                    if claim_wd else "(a) no pre-declared λ*", fontsize="medium")


def _curves(target, grid, names, claim_wd) -> None:
    wds = sorted_unique(grid["weight_decay"])
    star = next((i for i, w in enumerate(wds) if claim_wd and np.isclose(w, claim_wd)), None)
    axes = target.subplots(len(ROWS), len(names), sharex=True, squeeze=False)
    for c, arch in enumerate(names):
        part = grid[grid["arch"] == arch]
        level = part.assign(x=[wds.index(float(w)) for w in part["weight_decay"]],
                            level=100 * part["test_acc"])
        panels.seeds(axes[0, c], level, "x", "level", style.colour(arch))
        panels.medians(axes[0, c], level, "x", "level", style.colour(arch))
        panels.ygrid(axes[0, c])
        for ax, (value, _) in zip(axes[1:, c], ROWS[1:]):
            panels.paired_panel(ax, differences(part, value, wds), style.colour(arch))
        for ax in axes[:, c]:
            if star is not None:
                ax.axvspan(star - 0.4, star + 0.4, color="#999999", alpha=0.2, zorder=0,
                           gid="claim-wd", linewidth=0)
            ax.set(xlabel="", ylabel="")
        style.arch_title(axes[0, c], arch)
        panels.named_xticks(axes[-1, c], [f"{w:g}" for w in wds], rotation=45, bold=star,
                            size=0.85)
        axes[-1, c].set_xlabel("λ")
    for ax, (_, ylabel) in zip(axes[:, 0], ROWS):
        ax.set_ylabel(ylabel)
    lrs = ", ".join(f"{v:g}" for v in sorted(grid["lr"].unique()))
    target.suptitle(f"(b) every λ of the grid (η = {lrs}); each column on its own y range",
                    fontsize="medium")


def _rates(target, grid, names, claim_wd) -> None:
    rates = status_rates(grid, ["arch", "weight_decay"])
    axes = target.subplots(1, 2, sharey=True)
    for ax, (status, cmap, title) in zip(axes, (
            ("collapsed", "Oranges", "(c) runs collapsed into the ε floor"),
            ("diverged", "Reds", "runs diverged"))):
        panels.share_heatmap(ax, rates, names, sorted_unique(grid["weight_decay"]), status,
                             cmap=cmap, mark_wd=claim_wd)
        ax.set(title=title, xlabel="λ")


def _legend(margin, grids):
    handles = [panels.HL_HANDLE, panels.SEED_HANDLE, panels.MEDIAN_HANDLE,
               *panels.status_handles(grids),
               Patch(facecolor="#999999", alpha=0.2, label="C6's pre-declared λ*")]
    if margin is not None:
        handles.append(panels.bound_handle(f"C6 margin: improvement < {100 * margin:g} pp"))
    return handles


@style.themed
def draw(tables, claims: ClaimsView):
    runs = main_protocol(tables["runs"])
    claim_wd = claim_weight_decay(runs, claims.declared_weight_decay()) if len(runs) else None
    margin = claims.number("C6", "margin")
    blocks = [(label, grid_runs(sub) if len(sub) else sub) for label, (sub,) in settings(runs)]
    n = max(len(style.order(runs["arch"])) if len(runs) else 1, 1)
    heights = [1.0 + 0.22 * n, 3 * 1.3 + 0.9, 0.6 + 0.2 * n]
    grids = pd.concat([grid for _, grid in blocks])
    cv = style.canvas(1.4 * n + 1.2, sum(heights), len(blocks), style.Header(
        claims, FIGURE.claims, FIGURE.title, blocks[0][0] if len(blocks) == 1 else ""),
        _legend(margin, grids))
    for (label_text, grid), target in zip(blocks, cv.blocks):
        if grid.empty:
            panels.empty(target.subplots(), "no grid runs")
        else:
            names = style.order(grid["arch"])
            verdict, curves, rates = style.split(target, heights)
            _verdict_strip(verdict, grid, names, claim_wd, margin, roles(claims))
            _curves(curves, grid, names, claim_wd)
            _rates(rates, grid, names, claim_wd)
        style.setting_title(target, blocks, label_text)
    return cv.fig
