"""C5, only ηλ matters: grid runs at matched (η, λ) pairs (equal products) reach the same
test accuracy on scale-invariant architectures -- shown by an equivalence test with a
stated margin, not by failing to reject a difference. Each pair is compared with the
first pair present, paired by seed; plain (no symmetry) is the reported contrast."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from . import common as c
from . import stats

ID, TITLE = "C5", "Only ηλ matters"
TABLES = ("runs",)
TEST = ("TOST equivalence of paired test-accuracy differences (two one-sided "
        + stats.TEST_NAME + "), Holm across architectures × comparisons")
TOLERANCES = {
    "c5_margin": 0.02,      # equivalence margin on test accuracy (2 pp)
    "c5_min_pairs": 5,      # paired seeds needed per comparison
}
RULE = ("per arch, each matched pair vs the first, paired by seed: supported iff every "
        "invariant arch has ≥ {c5_min_pairs:g} paired seeds and Holm-adjusted TOST p < "
        "{alpha:g} (margin ±{c5_margin:g}) on every comparison; refuted if a comparison "
        "differs (two-sided, Holm p < {alpha:g}) with |HL| > margin; else inconclusive; "
        "diverged/collapsed runs kept as outcomes")
ARTICLE = "(not addressed)"
LITERATURE = ("Li, Lyu, Arora 2020: the intrinsic LR ηλ alone sets the equilibrium of "
              "scale-invariant nets; not so for plain")


def pair_name(lr: float, wd: float) -> str:
    return f"({lr:g}, {wd:g})"


def matched_rows(runs: pd.DataFrame, matched_pairs) -> tuple[pd.DataFrame, list[str]]:
    """Grid rows at the matched pairs with a ``pair`` column, and the pair names in the
    declared order (the table's ``is_matched_pair`` flag when none are declared)."""
    df = c.of_kind(runs, "grid")
    pairs = [tuple(map(float, p)) for p in (matched_pairs or [])]
    if not pairs and "is_matched_pair" in df.columns:
        flagged = df[c.as_bool(df["is_matched_pair"])]
        pairs = sorted({(float(a), float(b))
                        for a, b in zip(flagged["lr"], flagged["weight_decay"])}, reverse=True)
    names = [pair_name(*p) for p in pairs]
    column = pd.Series(None, index=df.index, dtype=object)
    for (lr, wd), name in zip(pairs, names):
        column[c.close(df["lr"], lr) & c.close(df["weight_decay"], wd)] = name
    df = df.assign(pair=column)
    return df[df["pair"].notna()], names


def compare_pairs(g: pd.DataFrame, names: list[str], alpha: float, margin: float) -> list[dict]:
    """Each present pair vs the first present one: paired effect and TOST."""
    present = [p for p in names if (g["pair"] == p).any()]
    if len(present) < 2:
        return []
    ref = g[g["pair"] == present[0]]
    out = []
    for name in present[1:]:
        d, seeds = c.paired(g[g["pair"] == name], ref, "test_acc")
        effect = stats.paired_effect(d, alpha)
        out.append(dict(effect, pair=name, reference=present[0], seeds=seeds,
                        p_tost=stats.tost(d, margin)["p"]))
    return out


def apply_holm(entries: dict, family: list[str]) -> None:
    """Holm-adjust the TOST and the two-sided p-values across the comparisons of the
    architectures in ``family`` (one family), in place."""
    comps = [comp for name in family for comp in entries[name]["comparisons"]]
    for key in ("p_tost", "p_two_sided"):
        for comp, adj in zip(comps, stats.holm([comp[key] for comp in comps])):
            comp[f"{key}_holm"] = adj


def judge(entry: dict, alpha: float, margin: float, min_pairs: int) -> None:
    """``equivalent``: every comparison has enough seeds and a Holm-adjusted TOST p <
    alpha; ``different``: some comparison differs significantly (two-sided, Holm) with
    |HL| beyond the margin."""
    comps = entry["comparisons"]
    entry["enough_seeds"] = bool(comps) and all(k["n"] >= min_pairs for k in comps)
    entry["equivalent"] = entry["enough_seeds"] and all(k["p_tost_holm"] < alpha for k in comps)
    entry["different"] = any(k["p_two_sided_holm"] < alpha and abs(k["hl"]) > margin
                             for k in comps if math.isfinite(k["hl"]))


def measure(runs: pd.DataFrame, settings: Mapping | None, tol: Mapping, alpha: float) -> dict:
    rows, names = matched_rows(runs, (settings or {}).get("matched_pairs"))
    label = c.Labeller(rows)
    entries = {}
    for key, g in c.groups(rows):
        comps = compare_pairs(g, names, alpha, tol["c5_margin"])
        if not comps:
            continue
        means = g.groupby("pair")["test_acc"].mean()
        entries[label(key)] = {
            "arch": key.get("arch"), "invariant_arch": c.is_invariant(key.get("arch")),
            "pairs": int(g["pair"].nunique()),
            "test_acc_means": {p: c.fnum(means[p]) for p in names if p in means},
            "test_acc_spread": c.fnum(means.max() - means.min()),
            "status": {p: c.status_counts(g[g["pair"] == p]) for p in names if p in means},
            "comparisons": comps}
    for invariant in (True, False):
        family = [k for k, v in entries.items() if v["invariant_arch"] == invariant]
        apply_holm(entries, family)
        for k in family:
            judge(entries[k], alpha, tol["c5_margin"], int(tol["c5_min_pairs"]))
    return {"per_arch": entries, "matched_pairs": names}


def decide_measured(per_arch: Mapping) -> str:
    inv = [v for v in per_arch.values() if v["invariant_arch"]]
    if not inv:
        return "inconclusive"
    if any(v["different"] for v in inv):
        return "refuted"
    return "supported" if all(v["equivalent"] for v in inv) else "inconclusive"


def arch_text(name: str, v: Mapping) -> str:
    worst = max(v["comparisons"], key=lambda k: abs(k["hl"]) if math.isfinite(k["hl"]) else 0)
    return (f"{name} worst {worst['pair']}−{worst['reference']} {c.ci_pp(worst)} "
            f"(TOST p_Holm {c.pvalue(max(k['p_tost_holm'] for k in v['comparisons']))}, "
            f"n={min(k['n'] for k in v['comparisons'])})")


def describe(verdict: str, per_arch: Mapping, tol: Mapping) -> str:
    inv = {k: v for k, v in per_arch.items() if v["invariant_arch"]}
    other = {k: v for k, v in per_arch.items() if not v["invariant_arch"]}
    contrast = "; contrast (no symmetry): " + ", ".join(
        f"{arch_text(k, v)} {'equivalent' if v['equivalent'] else 'not shown equivalent'}"
        for k, v in other.items()) if other else ""
    margin = f"±{100 * tol['c5_margin']:g} pp"
    if not inv:
        return "No invariant architecture has two matched pairs in the grid runs."
    text = "; ".join(arch_text(k, v) for k, v in inv.items())
    if verdict == "supported":
        return (f"Matched ηλ pairs are equivalent within {margin} for every invariant "
                f"architecture: {text}{contrast}.")
    if verdict == "refuted":
        bad = [k for k, v in inv.items() if v["different"]]
        return (f"Matched ηλ pairs differ beyond {margin} for {', '.join(bad)}: "
                f"{text}{contrast}.")
    few = [k for k, v in inv.items() if not v["enough_seeds"]]
    why = (f"fewer than {int(tol['c5_min_pairs'])} paired seeds for {', '.join(few)}"
           if few else "equivalence within the margin not shown")
    return f"Inconclusive ({why}): {text}{contrast}."


def decide(tables: Mapping[str, pd.DataFrame], settings: Mapping | None = None) -> c.Decision:
    """supported: every invariant arch is shown equivalent on every comparison;
    refuted: an invariant arch differs significantly beyond the margin; inconclusive:
    otherwise (too few seeds, no invariant arch, equivalence not shown)."""
    tol, alpha = c.tolerances(settings, TOLERANCES), c.alpha(settings)
    runs = tables.get("runs")
    if c.empty(runs):
        return c.Decision("inconclusive", "No runs.")
    m = measure(runs, settings, tol, alpha)
    verdict = decide_measured(m["per_arch"])
    # paired seeds per arch: the smallest over its comparisons
    n = {k: min(comp["n"] for comp in v["comparisons"]) for k, v in m["per_arch"].items()}
    key = ", ".join(f"{k} max|HL| {c.pp(max(abs(comp['hl']) for comp in v['comparisons']))}"
                    for k, v in m["per_arch"].items() if v["invariant_arch"]) or "no matched pairs"
    return c.Decision(verdict, describe(verdict, m["per_arch"], tol), key, n, m)
