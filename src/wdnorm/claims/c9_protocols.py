"""C9, protocol robustness: is the answer the same under every pre-declared training
protocol -- or which protocol factor changes it, for which architectures?

Per protocol (config ``protocols``, :mod:`wdnorm.protocols`): C6's test on its own runs
(λ* vs λ = 0 at its learning rate, paired by seed, Holm across its architectures, its
positive control) and, where it trains a learning-rate grid, C8's. The main protocol's
entry is C6 itself. Each architecture's outcome is *improves*, *harms*, *no
detectable change* or *not comparable* (every run of both arms failed); against the
main protocol, the change of a variant's per-seed effect is estimated too (HL shift
of d_variant − d_main over the seeds both have, signed-rank test, Holm across variants
× architectures; where a variant shares neither data nor initialisation with the main
protocol the pairing by seed is arbitrary, and the test is one of independent
differences).

Verdict: *supported* (the answer is robust) when every protocol's C6 verdict is decisive
(supported or refuted) and they all agree; *refuted* (the answer depends on the
protocol) when two decisive verdicts disagree -- the summary names the factor and the
architectures whose outcome it changes; *inconclusive* otherwise."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from . import c8_tuned
from . import common as c
from . import effects, stats

ID, TITLE = "C9", "Protocol robustness"
TABLES = ("runs",)
SCOPE = "all"  # every protocol's runs (the other claims read the main protocol's)
TEST = ("per protocol, C6's test (" + stats.TEST_NAME + "; Hodges-Lehmann CI; Holm across "
        "its architectures) and C8's where it is tuned; effect change against the main "
        "protocol: signed-rank test of per-seed differences, Holm across protocols × "
        "architectures")
TOLERANCES = {
    "c9_margin": 0.01,     # C6's non-superiority margin inside each protocol (1 pp)
    "c9_min_pairs": 10,    # paired seeds per protocol and architecture
}
RULE = ("per protocol C6's rule (margin {c9_margin:g}, ≥ {c9_min_pairs:g} paired seeds, "
        "Holm p < {alpha:g} within the protocol); supported iff every protocol's verdict is "
        "decisive (supported or refuted) and all agree; refuted iff two decisive verdicts "
        "disagree; else inconclusive")
ARTICLE = "S3: 'useless' as a general statement: the same under any training protocol"
LITERATURE = ("Andriushchenko et al. 2024, Lewkowycz & Gur-Ari 2020: WD's benefit depends on "
              "the learning rate and its schedule; Zhang et al. 2019: on the optimiser")
DECISIVE = ("supported", "refuted")


def in_order(per_protocol: Mapping) -> dict:
    """The protocols in C9's canonical order: main, then by name. The settings reach the
    claims step and the audit through JSON of either key order, and claims.json sorts
    its keys; the texts built from them must come out the same."""
    return {k: per_protocol[k] for k in sorted(per_protocol, key=lambda k: (k != "main", k))}


def protocol_rows(runs: pd.DataFrame, name: str) -> pd.DataFrame:
    rows = runs[runs["protocol"] == name] if "protocol" in runs.columns else runs.iloc[0:0]
    return c.of_kind(rows, "grid")


def cells_of(rows: pd.DataFrame, info: Mapping, alpha: float) -> list[dict]:
    """The protocol's C6 cells (its λ* vs λ = 0 at its lr), Holm within the protocol."""
    cells = [x for key, g in c.groups(rows)
             if (x := effects.cell(key, g, info["lr"], info["weight_decay"], alpha))]
    effects.apply_holm(cells, alpha)
    return cells


def tuned_of(rows: pd.DataFrame, info: Mapping, settings, alpha: float) -> dict | None:
    """C8's tuned comparison inside a tuned protocol (its own lr grid and λ grid)."""
    if not info.get("tuned") or info["name"] == "main":
        return None
    inner = {**(settings or {}), "optimisers": {info["optimiser"]: info["optimiser_entry"]},
             "weight_decays": info["weight_decays"]}
    cells = c8_tuned.tuned_effects(rows, inner, alpha)
    return {c.Labeller.key(x["key"]): effects.cell_record(x) for x in cells} if cells else None


def change_against_main(cells: list[dict], main: Mapping[str, dict], rows: pd.DataFrame,
                        main_effects: Mapping[str, pd.DataFrame], alpha: float) -> dict:
    """Per architecture: the main and this protocol's outcomes and the paired shift of
    the per-seed WD effect (this protocol's minus the main one's); ``rows``: this
    protocol's grid runs; ``main_effects``: the main protocol's :func:`per_seed_effects`."""
    out = {}
    rows = per_seed_columns(rows)
    for x in cells:
        arch = x["arch"]
        if arch not in main:
            continue
        d_here = per_seed_effects(rows, x)
        both = d_here.merge(main_effects[arch], left_index=True, right_index=True,
                            how="inner", suffixes=("_p", "_m")).dropna()
        shift = stats.paired_effect((both["d_p"] - both["d_m"]).to_numpy(), alpha)
        out[arch] = {"main": main[arch]["test_acc"]["outcome"],
                     "here": x["test_acc"]["outcome"],
                     "changed": main[arch]["test_acc"]["outcome"] != x["test_acc"]["outcome"],
                     "effect_change": shift}
    return out


#: What :func:`per_seed_effects` reads of a run.
PER_SEED_COLUMNS = ("arch", "lr", "weight_decay", "seed", "test_acc")


def per_seed_columns(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` narrowed to :data:`PER_SEED_COLUMNS`: the bootstrap filters them hundreds
    of times, and a filter's cost grows with the columns it carries along."""
    return rows[[name for name in PER_SEED_COLUMNS if name in rows.columns]]


def per_seed_effects(rows: pd.DataFrame, cell: Mapping) -> pd.DataFrame:
    """The cell's per-seed effect ``d`` (test accuracy at its λ minus at λ = 0)."""
    g = rows[(rows["arch"] == cell["arch"]) & c.close(rows["lr"], cell["lr"])]
    treated = g[c.close(g["weight_decay"], cell["weight_decay"])].set_index("seed")["test_acc"]
    base = g[g["weight_decay"].astype(float) == 0].set_index("seed")["test_acc"]
    return (treated - base).rename("d").to_frame()


def measure(runs: pd.DataFrame, settings, c6_per_arch: Mapping, tol: Mapping,
            alpha: float) -> dict:
    infos = (settings or {}).get("protocols") or {}
    main_info = infos.get("main")
    main = {x["arch"]: x for x in c6_per_arch.values()} if c6_per_arch else {}
    out = {}
    main_rows = per_seed_columns(protocol_rows(runs, "main"))
    main_effects = ({arch: per_seed_effects(main_rows, x) for arch, x in main.items()}
                    if main_info is not None else {})
    for name, info in in_order(infos).items():
        rows = protocol_rows(runs, name)
        if name == "main":
            cells = list(main.values())
        else:
            cells = cells_of(rows, info, alpha)
        per_arch = {x["arch"]: effects.cell_record(x) for x in cells}
        verdict = (effects.setting_verdict(cells, tol["c9_margin"], tol["c9_min_pairs"])
                   if cells else {"verdict": "inconclusive", "reason": "no runs"})
        out[name] = {"changes": info.get("changes", ""), "data": info.get("data"),
                     "optimiser": info.get("optimiser"), "lr": info.get("lr"),
                     "lr_schedule": info.get("lr_schedule"), "weight_decay": info.get(
                         "weight_decay"), "per_arch": per_arch, **verdict,
                     "tuned": tuned_of(rows, info, settings, alpha)}
        if name != "main" and main_info is not None:
            out[name]["against_main"] = change_against_main(cells, main, rows, main_effects,
                                                            alpha)
    holm_changes(out, alpha)
    return out


def holm_changes(per_protocol: Mapping, alpha: float) -> None:
    entries = [e for p in per_protocol.values() for e in (p.get("against_main") or {}).values()]
    for e, adj in zip(entries, stats.holm([e["effect_change"]["p_two_sided"] for e in entries])):
        e["effect_change"]["p_two_sided_holm"] = adj
        e["effect_change"]["differs"] = bool(adj < alpha)


def decide_measured(per_protocol: Mapping) -> str:
    decisive = {v["verdict"] for v in per_protocol.values() if v["verdict"] in DECISIVE}
    if len(decisive) > 1:
        return "refuted"
    if per_protocol and all(v["verdict"] in DECISIVE for v in per_protocol.values()):
        return "supported"
    return "inconclusive"


def protocol_text(name: str, p: Mapping) -> str:
    head = ", ".join(effects.outcome_text(a, x) for a, x in p["per_arch"].items())
    changed = [f"{a} {e['main']} → {e['here']}" for a, e in (p.get("against_main") or {}).items()
               if e["changed"]]
    factor = f" ({p['changes']})" if p.get("changes") else ""
    text = f"{name}{factor}: {p['verdict']}; {head or 'no runs'}"
    if changed:
        text += f"; changed against main: {', '.join(changed)}"
    return text


def describe(verdict: str, per_protocol: Mapping) -> str:
    parts = "; ".join(protocol_text(k, v) for k, v in per_protocol.items())
    if verdict == "refuted":
        flips = [f"{v['changes'] or k} changes {', '.join(a for a, e in v['against_main'].items() if e['changed'])}"
                 for k, v in per_protocol.items() if v.get("against_main")
                 and any(e["changed"] for e in v["against_main"].values())]
        lead = ("The answer depends on the protocol: "
                + ("; ".join(flips) if flips else "decisive verdicts disagree") + ".")
    elif verdict == "supported":
        lead = "The answer is the same under every protocol."
    else:
        lead = "Not every protocol decides, and none decisively disagrees."
    return f"{lead} {parts}."


def decide(tables: Mapping[str, pd.DataFrame], settings: Mapping | None = None) -> c.Decision:
    tol, alpha = c.tolerances(settings, TOLERANCES), c.alpha(settings)
    runs = tables.get("runs")
    infos = (settings or {}).get("protocols") or {}
    if c.empty(runs) or len(infos) < 2:
        why = "no runs" if c.empty(runs) else "no protocol besides the main one (config protocols)"
        return c.Decision("inconclusive", f"Nothing to compare: {why}.", "no protocols")
    main_runs = runs[runs["protocol"] == "main"] if "protocol" in runs.columns else runs
    c6_cells = effects.wd_effects(main_runs, settings, alpha)
    first = infos["main"]
    c6_main = {c.Labeller.key(x["key"]): x for x in c6_cells
               if x["key"].get("dataset") == first["data"]
               and x["key"].get("optimiser") == first["optimiser"]}
    per_protocol = measure(runs, settings, c6_main, tol, alpha)
    verdict = decide_measured(per_protocol)
    n = {k: min((x["n_pairs"] for x in v["per_arch"].values()), default=0)
         for k, v in per_protocol.items()}
    key = "; ".join(f"{k} {v['verdict']}" for k, v in per_protocol.items())
    return c.Decision(verdict, describe(verdict, per_protocol), key, n,
                      {"per_protocol": per_protocol})
