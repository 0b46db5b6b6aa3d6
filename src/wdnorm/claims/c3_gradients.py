"""C3, orthogonal gradients and norm growth at λ = 0 (plain SGD, exact probe): on every
predicted-invariant layer (and joint group) ⟨w, ∇L⟩ = 0 and
‖w_T‖² − ‖w_0‖² = η² Σ ‖g_t‖²; the norm-free contrast's head must not satisfy them."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from . import common as c

ID, TITLE = "C3", "Orthogonal gradients, norm growth"
TABLES = ("gradient_identity",)
TEST = "numerical check: max |cos(w, ∇w)| and the norm-growth identity's relative error"
TOLERANCES = {
    "c3_cos": 1e-3,            # max |cos(w, ∇w)| on predicted-invariant layers
    "c3_identity": 1e-2,       # relative error of the norm-growth identity
    "c3_contrast_cos": 1e-2,   # some non-invariant layer must exceed this (discrimination)
}
RULE = ("supported iff every predicted-invariant layer/joint group has cos_abs_max < {c3_cos:g} "
        "and identity_rel_err_total < {c3_identity:g} (exact probe), and some non-invariant "
        "layer shows cos_abs_max > {c3_contrast_cos:g}; refuted if an invariant layer fails")
ARTICLE = "(implicit in S2) scale-invariant layers"
LITERATURE = ("⟨w, ∇L⟩ = 0 and ‖w_{t+1}‖² = ‖w_t‖² + η²‖g_t‖² exactly (plain SGD, λ = 0): "
              "norms grow, the effective LR η/‖w‖² decays")
FAILING_COLUMNS = ("arch", "layer", "cos_abs_max", "identity_rel_err_total")


def per_arch(df: pd.DataFrame) -> dict:
    multi = "dataset" in df.columns and df["dataset"].nunique() > 1
    out: dict = {}
    for _, r in df.iterrows():
        name = f"{r['dataset']}/{r['arch']}" if multi else str(r["arch"])
        entry = {"predicted_invariant": bool(r["pred"]), "cos_abs_max": c.fnum(r["cos_abs_max"]),
                 "identity_rel_err_total": c.fnum(r["identity_rel_err_total"]),
                 "norm_growth": c.fnum(r.get("norm_growth"))}
        if "cos_abs_max_model_eps" in df.columns:
            entry["cos_abs_max_model_eps"] = c.fnum(r["cos_abs_max_model_eps"])
            entry["identity_rel_err_total_model_eps"] = c.fnum(
                r.get("identity_rel_err_total_model_eps"))
        out.setdefault(name, {})[str(r["layer"])] = entry
    return out


def contrast_heads(df: pd.DataFrame) -> dict:
    """|cos| and identity error of the heads of the norm-free contrast archs (plain, res):
    nothing makes them orthogonal to their gradient."""
    if "is_head" not in df.columns:
        return {}
    heads = df[c.as_bool(df["is_head"]) & df["arch"].map(c.is_contrast)]
    return {str(r["arch"]): {"cos_abs_max": c.fnum(r["cos_abs_max"]),
                             "identity_rel_err_total": c.fnum(r["identity_rel_err_total"])}
            for _, r in heads.iterrows()}


def measure(df: pd.DataFrame, tol: Mapping) -> dict:
    inv, non = df[df["pred"]], df[~df["pred"]]
    failing = df[df["pred"] & ~df["passes"]]
    contrast = non[non["cos_abs_max"].astype(float) > tol["c3_contrast_cos"]]
    m = {"per_arch": per_arch(df), "invariant_layers": int(len(inv)),
         "invariant_layers_passing": int(inv["passes"].sum()),
         "max_cos_invariant": c.fnum(inv["cos_abs_max"].max()) if len(inv) else None,
         "max_identity_err_invariant":
             c.fnum(inv["identity_rel_err_total"].max()) if len(inv) else None,
         "min_norm_growth_invariant": c.fnum(inv["norm_growth"].min())
         if len(inv) and "norm_growth" in df.columns else None,
         "non_invariant_layers": int(len(non)),
         "non_invariant_layers_with_large_cos": int(len(contrast)),
         "contrast_heads": contrast_heads(df),
         "failing": failing[[k for k in FAILING_COLUMNS if k in df.columns]].to_dict("records")}
    if "cos_abs_max_model_eps" in df.columns and len(inv):
        m["max_cos_invariant_model_eps"] = c.fnum(inv["cos_abs_max_model_eps"].max())
        m["max_identity_err_invariant_model_eps"] = c.fnum(
            inv["identity_rel_err_total_model_eps"].max())
    return m


def decide_measured(m: Mapping) -> str:
    if not m["invariant_layers"]:
        return "inconclusive"
    if m["failing"]:
        return "refuted"
    if m["non_invariant_layers"] and not m["non_invariant_layers_with_large_cos"]:
        return "inconclusive"  # the probe would not discriminate
    return "supported"


def describe(verdict: str, m: Mapping, tol: Mapping) -> str:
    if not m["invariant_layers"]:
        return "No predicted-invariant layer was probed."
    if verdict == "refuted":
        return ("Predicted-invariant layers violate orthogonality or the norm-growth "
                "identity: " + ", ".join(
                    f"{r['arch']}:{r['layer']} (|cos| {c.fmt(r['cos_abs_max'])}, err "
                    f"{c.fmt(r['identity_rel_err_total'])})" for r in m["failing"][:6]) + ".")
    if verdict == "inconclusive":
        return (f"Invariant layers pass (|cos| ≤ {c.fmt(m['max_cos_invariant'])}), but no "
                f"non-invariant layer shows |cos| > {tol['c3_contrast_cos']:g}: the probe "
                f"does not discriminate.")
    heads = m["contrast_heads"]
    contrast = ("; contrast: the heads of " + ", ".join(
        f"{a} (|cos| {c.fmt(v['cos_abs_max'])}, identity error "
        f"{c.fmt(v['identity_rel_err_total'])})" for a, v in heads.items())
        if heads else f"; {m['non_invariant_layers_with_large_cos']} non-invariant layers "
                      f"have |cos| > {tol['c3_contrast_cos']:g}")
    eps = (f"; with the model's ε the invariant layers reach |cos| "
           f"{c.fmt(m['max_cos_invariant_model_eps'])} and identity error "
           f"{c.fmt(m['max_identity_err_invariant_model_eps'])}"
           if m.get("max_cos_invariant_model_eps") is not None else "")
    return (f"On all {m['invariant_layers']} predicted-invariant layers/groups |cos(w,∇w)| ≤ "
            f"{c.fmt(m['max_cos_invariant'])} and ‖w_T‖²−‖w_0‖² matches η²Σ‖g_t‖² to "
            f"{c.fmt(m['max_identity_err_invariant'])} (ε→0){contrast}{eps}.")


def decide(tables: Mapping[str, pd.DataFrame], settings: Mapping | None = None) -> c.Decision:
    """supported: every predicted-invariant layer passes and some non-invariant layer
    shows a large |cos|; refuted: an invariant layer fails; inconclusive: nothing
    probed or no contrast."""
    tol = c.tolerances(settings, TOLERANCES)
    table = tables.get("gradient_identity")
    if c.empty(table):
        return c.Decision("inconclusive", "No gradient-identity rows.")
    df = c.healthy(table)
    df = df.assign(pred=c.as_bool(df["predicted_invariant"]),
                   passes=(df["cos_abs_max"].astype(float) < tol["c3_cos"])
                   & (df["identity_rel_err_total"].astype(float) < tol["c3_identity"]))
    m = measure(df, tol)
    verdict = decide_measured(m)
    key = (f"invariant |cos| ≤ {c.fmt(m['max_cos_invariant'])}, identity err ≤ "
           f"{c.fmt(m['max_identity_err_invariant'])}; contrast heads |cos| "
           + (", ".join(c.fmt(v["cos_abs_max"]) for v in m["contrast_heads"].values()) or "n/a"))
    n = {"architectures": int(df["arch"].nunique()), "layers": int(len(df)),
         "steps": int(df["steps"].max()) if "steps" in df.columns else None}
    return c.Decision(verdict, describe(verdict, m, tol), key, n, m)
