"""C7, the mechanism: per architecture with a predicted symmetry, test accuracy of the
grid runs at λ = 0 and at C6's λ (λ*) and of the three equivalents of the λ* run
(exact, schedule, mimic), paired by seed; below, the float64 exact-equivalence probe
for every architecture (the non-invariant ones are the contrast, where it must fail)."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from . import panels, style
from .claims_view import ClaimsView
from .data import EQUIVALENT_KINDS, GRID_KIND, as_bool, column, equivalent_weight_decays, \
    grid_lr, kinds, settings, with_columns
from .registry import get

FIGURE = get("mechanism")
ARMS = ("λ = 0", "λ*", *EQUIVALENT_KINDS)
PROBE_MARKERS = {"exact": "o", "schedule": "s", "exact_unscaled_eps": "^"}


def arms(runs: pd.DataFrame, wd: float) -> pd.DataFrame:
    """The runs of the five arms for the equivalents of the grid run at λ = ``wd``,
    with an ``arm`` column; every arm at the grid's learning rate."""
    lr = grid_lr(runs)
    at_lr = runs[np.isclose(runs["lr"].astype(float), lr)]
    equivalents = at_lr[kinds(at_lr).isin(EQUIVALENT_KINDS)
                        & np.isclose(at_lr["weight_decay"], wd)]
    grid = at_lr[kinds(at_lr) == GRID_KIND]
    parts = [grid[grid["weight_decay"] == 0].assign(arm=ARMS[0]),
             grid[np.isclose(grid["weight_decay"], wd)].assign(arm=ARMS[1]),
             equivalents.assign(arm=kinds(equivalents))]
    return pd.concat(parts, ignore_index=True)


def _arm_label(frame: pd.DataFrame, arm: str) -> str:
    """The arm's name and, where any run diverged (always for mimic), "k/n div."."""
    rows = frame[frame["arm"] == arm]
    diverged = int((column(rows, "status", "ok") == "diverged").sum())
    if diverged or arm == "mimic":
        return f"{arm}\n{diverged}/{len(rows)} div."
    return arm


def _arm_panel(ax, frame: pd.DataFrame, arch: str, wd: float) -> None:
    present = [a for a in ARMS if (frame["arm"] == a).any()]
    if not present:
        panels.empty(ax)
        return
    position = {a: i for i, a in enumerate(ARMS)}
    x = frame["arm"].map(position)
    panels.paired_seeds(ax, frame, x, "test_acc", style.colour(arch), scale=100.0)
    ax.set_xticks(range(len(ARMS)), [_arm_label(frame, a).replace("λ*", f"λ* = {wd:g}")
                                     for a in ARMS],
                  fontsize=mpl.rcParams["xtick.labelsize"] * 0.85, rotation=35, ha="right",
                  rotation_mode="anchor")
    ax.set_xlim(-0.5, len(ARMS) - 0.5)
    panels.ygrid(ax)


def _arms_row(axes, sub: pd.DataFrame, names, wd: float) -> None:
    frame = arms(sub, wd)
    for ax, arch in zip(axes, names):
        _arm_panel(ax, frame[frame["arch"] == arch], arch, wd)
        ax.set_title(f"{style.label(arch)}\n{style.invariance_tag(arch)}",
                     color=style.colour(arch), fontsize=mpl.rcParams["axes.titlesize"] * 0.85)
    axes[0].set_ylabel("test accuracy (%)")


def _probe(ax_diff, ax_steps, probe: pd.DataFrame | None, track_steps: float | None) -> None:
    if probe is None or probe.empty:
        panels.empty(ax_diff, "no equivalence probe")
        panels.empty(ax_steps, "no equivalence probe")
        return
    names = style.order(probe["arch"])
    tracks = as_bool(column(probe, "tracks", False))
    for k, (variant, marker) in enumerate(PROBE_MARKERS.items()):
        rows = probe[probe["variant"] == variant]
        x = rows["arch"].map({a: i for i, a in enumerate(names)}) + (k - 1) * 0.2
        for ax, value in ((ax_diff, rows["max_rel_loss_diff"].astype(float).clip(lower=1e-17)),
                          (ax_steps, rows["steps_within_tol"].astype(float))):
            ax.scatter(x, value, marker=marker, s=26, zorder=3, linewidths=0.9,
                       edgecolors=[style.colour(a) for a in rows["arch"]],
                       facecolors=[style.colour(a) if t else "white"
                                   for a, t in zip(rows["arch"], tracks[rows.index])])
    tol = float(probe["tol"].iloc[0]) if "tol" in probe else 1e-8
    panels.threshold(ax_diff, tol, f"tolerance {tol:g}")
    if track_steps is not None:
        panels.threshold(ax_steps, track_steps, f"C7: tracks ≥ {track_steps:g} steps")
    ax_diff.set(yscale="log", ylabel="max relative per-step\nloss difference to the WD run",
                title="exact-equivalence probe (float64)")
    ax_steps.set(ylabel="steps within tolerance", title="steps the equivalent tracks")
    for ax in (ax_diff, ax_steps):
        ax.set_xticks(range(len(names)), names, rotation=35, ha="right", rotation_mode="anchor")
        style.colour_ticklabels(ax.get_xticklabels(), names)
        ax.set_xlim(-0.6, len(names) - 0.4)
        panels.ygrid(ax)


def _block(target, sub: pd.DataFrame, probe: pd.DataFrame | None, wds, track_steps) -> None:
    names = [a for a in style.order(sub["arch"]) if style.record(a) and style.record(a).invariant]
    top, bottom = style.split(target, [2.6 * max(len(wds), 1), 2.6])
    if names and wds:
        axes = top.subplots(len(wds), len(names), sharey=True, squeeze=False)
        for row, wd in zip(axes, wds):
            _arms_row(row, sub, names, wd)
    else:
        panels.empty(top.subplots(), "no equivalent runs on an invariant architecture")
    _probe(*bottom.subplots(1, 2), probe, track_steps)


def _legend():
    return [Line2D([], [], color="black", marker="o", label="mean, 95% t-interval over seeds"),
            Line2D([], [], color="black", alpha=0.3, linewidth=0.6, label="one seed"),
            Line2D([], [], color="black", marker="x", linestyle="", label="diverged run"),
            *[Line2D([], [], color="black", marker=m, linestyle="", label=f"probe: {v}")
              for v, m in PROBE_MARKERS.items()],
            Line2D([], [], color="black", marker="o", markerfacecolor="white", linestyle="",
                   label="probe: does not track")]


@style.themed
def draw(tables, claims: ClaimsView):
    runs = with_columns(tables["runs"], "arch", "kind", "lr", "weight_decay", "seed", "test_acc")
    probe_all = tables["equivalence_probe"]
    blocks = settings(runs, probe_all)
    wds = equivalent_weight_decays(runs) if len(runs) else []
    n_inv = sum(1 for a in style.order(runs.get("arch", []))
                if style.record(a) and style.record(a).invariant)
    handles = _legend()
    cv = style.canvas(2.1 * max(n_inv, 3) + 0.8, 2.6 * (max(len(wds), 1) + 1) + 0.4,
                      len(blocks), 1, style.legend_rows(handles, 4))
    track_steps = claims.number("C7", "track_steps")
    for (label_text, (sub, probe)), target in zip(blocks, cv.blocks):
        _block(target, sub, probe, equivalent_weight_decays(sub) if len(sub) else [],
               track_steps)
        style.setting_title(target, blocks, label_text)
    cv.legend(handles, ncol=4)
    style.header(cv, claims, FIGURE.claims, FIGURE.title,
                 blocks[0][0] if len(blocks) == 1 else "")
    return cv.fig
