"""C4, the equilibrium angular update: past equilibrium, the root-mean-square angle
between consecutive weights of a scale-invariant layer matches √(2ηλ/(1+α)) (SGD with
momentum α) or √(2ηλ(1−β₁)/(1+β₁)) (AdamW).

The table decides which rows are at equilibrium (``equilibrium_reached``: a window of at
least 100 steps after the momentum-aware equilibrium time) and gives ``angle_ratio`` =
RMS angle over the window / prediction. Whether equilibrium was reached is reported for
every λ, the claims' own λ included, so C6 and C7 can be read against it."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..tables.dynamics_rows import MIN_WINDOW_STEPS
from . import common as c

ID, TITLE = "C4", "Equilibrium angular update"
TABLES = ("dynamics",)
TEST = "median over eligible layers of RMS angle / predicted angle, within a relative band"
TOLERANCES = {"c4_rel": 0.15}  # |median angle_ratio − 1| per architecture
RULE = ("supported iff, per arch, the median angle_ratio (RMS angle over the equilibrium "
        "window / prediction) over predicted-invariant decayed layers of healthy grid runs "
        "with equilibrium_reached (a window of ≥ {min_window_steps} steps) lies in "
        "[1−{c4_rel:g}, 1+{c4_rel:g}]; refuted if any arch is outside; inconclusive if no "
        "row reached equilibrium")
CONSTANTS = {"min_window_steps": MIN_WINDOW_STEPS}
ARTICLE = "(not addressed)"
LITERATURE = ("Wan et al. 2021, Kosson et al. 2024: angular update per step → √(2ηλ/(1+α)) "
              "(SGD) or √(2ηλ(1−β₁)/(1+β₁)) (AdamW)")
REQUIRED = ("predicted_invariant", "equilibrium_reached", "angle_ratio", "weight_decay")


def candidate_rows(dynamics: pd.DataFrame) -> pd.DataFrame:
    """Grid rows of decayed layers with λ > 0, flagged ``inv`` (predicted invariant),
    ``reached`` (equilibrium window ≥ 100 steps) and ``eligible``."""
    df = c.of_kind(dynamics, "grid")
    df = df[df["weight_decay"].astype(float) > 0]
    if "decayed" in df.columns:
        df = df[c.as_bool(df["decayed"])]
    inv = c.as_bool(df["predicted_invariant"])
    reached = c.as_bool(df["equilibrium_reached"])
    ok = df["status"].fillna("ok") == "ok" if "status" in df.columns else True
    finite = np.isfinite(df["angle_ratio"].astype(float))
    return df.assign(inv=inv, reached=reached, eligible=inv & reached & ok & finite)


def per_arch(rows: pd.DataFrame, label: c.Labeller, rel: float) -> dict:
    out = {}
    for key, g in c.groups(rows[rows["eligible"] & rows["inv"]]):
        r = g["angle_ratio"].astype(float)
        med = float(r.median())
        out[label(key)] = {"rows": int(len(g)), "runs": int(g["run_id"].nunique()),
                           "median_ratio": med, "min_ratio": float(r.min()),
                           "max_ratio": float(r.max()),
                           "fraction_within": float((np.abs(r - 1) <= rel).mean()),
                           "within": bool(abs(med - 1) <= rel)}
    return out


def equilibrium_counts(rows: pd.DataFrame, label: c.Labeller) -> dict:
    """{arch: {λ: rows/runs on predicted-invariant layers and how many reached
    equilibrium}} for every λ > 0 of the grid (λ = 0 has none: t_eq = ∞)."""
    out: dict = {}
    for key, g in c.groups(rows[rows["inv"]]):
        per_wd = {}
        for wd, gw in g.groupby("weight_decay", sort=True):
            reached_runs = gw.groupby("run_id")["reached"].all()
            per_wd[f"{float(wd):g}"] = {
                "rows": int(len(gw)), "rows_reached": int(gw["reached"].sum()),
                "runs": int(len(reached_runs)), "runs_reached": int(reached_runs.sum()),
                "window_steps_median": c.fnum(gw["window_steps"].astype(float).median())
                if "window_steps" in gw.columns else None}
        out[label(key)] = per_wd
    return out


def contrast(rows: pd.DataFrame, label: c.Labeller) -> dict:
    """Non-invariant decayed layers at equilibrium: no prediction applies to them."""
    other = rows[~rows["inv"] & rows["reached"] & np.isfinite(rows["angle_ratio"].astype(float))]
    return {label(key): {"rows": int(len(g)),
                         "median_ratio": c.fnum(g["angle_ratio"].astype(float).median())}
            for key, g in c.groups(other)}


def describe(verdict: str, m: Mapping, rel: float, wd_star) -> str:
    arch_txt = ", ".join(f"{k} {c.fmt(v['median_ratio'])} ({100 * v['fraction_within']:.0f}% of "
                         f"{v['rows']} within)" for k, v in m["per_arch"].items())
    star = f"{wd_star:g}" if wd_star is not None else None
    at_star = [f"{k} {v[star]['runs_reached']}/{v[star]['runs']}"
               for k, v in m["equilibrium_by_weight_decay"].items() if star in v]
    star_txt = (f" At the claims' λ = {star}, runs at equilibrium: {', '.join(at_star)}."
                if at_star else "")
    if verdict == "inconclusive":
        return (f"No grid run reached equilibrium (a window of ≥ {MIN_WINDOW_STEPS} steps "
                "after t_eq) on a "
                "predicted-invariant layer: train longer or use a larger ηλ." + star_txt)
    if verdict == "refuted":
        outside = [k for k, v in m["per_arch"].items() if not v["within"]]
        return (f"Median RMS/predicted angular update outside 1 ± {rel:g} for "
                f"{', '.join(outside)}: {arch_txt}.{star_txt}")
    return (f"Median RMS/predicted equilibrium angular update within 1 ± {rel:g}: "
            f"{arch_txt}.{star_txt}")


def decide(tables: Mapping[str, pd.DataFrame], settings: Mapping | None = None) -> c.Decision:
    """supported: every arch with eligible rows has its median ratio within 1 ± c4_rel;
    refuted: one is outside; inconclusive: no eligible row."""
    tol = c.tolerances(settings, TOLERANCES)
    rel = tol["c4_rel"]
    dynamics = tables.get("dynamics")
    missing = [k for k in REQUIRED if c.empty(dynamics) or k not in dynamics.columns]
    if missing:
        return c.Decision("inconclusive",
                          f"No usable dynamics rows (missing: {', '.join(missing)}).")
    rows = candidate_rows(dynamics)
    label = c.Labeller(dynamics)
    m = {"per_arch": per_arch(rows, label, rel),
         "equilibrium_by_weight_decay": equilibrium_counts(rows, label),
         "claims_weight_decay": c.claims_weight_decay(settings),
         "non_invariant_layers_at_equilibrium": contrast(rows, label)}
    outside = [k for k, v in m["per_arch"].items() if not v["within"]]
    verdict = ("inconclusive" if not m["per_arch"] else "refuted" if outside else "supported")
    eligible = rows[rows["eligible"]]
    n = {"rows": int(len(eligible)), "runs": int(eligible["run_id"].nunique())}
    key = ", ".join(f"{k} {c.fmt(v['median_ratio'])}" for k, v in m["per_arch"].items()) \
        or "no run at equilibrium"
    return c.Decision(verdict, describe(verdict, m, rel, m["claims_weight_decay"]), key, n, m)
