"""C5: the matched (η, λ) pairs of one product ηλ, per architecture: the equilibrium RMS
angular update (top; dashed: the prediction) and the test accuracy of each pair minus
that of C5's reference pair of the same seed (bottom), with the Hodges-Lehmann shift and
CI of the verdict and C5's equivalence margin. Within the margin = "only ηλ matters";
plain is the contrast."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from . import panels, style
from .claims_view import ClaimsView
from ..frames import as_bool
from .data import GRID_KIND, column, grid_lr, kinds, main_protocol, paired, settings
from .registry import get

FIGURE = get("lr_wd_collapse")
RUN_KEYS = ("arch", "run_id")


def run_angles(dyn: pd.DataFrame) -> pd.DataFrame:
    """One equilibrium angle per run: the mean ``angle_rms`` over the layers predicted
    invariant, or over all hidden layers where none is; reached = all of them reached."""
    cols = [*RUN_KEYS, "angle", "angle_pred", "reached"]
    if dyn is None or dyn.empty or "angle_rms" not in dyn:
        return pd.DataFrame(columns=cols)
    hidden = dyn[~as_bool(column(dyn, "is_head", False))]
    rows = []
    for key, group in hidden.groupby(list(RUN_KEYS), sort=False):
        invariant = group[as_bool(column(group, "predicted_invariant", False))]
        use = invariant if len(invariant) else group
        rows.append(dict(zip(RUN_KEYS, key), angle=float(use["angle_rms"].mean()),
                         angle_pred=float(use["angle_pred"].median()),
                         reached=bool(as_bool(column(use, "equilibrium_reached", True)).all())))
    return pd.DataFrame(rows, columns=cols)


def matched_pairs(runs: pd.DataFrame) -> pd.DataFrame:
    if runs.empty:
        return runs
    return runs[(kinds(runs) == GRID_KIND) & as_bool(column(runs, "is_matched_pair", False))]


def reference_pair(claims: ClaimsView, points, runs: pd.DataFrame) -> tuple[float, float]:
    """The pair C5 compares the others with: as claims.json names it, else the one at
    the grid's learning rate, else the first."""
    for entry in (claims.measured("C5").get("per_arch") or {}).values():
        for comparison in entry.get("comparisons") or []:
            found = re.findall(r"[-+0-9.eE]+", str(comparison.get("reference", "")))
            if len(found) == 2:
                return float(found[0]), float(found[1])
    lr = grid_lr(runs)
    return next((p for p in points if np.isclose(p[0], lr)), points[0])


def _column(axes, part: pd.DataFrame, reference, margin_pp) -> None:
    colour = style.colour(part["arch"].iloc[0])
    angles = part[np.isfinite(part["angle"].astype(float))]
    if angles.empty:
        panels.empty(axes[0])
    else:
        panels.seeds(axes[0], angles, "x", "angle", colour)
        panels.medians(axes[0], angles, "x", "angle", colour)
        rings = angles[~angles["reached"].fillna(False).astype(bool)]
        if len(rings):
            axes[0].scatter(rings["x"], rings["angle"], marker="o", s=18, facecolors="white",
                            edgecolors=colour, zorder=5, gid="not-reached")
        if np.isfinite(part["angle_pred"].astype(float)).any():
            axes[0].axhline(float(np.nanmedian(part["angle_pred"])), color="black",
                            linestyle="--", linewidth=0.7)
    is_reference = np.isclose(part["lr"], reference[0]) & np.isclose(part["weight_decay"],
                                                                      reference[1])
    panels.paired_panel(axes[1], paired(part, is_reference, keep_reference=True), colour,
                        band=margin_pp, connect=False)


def _block(target, pairs, dyn, names, reference, margin_pp) -> None:
    points = sorted({(float(a), float(b)) for a, b in zip(pairs["lr"], pairs["weight_decay"])},
                    reverse=True)
    position = {p: i for i, p in enumerate(points)}
    merged = pairs.merge(run_angles(dyn), on=list(RUN_KEYS), how="left")
    merged["x"] = [position[(float(a), float(b))] for a, b in zip(merged["lr"], merged["weight_decay"])]
    axes = target.subplots(2, max(len(names), 1), sharex=True, sharey="row", squeeze=False)
    for c, arch in enumerate(names):
        _column(axes[:, c], merged[merged["arch"] == arch], reference, margin_pp)
        style.arch_title(axes[0, c], arch)
        for ax in axes[:, c]:
            ax.set(xlabel="", ylabel="")
            panels.ygrid(ax)
    bold = next((i for i, p in enumerate(points) if np.allclose(p, reference)), None)
    for ax in axes[-1]:
        panels.named_xticks(ax, [f"{a:g}\n{b:g}" for a, b in points], bold=bold, size=0.8)
    axes[0, 0].set_ylabel("equilibrium RMS angular\nupdate (rad/step)")
    axes[1, 0].set_ylabel("Δ test accuracy vs the\nreference pair (pp)")
    products = " / ".join(sorted({f"{a * b:.3g}" for a, b in points}))
    target.supxlabel(f"matched pairs: η (top) and λ (bottom), ηλ = {products}; in bold the "
                     f"reference pair ({reference[0]:g}, {reference[1]:g})", fontsize="medium")


def _pair_angles(pairs: pd.DataFrame, dyn: pd.DataFrame) -> pd.DataFrame:
    """The equilibrium angles of the matched-pair runs."""
    angles = run_angles(dyn)
    if pairs.empty or angles.empty:
        return angles.iloc[:0]
    return angles.merge(pairs[list(RUN_KEYS)].drop_duplicates(), on=list(RUN_KEYS))


def _legend(margin_pp, frame, angles):
    handles = [panels.HL_HANDLE, panels.SEED_HANDLE, panels.MEDIAN_HANDLE,
               Line2D([], [], color="black", linestyle="--", label="predicted √(2ηλ/(1+α))")]
    if len(angles) and not angles["reached"].all():
        handles.append(Line2D([], [], color="black", marker="o", markerfacecolor="white",
                              linestyle="", label="angle: equilibrium not reached"))
    handles += panels.status_handles(frame)
    if margin_pp is not None:
        handles.append(panels.band_handle(f"C5 equivalence margin ±{margin_pp:g} pp"))
    return handles


@style.themed
def draw(tables, claims: ClaimsView):
    runs, dynamics = main_protocol(tables["runs"]), main_protocol(tables["dynamics"])
    pairs_all = matched_pairs(runs)
    blocks = settings(pairs_all, dynamics)
    names = style.order(pairs_all["arch"]) if len(pairs_all) else []
    margin = claims.number("C5", "margin")
    margin_pp = 100 * margin if margin is not None else None
    cv = style.canvas(1.4 * max(len(names), 1) + 1.0, 4.6, len(blocks), style.Header(
        claims, FIGURE.claims, FIGURE.title, blocks[0][0] if len(blocks) == 1 else ""),
        _legend(margin_pp, pairs_all, _pair_angles(pairs_all, dynamics)))
    for (label_text, (pairs, dyn)), target in zip(blocks, cv.blocks):
        if pairs.empty:
            panels.empty(target.subplots(), "no matched-pair runs")
        else:
            points = sorted({(float(a), float(b)) for a, b in zip(pairs["lr"], pairs["weight_decay"])})
            _block(target, pairs, dyn, style.order(pairs["arch"]),
                   reference_pair(claims, points, runs), margin_pp)
        style.setting_title(target, blocks, label_text)
    return cv.fig
