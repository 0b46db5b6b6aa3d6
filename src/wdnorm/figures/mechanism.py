"""C7, the mechanism: per architecture with a predicted symmetry, the test accuracy of
each arm minus that of the grid run at C6's λ (λ*) of the same seed -- λ = 0 and the
three equivalents of the λ* run without decay (exact, schedule, mimic) -- with the
Hodges-Lehmann shift and CI the verdict uses, against C7's equivalence margin; below,
the float64 exact-equivalence probe for every architecture (the non-invariant ones are
the contrast, where it must fail)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from . import panels, style
from .claims_view import ClaimsView
from ..frames import as_bool
from .data import EQUIVALENT_KINDS, GRID_KIND, column, equivalent_weight_decays, \
    grid_lr, kinds, main_protocol, paired, settings, with_columns
from .registry import get

FIGURE = get("mechanism")
REFERENCE = "λ*"
ARMS = ("λ = 0", *EQUIVALENT_KINDS)
PROBE_MARKERS = {"exact": "o", "schedule": "s", "exact_unscaled_eps": "^"}


def arms(runs: pd.DataFrame, wd: float) -> pd.DataFrame:
    """The runs of the λ* grid run and of the arms compared with it, with an ``arm``
    column; every arm at the grid's learning rate."""
    lr = grid_lr(runs)
    at_lr = runs[np.isclose(runs["lr"].astype(float), lr)]
    equivalents = at_lr[kinds(at_lr).isin(EQUIVALENT_KINDS)
                        & np.isclose(at_lr["weight_decay"], wd)]
    grid = at_lr[kinds(at_lr) == GRID_KIND]
    parts = [grid[grid["weight_decay"] == 0].assign(arm=ARMS[0]),
             grid[np.isclose(grid["weight_decay"], wd)].assign(arm=REFERENCE),
             equivalents.assign(arm=kinds(equivalents))]
    return pd.concat(parts, ignore_index=True)


def _arm_label(frame: pd.DataFrame, arm: str) -> str:
    """The arm's name and, where any run diverged (always for mimic), "k/n div."."""
    rows = frame[frame["arm"] == arm]
    diverged = int((column(rows, "status", "ok") == "diverged").sum())
    if diverged or arm == "mimic":
        return f"{arm}\n{diverged}/{len(rows)} div."
    return arm


def _arm_panel(ax, frame: pd.DataFrame, arch: str, margin_pp: float | None) -> None:
    diff = paired(frame, frame["arm"] == REFERENCE)
    panels.paired_panel(ax, diff.assign(x=diff["arm"].map({a: i for i, a in enumerate(ARMS)})),
                        style.colour(arch), band=margin_pp, connect=False)
    panels.named_xticks(ax, [_arm_label(frame, a) for a in ARMS], rotation=35, size=0.85)
    ax.set(xlabel="", ylabel="")


def _arms_row(axes, sub: pd.DataFrame, names, wd: float, margin_pp) -> None:
    frame = arms(sub, wd)
    for ax, arch in zip(axes, names):
        _arm_panel(ax, frame[frame["arch"] == arch], arch, margin_pp)
        style.arch_title(ax, arch)
    axes[0].set_ylabel(f"Δ test accuracy vs the\nλ* = {wd:g} run (pp)")


def _probe(ax_diff, ax_steps, probe: pd.DataFrame | None, track_steps: float | None) -> None:
    if probe is None or probe.empty:
        panels.empty(ax_diff, "no equivalence probe")
        panels.empty(ax_steps, "no equivalence probe")
        return
    names = style.order(probe["arch"])
    variants = [v for v in PROBE_MARKERS if (probe["variant"] == v).any()]
    offset = {v: (k - (len(variants) - 1) / 2) * 0.22 for k, v in enumerate(variants)}
    probe = probe[probe["variant"].isin(variants)].assign(
        x=probe["arch"].map({a: i for i, a in enumerate(names)}) + probe["variant"].map(offset),
        diff=probe["max_rel_loss_diff"].astype(float).clip(lower=1e-17),
        tracks=as_bool(column(probe, "tracks", False)))
    for ax, value in ((ax_diff, "diff"), (ax_steps, "steps_within_tol")):
        for tracks in (True, False):
            rows = probe[probe["tracks"] == tracks]
            if len(rows):
                sns.scatterplot(rows, x="x", y=value, hue="arch", palette=style.palette(names),
                                style="variant", markers=PROBE_MARKERS, legend=False, s=30,
                                linewidth=0.9, edgecolor="face", ax=ax, zorder=3)
            if len(rows) and not tracks:
                panels.hollow(ax)
    tol = float(probe["tol"].iloc[0]) if "tol" in probe else 1e-8
    panels.threshold(ax_diff, tol, f"tolerance {tol:g}")
    if track_steps is not None:
        panels.threshold(ax_steps, track_steps, f"C7: tracks ≥ {track_steps:g} steps")
        ax_steps.set_ylim(top=1.15 * max(track_steps, float(probe["steps_within_tol"].max())))
    ax_diff.set(yscale="log", ylabel="max relative per-step\nloss difference to the WD run",
                title="exact-equivalence probe (float64)")
    ax_steps.set(ylabel="steps within tolerance", title="steps the equivalent tracks")
    for ax in (ax_diff, ax_steps):
        panels.named_xticks(ax, names, rotation=35)
        style.colour_ticklabels(ax.get_xticklabels(), names)
        ax.set_xlabel("")
        panels.ygrid(ax)


def _block(target, sub: pd.DataFrame, probe, wds, track_steps, margin_pp) -> None:
    names = [a for a in style.order(sub["arch"]) if style.record(a) and style.record(a).invariant]
    top, bottom = style.split(target, [2.6 * max(len(wds), 1), 2.6])
    if names and wds:
        axes = top.subplots(len(wds), len(names), sharey=True, squeeze=False)
        for row, wd in zip(axes, wds):
            _arms_row(row, sub, names, wd, margin_pp)
    else:
        panels.empty(top.subplots(), "no equivalent runs on an invariant architecture")
    _probe(*bottom.subplots(1, 2), probe, track_steps)


def _legend(margin_pp, variants, runs):
    handles = [panels.HL_HANDLE, panels.SEED_HANDLE, *panels.status_handles(runs)]
    if margin_pp is not None:
        handles.append(panels.band_handle(f"C7 equivalence margin ±{margin_pp:g} pp"))
    handles += [Line2D([], [], color="black", marker=PROBE_MARKERS[v], linestyle="",
                       label=f"probe: {v}") for v in variants]
    if variants:
        handles.append(Line2D([], [], color="black", marker="o", markerfacecolor="white",
                              linestyle="", label="probe: does not track"))
    return handles


@style.themed
def draw(tables, claims: ClaimsView):
    runs = with_columns(main_protocol(tables["runs"]), "arch", "kind", "lr", "weight_decay",
                        "seed", "test_acc")
    probe_all = tables["equivalence_probe"]
    blocks = settings(runs, probe_all)
    wds = equivalent_weight_decays(runs) if len(runs) else []
    n_inv = sum(1 for a in style.order(runs.get("arch", []))
                if style.record(a) and style.record(a).invariant)
    margin = claims.number("C7", "margin")
    margin_pp = 100 * margin if margin is not None else None
    track_steps = claims.number("C7", "track_steps")
    variants = [v for v in PROBE_MARKERS if (column(probe_all, "variant", "") == v).any()]
    cv = style.canvas(2.2 * max(n_inv, 3) + 0.8, 2.6 * (max(len(wds), 1) + 1) + 0.6,
                      len(blocks), style.Header(claims, FIGURE.claims, FIGURE.title,
                                                blocks[0][0] if len(blocks) == 1 else ""),
                      _legend(margin_pp, variants, runs))
    for (label_text, (sub, probe)), target in zip(blocks, cv.blocks):
        _block(target, sub, probe, equivalent_weight_decays(sub) if len(sub) else [],
               track_steps, margin_pp)
        style.setting_title(target, blocks, label_text)
    return cv.fig
