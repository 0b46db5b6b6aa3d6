"""C1, the symmetry map: every probed cell (arch x layer/joint x scale x BN mode) against
the predicted invariance, on the exact (ε → 0, float64) probe."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from . import common as c

ID, TITLE = "C1", "Symmetry map"
TABLES = ("symmetry", "epsilon_floor")
TEST = "numerical check: max|Δlogits|/max|logits| per cell vs the predicted invariance"
TOLERANCES = {
    # a predicted-invariant cell must change the logits by < c1_invariant (relative,
    # ε → 0, float64); a predicted non-invariant one by > c1_non_invariant.
    "c1_invariant": 1e-5,
    "c1_non_invariant": 1e-2,
}
RULE = ("supported iff every cell matches: predicted-invariant cells rel_change < "
        "{c1_invariant:g}, others > {c1_non_invariant:g} (exact probe, ε→0, float64); "
        "refuted if any cell contradicts the prediction; inconclusive if NaN or grey-zone "
        "cells [{c1_invariant:g}, {c1_non_invariant:g}] remain")
ARTICLE = ("S1/S2/S4: plain equivariant; ln/bn hidden layers invariant; LN(x+f(x)) "
           "('pre-norm') breaks it, x+LN(f(x)) ('post-norm') keeps it")
LITERATURE = ("the same per layer; x+f(LN(x)) with a final LN is jointly invariant; BN in "
              "eval mode only with rescaled running statistics; ε breaks invariance at "
              "small scales")


def classify(df: pd.DataFrame, tol: Mapping) -> pd.DataFrame:
    """The cells with ``pred``, ``nan``, ``mismatch`` and ``grey`` flags."""
    pred = c.as_bool(df["predicted_invariant"])
    rel = df["rel_change"].astype(float)
    nan = rel.isna()
    t_inv, t_non = tol["c1_invariant"], tol["c1_non_invariant"]
    return df.assign(
        pred=pred, rel=rel, nan=nan,
        mismatch=~nan & ((pred & (rel >= t_inv)) | (~pred & (rel < t_inv))),
        grey=~nan & ~pred & (rel >= t_inv) & (rel <= t_non))


def per_arch(cells: pd.DataFrame, tol: Mapping) -> dict:
    out = {}
    multi = "dataset" in cells.columns and cells["dataset"].nunique() > 1
    for key, g in c.groups(cells, ("dataset", "arch")):
        gp, gr = g["pred"], g["rel"]
        entry = {
            "cells": int(len(g)), "predicted_invariant": int(gp.sum()),
            "measured_invariant": int((gr < tol["c1_invariant"]).sum()),
            "mismatches": int(g["mismatch"].sum()), "grey_zone": int(g["grey"].sum()),
            "max_rel_change_predicted_invariant": c.fnum(gr[gp].max()) if gp.any() else None,
            "min_rel_change_predicted_non_invariant":
                c.fnum(gr[~gp].min()) if (~gp).any() else None,
        }
        if "rel_change_model_eps" in g.columns and gp.any():
            model = g.loc[gp, "rel_change_model_eps"].astype(float)
            entry["predicted_invariant_still_invariant_with_model_eps"] = int(
                (model < tol["c1_invariant"]).sum())
            entry["max_rel_change_predicted_invariant_model_eps"] = c.fnum(model.max())
        name = f"{key['dataset']}/{key['arch']}" if multi else key["arch"]
        out[str(name)] = entry
    return out


def epsilon_floors(df: pd.DataFrame | None) -> dict:
    """{arch: {layer: floor}}: the smallest scale where the model's own ε keeps the
    symmetry (float32 rows when present)."""
    if c.empty(df) or "floor" not in df.columns:
        return {}
    if "dtype" in df.columns and (df["dtype"] == "float32").any():
        df = df[df["dtype"] == "float32"]
    floors: dict = {}
    for _, r in df.iterrows():
        floors.setdefault(str(r["arch"]), {})[str(r["layer"])] = c.fnum(r["floor"])
    return floors


def decide_cells(cells: pd.DataFrame) -> str:
    if cells["mismatch"].any():
        return "refuted"
    if cells["nan"].any() or cells["grey"].any():
        return "inconclusive"
    return "supported"


def describe(verdict: str, cells: pd.DataFrame, floors: dict, tol: Mapping) -> tuple[str, str]:
    """(summary, key numbers)."""
    inv, non = cells[cells["pred"] & ~cells["nan"]], cells[~cells["pred"] & ~cells["nan"]]
    inv_max = inv["rel"].max() if len(inv) else None
    non_min = non["rel"].min() if len(non) else None
    n_bad = int(cells["mismatch"].sum())
    key = (f"{n_bad}/{len(cells)} cells mismatch; max invariant {c.fmt(inv_max)}, "
           f"min non-invariant {c.fmt(non_min)}")
    if verdict == "refuted":
        bad = sorted({f"{r['arch']}:{r.get('layer', '?')}/{r.get('mode', '?')}"
                      for _, r in cells[cells["mismatch"]].iterrows()})
        return (f"{n_bad} of {len(cells)} cells contradict the predicted invariance "
                f"({', '.join(bad[:8])}{', ...' if len(bad) > 8 else ''}).", key)
    if verdict == "inconclusive":
        return (f"No cell contradicts the prediction, but {int(cells['grey'].sum())} "
                f"predicted non-invariant cells change the logits only by "
                f"{tol['c1_invariant']:g}–{tol['c1_non_invariant']:g} and "
                f"{int(cells['nan'].sum())} cells are NaN.", key)
    values = [v for layers in floors.values() for v in layers.values() if v is not None]
    floor_txt = (f"; with the model's own ε the symmetry only holds down to a ≈ "
                 f"{c.fmt(min(values))}–{c.fmt(max(values))} (ε floor, float32)"
                 if values else "")
    return (f"All {len(cells)} cells over {cells['arch'].nunique()} architectures match: "
            f"predicted-invariant transforms change the logits by at most {c.fmt(inv_max)} "
            f"(ε→0), the others by at least {c.fmt(non_min)}{floor_txt}.", key)


def decide(tables: Mapping[str, pd.DataFrame], settings: Mapping | None = None) -> c.Decision:
    """supported: every cell matches (predicted-invariant cells below c1_invariant, the
    others above c1_non_invariant); refuted: a cell contradicts the prediction;
    inconclusive: no cells, NaN cells, or non-invariant cells in the grey zone."""
    tol = c.tolerances(settings, TOLERANCES)
    symmetry = tables.get("symmetry")
    if c.empty(symmetry):
        return c.Decision("inconclusive", "No symmetry table rows: nothing to decide.")
    cells = classify(symmetry, tol)
    floors = epsilon_floors(tables.get("epsilon_floor"))
    cols = [k for k in ("dataset", "arch", "layer", "transform", "scale", "mode",
                        "rel_change", "predicted_invariant") if k in symmetry.columns]
    measured = {"per_arch": per_arch(cells, tol),
                "mismatched_cells": symmetry.loc[cells["mismatch"], cols].to_dict("records")[:50],
                "n_mismatched": int(cells["mismatch"].sum()),
                "n_grey_zone": int(cells["grey"].sum()), "n_nan": int(cells["nan"].sum()),
                "epsilon_floor_float32": floors}
    verdict = decide_cells(cells)
    summary, key = describe(verdict, cells, floors, tol)
    n = {"cells": int(len(cells)), "architectures": int(cells["arch"].nunique())}
    return c.Decision(verdict, summary, key, n, measured)
