"""C4 (top): the root-mean-square angular update per hidden layer over its equilibrium
window against √(2ηλ/(1+α)) (or the AdamW form), the ratio per architecture with the
statistic C4's verdict uses, and which runs reached equilibrium per architecture x λ.
C3 (bottom, λ = 0, plain SGD): max |cos(w, ∇w L)| per layer and the error of the summed
norm-growth identity, exact probe and with the model's ε, against the tolerances."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib import ticker as mticker
from matplotlib.lines import Line2D

from . import panels, style
from .claims_view import ClaimsView
from .data import as_bool, column, grid_runs, settings, sorted_unique
from .registry import get

FIGURE = get("norm_dynamics")
ANGLE_BAND = 0.15      # C4's default relative band
COS_TOL = 1e-3         # C3's default |cos| tolerance
IDENTITY_TOL = 1e-2    # C3's default identity tolerance
MARKERS = {"invariant": "o", "hidden": "^", "joint": "D", "head": "s"}
OFFSETS = {"invariant": -0.24, "hidden": -0.08, "joint": 0.08, "head": 0.24}
_RATIO_TICKS = (0.01, 0.03, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2, 3, 5, 10, 30, 100)


def roles(frame: pd.DataFrame) -> pd.Series:
    """invariant / hidden (not predicted invariant) / joint (all hidden layers
    together, gradient_identity only) / head, per row."""
    layer = column(frame, "layer", "").astype(str)
    role = np.where(as_bool(column(frame, "predicted_invariant", False)), "invariant", "hidden")
    role = np.where(layer == "joint", "joint", role)
    role = np.where(as_bool(column(frame, "is_head", False)) | (layer == "head"), "head", role)
    return pd.Series(role, index=frame.index)


def equilibrium_rows(dyn: pd.DataFrame) -> pd.DataFrame:
    """Hidden layers of runs with λ > 0 and a finite measured and predicted angle."""
    if dyn.empty or "angle_rms" not in dyn:
        return dyn.iloc[:0]
    hidden = dyn[~as_bool(column(dyn, "is_head", False))]
    pred, rms = hidden["angle_pred"].astype(float), hidden["angle_rms"].astype(float)
    eq = hidden[np.isfinite(pred) & (pred > 0) & np.isfinite(rms) & (rms > 0)]
    return eq.assign(reached=as_bool(column(eq, "equilibrium_reached", True)))


def _strip(ax, frame, names, value, filled=None, marker=None, size=16, alpha=0.85) -> None:
    """Jittered points per architecture (x = position), colour = arch, marker = layer
    role (or ``marker``), hollow where ``filled`` is False."""
    rng = np.random.default_rng(style.RNG_SEED)
    frame = frame[np.isfinite(frame[value].astype(float))]
    role = roles(frame)
    fill = filled.reindex(frame.index) if filled is not None else pd.Series(True, frame.index)
    for i, arch in enumerate(names):
        for r, mk in MARKERS.items():
            for is_filled in (True, False):
                sel = frame[(frame["arch"] == arch) & (role == r) & (fill == is_filled)]
                if sel.empty:
                    continue
                x = i + OFFSETS[r] + rng.uniform(-0.05, 0.05, len(sel))
                c = style.colour(arch)
                face = dict(color=c) if marker else dict(
                    edgecolors=c, facecolors=c if is_filled else "white")
                ax.scatter(x, sel[value], marker=marker or mk, s=size, alpha=alpha, zorder=3,
                           linewidths=0.8, **face)
    ax.set_xticks(range(len(names)), names, rotation=35, ha="right", rotation_mode="anchor")
    style.colour_ticklabels(ax.get_xticklabels(), names)
    ax.set_xlim(-0.6, len(names) - 0.4)


def _measured_vs_predicted(ax, eq, names, band) -> None:
    lo = min(eq["angle_pred"].min(), eq["angle_rms"].min()) / 1.6
    hi = max(eq["angle_pred"].max(), eq["angle_rms"].max()) * 1.6
    line = np.array([lo, hi])
    ax.fill_between(line, line * (1 - band), line * (1 + band), color="#dddddd",
                    linewidth=0, zorder=0, label=f"±{band:.0%}")
    ax.plot(line, line, color="black", linewidth=0.8, zorder=1, label="y = x")
    role = roles(eq)
    for arch in names:
        for r, mk in MARKERS.items():
            for reached in (True, False):
                sel = eq[(eq["arch"] == arch) & (role == r) & (eq["reached"] == reached)]
                c = style.colour(arch)
                if len(sel):
                    ax.scatter(sel["angle_pred"], sel["angle_rms"], marker=mk, s=16, alpha=0.8,
                               linewidths=0.8, edgecolors=c, facecolors=c if reached else "white",
                               zorder=3)
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi),
           xlabel="predicted √(2ηλ/(1+α)) (rad/step)", ylabel="measured RMS angle (rad/step)")
    ax.set_aspect("equal")
    panels.log_ticks_125(ax.xaxis, lo, hi)
    panels.log_ticks_125(ax.yaxis, lo, hi)
    ax.legend(loc="upper left", handlelength=1.2)
    ax.set_title("C4 · equilibrium angular update")


def _ratio_axis(ax, ratio: pd.Series, band: float) -> None:
    """Log y for ratios around 1 in plain numbers, band edges ticked when narrow."""
    finite = ratio[np.isfinite(ratio) & (ratio > 0)]
    lo = min(float(finite.min()) if len(finite) else 1.0, 1 - band) / 1.15
    hi = max(float(finite.max()) if len(finite) else 1.0, 1 + band) * 1.15
    ax.set_yscale("log")
    ax.set_ylim(lo, hi)
    narrow = math.log10(hi / lo) < 1.3
    edges = {round(1 - band, 6), round(1 + band, 6)}
    ticks = [t for t in sorted(set(_RATIO_TICKS) | edges) if lo <= t <= hi
             and (narrow or t not in edges)]
    ax.yaxis.set_major_locator(mticker.FixedLocator(ticks))
    ax.yaxis.set_major_formatter(mticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_locator(mticker.NullLocator())


def _ratios(ax, eq, names, band) -> None:
    ratio = eq["angle_rms"] / eq["angle_pred"]
    ax.axhspan(1 - band, 1 + band, color="#dddddd", linewidth=0, zorder=0)
    ax.axhline(1.0, color="black", linewidth=0.8, zorder=1)
    _strip(ax, eq.assign(ratio=ratio), names, "ratio", filled=eq["reached"])
    stat = eq.assign(ratio=column(eq, "angle_ratio", np.nan).fillna(ratio))
    stat = stat[(roles(stat) == "invariant") & stat["reached"]]
    for i, arch in enumerate(names):
        sel = stat.loc[stat["arch"] == arch, "ratio"]
        if len(sel):
            ax.plot([i - 0.38, i + 0.38], [float(sel.median())] * 2, color="black",
                    linewidth=2.2, zorder=4, solid_capstyle="butt", gid="c4-statistic")
    _ratio_axis(ax, ratio, band)
    ax.set_ylabel("measured / predicted")
    ax.set_title(f"C4 · ratio per layer (band ±{band:.0%})")


def _reached(ax, dyn, names, claim_wd) -> None:
    """Share of runs (all layers' windows ≥ 100 steps) at equilibrium, per arch x λ."""
    grid = grid_runs(dyn)
    grid = grid[grid["weight_decay"].astype(float) > 0]
    runs = grid.assign(reached=as_bool(column(grid, "equilibrium_reached", False))).groupby(
        ["arch", "weight_decay", "run_id"], as_index=False)["reached"].all()
    table = runs.groupby(["arch", "weight_decay"], as_index=False).agg(
        runs=("reached", "size"), reached=("reached", "sum"))
    panels.share_heatmap(ax, table, names, sorted_unique(table["weight_decay"]), "reached",
                         cmap="Greens", mark_wd=claim_wd)
    ax.set_xlabel("λ (grid learning rate)")
    ax.set_title("C4 · runs at equilibrium")


def _c3(ax_cos, ax_id, gid, names, cos_tol, identity_tol) -> None:
    for ax, col, fallback, tol, ylabel, title in (
            (ax_cos, "cos_abs_max", "cos_abs_mean", cos_tol, "|cos(w, ∇w L)|, max over steps",
             "C3 · gradient ⊥ weight at λ = 0 (plain SGD)"),
            (ax_id, "identity_rel_err_total", "identity_rel_err", identity_tol,
             "relative error of\n‖w_T‖² − ‖w_0‖² = η²Σ‖g_t‖²", "C3 · norm growth at λ = 0")):
        if gid is None or gid.empty:
            panels.empty(ax)
            continue
        col = col if col in gid else fallback
        _strip(ax, gid.assign(y=gid[col].astype(float).clip(lower=1e-17)), names, "y")
        if f"{col}_model_eps" in gid:
            _strip(ax, gid.assign(y=gid[f"{col}_model_eps"].astype(float).clip(lower=1e-17)),
                   names, "y", marker="+", size=28, alpha=0.7)
        panels.threshold(ax, tol, f"C3 tolerance {tol:g}")
        ax.set(yscale="log", ylabel=ylabel, title=title)


def _legend(names):
    return style.arch_handles(names, line=False) + [
        Line2D([], [], marker="o", color="black", linestyle="", label="layer predicted invariant"),
        Line2D([], [], marker="^", color="black", linestyle="", label="other hidden layer"),
        Line2D([], [], marker="D", color="black", linestyle="", markersize=4,
               label="all hidden layers jointly"),
        Line2D([], [], marker="s", color="black", linestyle="", label="head"),
        Line2D([], [], marker="o", color="black", markerfacecolor="white", linestyle="",
               label="equilibrium not reached (window < 100 steps)"),
        Line2D([], [], color="black", linewidth=2.2, label="C4 statistic: median, invariant, reached"),
        Line2D([], [], marker="+", color="black", linestyle="", label="C3 with the model's ε")]


@style.themed
def draw(tables, claims: ClaimsView):
    dynamics, identity = tables["dynamics"], tables["gradient_identity"]
    band = claims.tolerance("c4_rel", ANGLE_BAND)
    cos_tol = claims.tolerance("c3_cos", COS_TOL)
    identity_tol = claims.tolerance("c3_identity", IDENTITY_TOL)
    claim_wd = claims.declared_weight_decay()
    blocks = settings(dynamics, identity)
    handles = _legend(style.order([*dynamics.get("arch", []), *identity.get("arch", [])]))
    cv = style.canvas(11.0, 6.6, len(blocks), 2, style.legend_rows(handles, 4))
    for (label_text, (dyn, gid)), target in zip(blocks, cv.blocks):
        names = style.order([*dyn.get("arch", []), *(gid.get("arch", []) if gid is not None else [])])
        top, bottom = style.split(target, [1, 1])
        ax_eq, ax_ratio, ax_reached = top.subplots(1, 3, gridspec_kw=dict(width_ratios=[1, 1.1, 1]))
        ax_cos, ax_id = bottom.subplots(1, 2)
        eq = equilibrium_rows(dyn)
        if eq.empty:
            for ax in (ax_eq, ax_ratio, ax_reached):
                panels.empty(ax, "no run with λ > 0")
        else:
            _measured_vs_predicted(ax_eq, eq, names, band)
            _ratios(ax_ratio, eq, names, band)
            _reached(ax_reached, dyn, names, claim_wd)
        _c3(ax_cos, ax_id, gid, names, cos_tol, identity_tol)
        for ax in (ax_ratio, ax_cos, ax_id):
            panels.ygrid(ax)
        style.setting_title(target, blocks, label_text)
    cv.legend(handles, ncol=4)
    style.header(cv, claims, FIGURE.claims, FIGURE.title,
                 blocks[0][0] if len(blocks) == 1 else "")
    return cv.fig
