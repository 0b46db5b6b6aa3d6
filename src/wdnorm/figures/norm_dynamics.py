"""C4 (top): the root-mean-square angular update per hidden layer over its equilibrium
window against √(2ηλ/(1+α)) (or the AdamW form), the ratio per architecture with the
statistic C4's verdict uses, and how many runs C4 counts at equilibrium per architecture
x λ. C3 (bottom, λ = 0, plain SGD): max |cos(w, ∇w L)| per layer and the error of the
summed norm-growth identity, exact probe and with the model's ε, against the tolerances."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from . import panels, style
from .claims_view import ClaimsView
from ..frames import as_bool
from .data import column, grid_runs, main_protocol, settings, sorted_unique
from .registry import get

FIGURE = get("norm_dynamics")
ANGLE_BAND = 0.15      # C4's default relative band
COS_TOL = 1e-3         # C3's default |cos| tolerance
IDENTITY_TOL = 1e-2    # C3's default identity tolerance
MARKERS = {"invariant": "o", "hidden": "^", "joint": "D", "head": "s"}
OFFSETS = {"invariant": -0.24, "hidden": -0.08, "joint": 0.08, "head": 0.24}


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
    return eq.assign(reached=as_bool(column(eq, "equilibrium_reached", True)), role=roles(eq))


def c4_counts(dyn: pd.DataFrame) -> pd.DataFrame:
    """Per architecture x λ > 0, the grid runs C4 counts and how many reached
    equilibrium: those on every predicted-invariant decayed layer (C4's rows, as
    wdnorm.claims.c4_equilibrium.equilibrium_counts counts them; the undecayed head and
    the layers no prediction applies to do not count)."""
    grid = grid_runs(dyn)
    rows = grid[(grid["weight_decay"].astype(float) > 0)
                & as_bool(column(grid, "predicted_invariant", False))
                & as_bool(column(grid, "decayed", True))]
    per_run = rows.assign(reached=as_bool(column(rows, "equilibrium_reached", False))).groupby(
        ["arch", "weight_decay", "run_id"], as_index=False)["reached"].all()
    return per_run.groupby(["arch", "weight_decay"], as_index=False).agg(
        runs=("reached", "size"), reached=("reached", "sum"))


def _scatter(ax, frame, x, y, names, hollow=False, markers=MARKERS, **kw) -> None:
    """seaborn's scatter plot: colour = architecture, marker = layer role."""
    if frame.empty:
        return
    sns.scatterplot(frame, x=x, y=y, hue="arch", hue_order=names, palette=style.palette(names),
                    style="role", markers=markers, style_order=list(MARKERS), legend=False,
                    ax=ax, zorder=3, **{"s": 16, "alpha": 0.85, "linewidth": 0.8, "edgecolor": "face", **kw})
    if hollow:
        panels.hollow(ax)


def _strip(ax, frame, names, value, **kw) -> None:
    """Points per architecture (x), offset by layer role and jittered (seeded)."""
    rng = np.random.default_rng(style.RNG_SEED)
    frame = frame[np.isfinite(frame[value].astype(float))]
    frame = frame.assign(role=roles(frame)) if "role" not in frame else frame
    x = (frame["arch"].map({a: i for i, a in enumerate(names)}) + frame["role"].map(OFFSETS)
         + rng.uniform(-0.05, 0.05, len(frame)))
    frame = frame.assign(_x=x, _filled=column(frame, "reached", True))
    for filled in (True, False):
        _scatter(ax, frame[frame["_filled"] == filled], "_x", value, names, hollow=not filled,
                 **kw)
    ax.set_xticks(range(len(names)), names, rotation=35, ha="right", rotation_mode="anchor")
    style.colour_ticklabels(ax.get_xticklabels(), names)
    ax.set(xlim=(-0.6, len(names) - 0.4), xlabel="")


def _measured_vs_predicted(ax, eq, names, band) -> None:
    lo = min(eq["angle_pred"].min(), eq["angle_rms"].min()) / 1.6
    hi = max(eq["angle_pred"].max(), eq["angle_rms"].max()) * 1.6
    line = np.array([lo, hi])
    ax.fill_between(line, line * (1 - band), line * (1 + band), color=panels.MARGIN_COLOUR,
                    linewidth=0, zorder=0, label=f"±{band:.0%}")
    ax.plot(line, line, color="black", linewidth=0.8, zorder=1, label="y = x")
    for reached in (True, False):
        _scatter(ax, eq[eq["reached"] == reached], "angle_pred", "angle_rms", names,
                 hollow=not reached)
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi),
           xlabel="predicted √(2ηλ/(1+α)) (rad/step)", ylabel="measured RMS angle (rad/step)")
    ax.set_aspect("equal")
    panels.log_ticks_125(ax.xaxis, lo, hi)
    panels.log_ticks_125(ax.yaxis, lo, hi)
    ax.legend(loc="upper left", handlelength=1.2)
    ax.set_title("C4 · equilibrium angular update")


def _ratios(ax, eq, names, band) -> None:
    ratio = eq["angle_rms"] / eq["angle_pred"]
    ax.axhspan(1 - band, 1 + band, color=panels.MARGIN_COLOUR, linewidth=0, zorder=0)
    ax.axhline(1.0, color="black", linewidth=0.8, zorder=1)
    _strip(ax, eq.assign(ratio=ratio), names, "ratio")
    stat = eq.assign(ratio=column(eq, "angle_ratio", np.nan).fillna(ratio))
    stat = stat[(stat["role"] == "invariant") & stat["reached"]]
    for i, arch in enumerate(names):
        sel = stat.loc[stat["arch"] == arch, "ratio"]
        if len(sel):
            ax.plot([i - 0.38, i + 0.38], [float(sel.median())] * 2, color="black",
                    linewidth=2.2, zorder=4, solid_capstyle="butt", gid="c4-statistic")
    finite = ratio[np.isfinite(ratio) & (ratio > 0)]
    lo = min(float(finite.min()) if len(finite) else 1.0, 1 - band) / 1.15
    hi = max(float(finite.max()) if len(finite) else 1.0, 1 + band) * 1.15
    ax.set(yscale="log", ylim=(lo, hi))
    panels.log_ticks_125(ax.yaxis, lo, hi)
    ax.set_ylabel("measured / predicted")
    ax.set_title(f"C4 · ratio per layer (band ±{band:.0%})")


def _reached(ax, dyn, names, claim_wd) -> None:
    counts = c4_counts(dyn)
    panels.share_heatmap(ax, counts, names, sorted_unique(counts["weight_decay"]), "reached",
                         cmap="Greens", mark_wd=claim_wd)
    ax.set_xlabel("λ (grid learning rate)")
    ax.set_title("C4 · runs at equilibrium\n(predicted-invariant layers; grey: none)")


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
            model = gid.assign(y=gid[f"{col}_model_eps"].astype(float).clip(lower=1e-17))
            _strip(ax, model, names, "y", markers={r: "+" for r in MARKERS}, s=28, alpha=0.7,
                   edgecolor=None)
        panels.threshold(ax, tol, f"C3 tolerance {tol:g}")
        ax.set(yscale="log", ylabel=ylabel, title=title)


ROLE_LABELS = {"invariant": "layer predicted invariant", "hidden": "other hidden layer",
               "joint": "all hidden layers jointly", "head": "head"}


def _legend(dynamics: pd.DataFrame, identity: pd.DataFrame):
    """Entries for what is drawn: architectures, layer roles, and the marks in use."""
    eq = equilibrium_rows(dynamics)
    present = set(eq.get("role", [])) | set(roles(identity))
    def mark(marker, label, **kw):
        return Line2D([], [], marker=marker, linestyle="", label=label, **{"color": "black", **kw})
    return ([mark("o", style.label(a), color=style.colour(a))
             for a in style.order([*dynamics.get("arch", []), *identity.get("arch", [])])]
            + [mark(MARKERS[r], text) for r, text in ROLE_LABELS.items() if r in present]
            + ([mark("o", "equilibrium not reached (window < 100 steps)", markerfacecolor="white")]
               if len(eq) and not eq["reached"].all() else [])
            + ([Line2D([], [], color="black", linewidth=2.2,
                       label="C4 statistic: median, invariant, reached")] if len(eq) else [])
            + ([mark("+", "C3 with the model's ε")]
               if any(c.endswith("_model_eps") for c in identity) else []))


@style.themed
def draw(tables, claims: ClaimsView):
    dynamics, identity = main_protocol(tables["dynamics"]), tables["gradient_identity"]
    band = claims.tolerance("c4_rel", ANGLE_BAND)
    cos_tol = claims.tolerance("c3_cos", COS_TOL)
    identity_tol = claims.tolerance("c3_identity", IDENTITY_TOL)
    claim_wd = claims.declared_weight_decay()
    blocks = settings(dynamics, identity)
    cv = style.canvas(11.0, 6.8, len(blocks), style.Header(
        claims, FIGURE.claims, FIGURE.title, blocks[0][0] if len(blocks) == 1 else ""),
        _legend(dynamics, identity))
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
    return cv.fig
