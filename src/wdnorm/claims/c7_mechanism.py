"""C7, the mechanism: on scale-invariant architectures, is weight decay's effect a
learning-rate schedule?

(a) The exact equivalent (no WD on the group layers, LR η/(k_t k_{t+1}), ε scaled by
    1/k_t²) must track the WD run's per-step loss in the float64 probe on every invariant
    architecture -- and must not on the norm-free contrast (plain, res), where no
    symmetry makes it exact. The float32 training runs' tracking length is reported.
(b) The schedule-only equivalent (same LR schedule, ε fixed) vs the WD run: equivalence
    (TOST) of paired test accuracy, and the share of WD's effect it explains.
(c) Hoffer et al.'s norm-matched mimic, a heuristic: its divergence/collapse rate and
    its paired shift from the WD run (reported, not part of the verdict).

There is no exact equivalent for Adam/AdamW (the moments mix steps of different scale):
(a)'s float32 part and (b) are "not applicable" for settings whose optimiser is not SGD."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .. import optimisers
from . import common as c
from . import effects, stats

ID, TITLE = "C7", "Mechanism: weight decay as a learning-rate schedule"
TABLES = ("equivalence_probe", "runs")
TEST = ("(a) numerical check: float64 probe, exact equivalent vs WD run, relative loss "
        "difference; (b) TOST equivalence (two one-sided " + stats.TEST_NAME + "), Holm "
        "across invariant archs; share explained with a paired bootstrap CI")
TOLERANCES = {
    "c7_probe_tol": 1e-8,      # relative per-step loss difference of the float64 probe
    "c7_track_steps": 300,     # steps the exact equivalent must stay within it
    "c7_margin": 0.01,         # equivalence margin, schedule − WD run (test accuracy)
    "c7_min_pairs": 10,        # paired seeds needed for (b)
    "c7_resamples": 2000,      # bootstrap of the share explained
    "c7_boot_seed": 0,
}
RULE = ("supported iff (a) the float64 exact equivalent tracks the WD run (relative loss "
        "difference ≤ {c7_probe_tol:g} for ≥ {c7_track_steps:g} steps) on every invariant arch "
        "and not on the norm-free contrast, and (b) the schedule-only equivalent is "
        "equivalent to the WD run (Holm-adjusted TOST p < {alpha:g}, margin ±{c7_margin:g}, "
        "≥ {c7_min_pairs:g} seeds) on every invariant arch; refuted if (a) fails either way "
        "or (b) differs (two-sided, Holm p < {alpha:g}) with |HL| > margin; else "
        "inconclusive; only for optimisers with an exact equivalent (SGD)")
ARTICLE = "(not addressed: the article argues from the optimum, not the dynamics)"
LITERATURE = ("Li & Arora 2020: for scale-invariant weights SGD with WD equals SGD without "
              "WD under an exponentially growing LR (exact with ε scaled); Hoffer et al. "
              "2018: a norm-matched LR recovers the WD run's accuracy")


# --------------------------------------------------------------------------- (a)

def probe_tracks(rows: pd.DataFrame, tol: Mapping) -> pd.Series:
    """The table's ``tracks`` confirmed against our tolerances: float64, a probe
    tolerance no looser than ours, and tracking for at least c7_track_steps."""
    ok = c.as_bool(rows["tracks"])
    ok &= rows["steps_within_tol"].astype(float) >= tol["c7_track_steps"]
    if "dtype" in rows.columns:
        ok &= rows["dtype"].astype(str) == "float64"
    if "tol" in rows.columns:
        ok &= rows["tol"].astype(float) <= tol["c7_probe_tol"]
    return ok


def probe(table: pd.DataFrame | None, tol: Mapping) -> dict:
    """Per (dataset, arch) and variant: does the equivalent track the WD run?"""
    if c.empty(table):
        return {"per_arch": {}, "invariant_failing": [], "contrast_tracking": [], "holds": False}
    rows = table.assign(ok=probe_tracks(table, tol))
    multi = "dataset" in rows.columns and rows["dataset"].nunique() > 1
    per_arch: dict = {}
    for _, r in rows.iterrows():
        name = f"{r['dataset']}/{r['arch']}" if multi else str(r["arch"])
        rec = c.record(r["arch"])
        entry = per_arch.setdefault(name, {
            "invariant": rec.invariant if rec else bool(c.as_bool(pd.Series([r["invariant"]]))[0]),
            "contrast": c.is_contrast(r["arch"])})
        entry[str(r["variant"])] = {"tracks": bool(r["ok"]), "steps": int(r["steps"]),
                                    # a probe shorter than c7_track_steps cannot decide
                                    "long_enough": int(r["steps"]) >= tol["c7_track_steps"],
                                    "steps_within_tol": int(r["steps_within_tol"]),
                                    "max_rel_loss_diff": c.fnum(r["max_rel_loss_diff"])}
    exact = {k: v for k, v in per_arch.items() if "exact" in v and v["exact"]["long_enough"]}
    failing = [k for k, v in exact.items() if v["invariant"] and not v["exact"]["tracks"]]
    tracking = [k for k, v in exact.items() if v["contrast"] and v["exact"]["tracks"]]
    has_both = (any(v["invariant"] for v in exact.values())
                and any(v["contrast"] for v in exact.values()))
    return {"per_arch": per_arch, "invariant_failing": failing, "contrast_tracking": tracking,
            "holds": bool(has_both and not failing and not tracking)}


def float32_tracking(runs: pd.DataFrame, wd_star: float, label: c.Labeller, exact) -> dict:
    """Median ``loss_track_steps`` of the float32 exact/schedule runs at λ* (SGD only)."""
    out = {}
    for key, g in c.groups(runs[c.close(runs["weight_decay"], wd_star)]):
        if not exact(key):
            out[label(key)] = "not applicable (no exact equivalent for this optimiser)"
            continue
        entry = {}
        for kind in ("exact", "schedule"):
            k = c.of_kind(g, kind)
            if len(k) and "loss_track_steps" in k.columns:
                entry[kind] = {
                    "runs": int(len(k)),
                    "loss_track_steps_median": c.fnum(k["loss_track_steps"].median()),
                    "steps_median": c.fnum(k["steps"].median()) if "steps" in k else None}
        if entry:
            out[label(key)] = entry
    return out


# --------------------------------------------------------------------------- (b), (c)

def arms(g: pd.DataFrame, settings, key: Mapping, wd_star: float) -> dict:
    """The λ* grid arm, the λ = 0 arm and the λ* equivalents of one slab at the grid lr."""
    lr = effects.grid_lr(settings, key.get("optimiser"), c.of_kind(g, "grid"))
    g = g[c.close(g["lr"], lr)] if lr is not None else g.iloc[0:0]
    star = g[c.close(g["weight_decay"], wd_star)]
    return {"grid": c.of_kind(star, "grid"), "schedule": c.of_kind(star, "schedule"),
            "mimic": c.of_kind(star, "mimic"),
            "zero": c.of_kind(g[g["weight_decay"].astype(float) == 0], "grid")}


def share_explained(a: dict, wd_cell: Mapping | None, tol: Mapping) -> dict:
    """(mean(schedule) − mean(λ=0)) / (mean(grid λ*) − mean(λ=0)) over the seeds all
    three arms have, with a paired bootstrap CI; undefined when WD's own effect is
    within noise (|HL| below the margin and not significant)."""
    e = (wd_cell or {}).get("test_acc") or {}
    hl = e.get("hl", math.nan)
    if not e or (not (abs(hl) >= tol["c7_margin"]) and not e.get("changes")):
        return {"share": None, "ci_low": None, "ci_high": None,
                "note": "undefined: WD's own effect is within noise"}
    cols = [a[k][["seed", "test_acc"]].rename(columns={"test_acc": k})
            for k in ("schedule", "grid", "zero")]
    m = cols[0].merge(cols[1], on="seed").merge(cols[2], on="seed").dropna()
    values = m[["schedule", "grid", "zero"]].to_numpy(dtype=float)

    def ratio(means: np.ndarray) -> np.ndarray:  # rows of (schedule, grid, zero) means
        with np.errstate(divide="ignore", invalid="ignore"):
            return (means[..., 0] - means[..., 2]) / (means[..., 1] - means[..., 2])
    lo, hi = stats.paired_bootstrap(values, ratio, int(tol["c7_resamples"]),
                                    int(tol["c7_boot_seed"]))
    share = float(ratio(values.mean(axis=0))) if len(values) else None
    return {"share": share, "ci_low": lo, "ci_high": hi, "n": int(len(values))}


def slab_cell(key: Mapping, g: pd.DataFrame, settings, wd_star: float, alpha: float,
              tol: Mapping, wd_cell: Mapping | None) -> dict:
    a = arms(g, settings, key, wd_star)
    d, _ = c.paired(a["schedule"], a["grid"], "test_acc")
    sched = dict(stats.paired_effect(d, alpha), p_tost=stats.tost(d, tol["c7_margin"])["p"],
                 runs=c.status_counts(a["schedule"]))
    dm, _ = c.paired(a["mimic"], a["grid"], "test_acc")
    mimic = dict(stats.paired_effect(dm, alpha), runs=c.status_counts(a["mimic"]))
    n = len(a["mimic"])
    mimic.update(divergence_rate=mimic["runs"]["diverged"] / n if n else None,
                 collapse_rate=mimic["runs"]["collapsed"] / n if n else None)
    arch = key.get("arch")
    return {"key": dict(key), "arch": arch, "invariant": c.is_invariant(arch),
            "schedule_minus_wd": sched, "share_explained": share_explained(a, wd_cell, tol),
            "mimic_minus_wd": mimic, "wd_runs": c.status_counts(a["grid"])}


def judge_schedule(cells: list[dict], alpha: float, tol: Mapping) -> None:
    """Holm across the invariant archs, then equivalent / different, in place."""
    inv = [x for x in cells if x["invariant"]]
    for p in ("p_tost", "p_two_sided"):
        for x, adj in zip(inv, stats.holm([x["schedule_minus_wd"][p] for x in inv])):
            x["schedule_minus_wd"][f"{p}_holm"] = adj
    for x in inv:
        s = x["schedule_minus_wd"]
        s["equivalent"] = bool(s["n"] >= tol["c7_min_pairs"] and s["p_tost_holm"] < alpha)
        s["different"] = bool(s["p_two_sided_holm"] < alpha and abs(s["hl"]) > tol["c7_margin"])


# --------------------------------------------------------------------------- decision

def has_exact_equivalent(settings: Mapping | None, runs: pd.DataFrame):
    """key -> whether the slab's optimiser has an exact LR-schedule equivalent (its
    record says; the algorithm from settings first, else from the table)."""
    def check(key: Mapping) -> bool:
        algo = c.optimiser_setting(settings, str(key.get("optimiser")), "algorithm")
        if algo is None and "algorithm" in runs.columns:
            rows = runs[runs["optimiser"] == key["optimiser"]] if "optimiser" in key else runs
            found = rows["algorithm"].dropna()
            algo = found.iloc[0] if len(found) else None
        return algo in optimisers.REGISTRY and optimisers.get(algo).exact_equivalent
    return check


def measure(tables: Mapping, settings, tol: Mapping, alpha: float) -> dict:
    runs, wd_star = tables.get("runs"), c.claims_weight_decay(settings)
    m = {"probe": probe(tables.get("equivalence_probe"), tol), "claims_weight_decay": wd_star,
         "slabs": {}, "not_applicable": [], "float32_tracking": {}}
    if c.empty(runs) or wd_star is None:
        return m
    label, exact = c.Labeller(runs), has_exact_equivalent(settings, runs)
    wd_cells = {label(x["key"]): x for x in effects.wd_effects(runs, settings, alpha)}
    cells = []
    for key, g in c.groups(runs):
        if not exact(key):
            m["not_applicable"].append(label(key))
            continue
        if len(c.of_kind(g, "grid")):
            wd_cell = wd_cells.get(label(key))
            cells.append(slab_cell(key, g, settings, wd_star, alpha, tol, wd_cell))
    judge_schedule(cells, alpha, tol)
    m["slabs"] = {label(x["key"]): {k: v for k, v in x.items() if k != "key"} for x in cells}
    m["float32_tracking"] = float32_tracking(runs, wd_star, label, exact)
    return m


def decide_measured(m: Mapping) -> str:
    p = m["probe"]
    inv = [v["schedule_minus_wd"] for v in m["slabs"].values() if v["invariant"]]
    if p["invariant_failing"] or p["contrast_tracking"] or any(s["different"] for s in inv):
        return "refuted"
    if p["holds"] and inv and all(s["equivalent"] for s in inv):
        return "supported"
    return "inconclusive"


def probe_text(p: Mapping) -> str:
    exact = {k: v["exact"] for k, v in p["per_arch"].items()
             if "exact" in v and v["exact"]["long_enough"]}
    if not exact:
        return "(a) no exact-equivalent probe long enough to decide"
    inv = [f"{k} {v['steps_within_tol']} steps" for k, v in exact.items()
           if p["per_arch"][k]["invariant"]]
    con = [f"{k} {v['steps_within_tol']} steps" for k, v in exact.items()
           if p["per_arch"][k]["contrast"]]
    state = ("holds" if p["holds"] else
             f"fails on {', '.join(p['invariant_failing'])}" if p["invariant_failing"] else
             f"also tracks the contrast {', '.join(p['contrast_tracking'])}"
             if p["contrast_tracking"] else "cannot discriminate (no invariant or contrast arch)")
    return (f"(a) float64 exact equivalent {state}: invariant {', '.join(inv) or 'none'}; "
            f"contrast {', '.join(con) or 'none'}")


def slab_text(name: str, v: Mapping) -> str:
    s, share = v["schedule_minus_wd"], v["share_explained"]
    share_txt = (f"share explained {c.fmt(share['share'])} [{c.fmt(share['ci_low'])}, "
                 f"{c.fmt(share['ci_high'])}]" if share.get("share") is not None
                 else "share undefined (WD's effect within noise)")
    mimic = v["mimic_minus_wd"]
    mimic_txt = (f"mimic−WD {c.pp(mimic['hl'])}, {mimic['runs']['diverged']}/"
                 f"{mimic['runs']['runs']} mimic runs diverged, {mimic['runs']['collapsed']} "
                 f"collapsed" if mimic["runs"]["runs"] else "no mimic runs")
    return (f"{name} schedule−WD {c.ci_pp(s)} (TOST p_Holm {c.pvalue(s.get('p_tost_holm'))}, "
            f"n={s['n']}), {share_txt}; {mimic_txt}")


def describe(m: Mapping) -> str:
    parts = [probe_text(m["probe"])]
    inv = {k: v for k, v in m["slabs"].items() if v["invariant"]}
    parts.append("(b, c) " + ("; ".join(slab_text(k, v) for k, v in inv.items())
                              if inv else "no invariant SGD slab with runs at λ*"))
    if m["not_applicable"]:
        parts.append("not applicable (no exact equivalent exists for Adam/AdamW): "
                     + ", ".join(m["not_applicable"]))
    return ". ".join(parts) + "."


def decide(tables: Mapping[str, pd.DataFrame], settings: Mapping | None = None) -> c.Decision:
    """supported: (a) holds and the schedule-only equivalent is equivalent to the WD run
    on every invariant arch; refuted: (a) fails on an invariant arch or holds on a
    contrast arch, or the schedule differs significantly beyond the margin;
    inconclusive otherwise."""
    tol, alpha = c.tolerances(settings, TOLERANCES), c.alpha(settings)
    m = measure(tables, settings, tol, alpha)
    verdict = decide_measured(m)
    inv = {k: v for k, v in m["slabs"].items() if v["invariant"]}
    n = {k: v["schedule_minus_wd"]["n"] for k, v in inv.items()}
    key = ", ".join(f"{k} schedule−WD {c.ci_pp(v['schedule_minus_wd'])}" for k, v in inv.items())
    key = (("probe holds; " if m["probe"]["holds"] else "probe does not hold; ") + key) \
        if m["probe"]["per_arch"] else (key or "no data")
    return c.Decision(verdict, describe(m), key, n, m)
