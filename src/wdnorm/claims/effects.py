"""The weight-decay effect that claims C6, C7, C8 and C9 share: per (dataset, optimiser,
architecture) cell, the paired-by-seed effect of one arm against another on test
accuracy and the generalisation gap, Holm's correction across cells, and C6's
per-setting rule (a positive control first, then the headline architectures).

Diverged and collapsed runs stay in as outcomes (a diverged run scores 1/n_classes),
which makes the differences heavy-tailed: hence the signed-rank test (:mod:`.stats`),
the Hodges-Lehmann estimate with its distribution-free CI, the mean difference and the
rank-biserial r. Holm runs across the cells, separately per question (changes:
two-sided; improves: one-sided) and metric."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from . import common as c
from . import stats

# The direction in which weight decay *improves* a metric (the one-sided alternative on
# d = metric(treated) − metric(baseline)): higher test accuracy, lower train−test gap.
IMPROVES = {"test_acc": "greater", "gen_gap_acc": "less"}
#: A cell's outcome when weight decay improves its metric (Holm, at α) ...
IMPROVED = "improves"
#: ... changes it the other way ...
HARMED = "harms"
#: ... or neither improves nor harms it.
NO_CHANGE = "no detectable change"
#: A cell's outcome when every run of both arms diverged or collapsed: both score chance,
#: so their paired differences are 0 by construction -- no measurement of weight decay.
NOT_COMPARABLE = "not comparable"


def role(arch: str) -> str:
    r = c.record(arch)
    return r.role if r else "other"


def grid_lr(settings: Mapping | None, optimiser, rows: pd.DataFrame) -> float | None:
    """The optimiser's grid learning rate (settings), else the most common λ = 0 lr."""
    lr = c.optimiser_setting(settings, str(optimiser), "lr")
    if lr is not None:
        return float(lr)
    base = rows[rows["weight_decay"].astype(float) == 0]
    return float(base["lr"].mode().iloc[0]) if len(base) else None


def effect(d, alpha: float, direction: str) -> dict:
    e = stats.paired_effect(d, alpha)
    e["p_changes"] = e["p_two_sided"]
    e["p_improves"] = e["p_greater"] if direction == "greater" else e["p_less"]
    e["improves_when"] = "higher" if direction == "greater" else "lower"
    return e


def cell(key: Mapping, g: pd.DataFrame, lr: float | None, wd_star: float,
         alpha: float) -> dict | None:
    """One (dataset, optimiser, arch): both arms at ``lr`` and their paired effects."""
    if lr is None:
        return None
    g = g[c.close(g["lr"], lr)]
    treated = g[c.close(g["weight_decay"], wd_star)]
    base = g[g["weight_decay"].astype(float) == 0]
    if not len(treated) or not len(base):
        return None
    out = {"key": dict(key), "arch": key.get("arch"), "role": role(key.get("arch")), "lr": lr,
           "weight_decay": wd_star,
           "arms": {"weight_decay": dict(c.status_counts(treated),
                                         test_acc_mean=c.fnum(treated["test_acc"].mean())),
                    "no_weight_decay": dict(c.status_counts(base),
                                            test_acc_mean=c.fnum(base["test_acc"].mean()))}}
    for metric, direction in IMPROVES.items():
        d, seeds = c.paired(treated, base, metric)
        out[metric] = effect(d, alpha, direction)
        out["n_pairs"] = max(out.get("n_pairs", 0), len(seeds))
    return out


def apply_holm(cells: list[dict], alpha: float) -> None:
    """Holm across the cells, per metric and question, and the decisions at ``alpha``
    (``changes``, ``improves``), in place."""
    for metric in IMPROVES:
        for question in ("p_changes", "p_improves"):
            adjusted = stats.holm([x[metric][question] for x in cells])
            for x, adj in zip(cells, adjusted):
                x[metric][f"{question}_holm"] = adj
        for x in cells:
            e = x[metric]
            e["changes"] = bool(e["p_changes_holm"] < alpha)
            e["improves"] = bool(e["p_improves_holm"] < alpha)
            worse = e["hl"] < 0 if IMPROVES[metric] == "greater" else e["hl"] > 0
            e["outcome"] = (NOT_COMPARABLE if every_run_failed(x) else IMPROVED
                            if e["improves"] else HARMED if e["changes"] and worse
                            else NO_CHANGE)


def outcome_text(arch: str, cell: Mapping) -> str:
    """'ln improves +2.13 pp [+1.25, +3.12]' (with the failed runs, if any); a cell
    whose runs all failed gives its counts instead of a shift that is 0 by construction."""
    e = cell.get("test_acc") or {}
    shift = "" if e.get("outcome") == NOT_COMPARABLE else f" {c.ci_pp(e)}"
    return f"{arch} {e.get('outcome', 'n/a')}{shift}{c.failures_note(cell)}"


def every_run_failed(x: Mapping) -> bool:
    """Every run of both of the cell's arms diverged or collapsed."""
    arms = (x.get("arms") or {}).values()
    return bool(arms) and all(a.get("runs", 0) and a.get("diverged", 0) + a.get("collapsed", 0)
                              >= a["runs"] for a in arms)


def wd_effects(runs: pd.DataFrame, settings: Mapping | None, alpha: float) -> list[dict]:
    """Every cell's effect of λ* vs λ = 0, Holm-adjusted (C7 reads WD's own effect here)."""
    wd_star = c.claims_weight_decay(settings)
    if c.empty(runs) or wd_star is None:
        return []
    grid = c.of_kind(runs, "grid")
    cells = [x for key, g in c.groups(grid)
             if (x := cell(key, g, grid_lr(settings, key.get("optimiser"), g), wd_star, alpha))]
    apply_holm(cells, alpha)
    return cells


def setting_verdict(cells: list[dict], margin: float, min_pairs: int) -> dict:
    """The headline verdict in one setting (C6's rule), with its reason."""
    def enough(x):
        return x["n_pairs"] >= min_pairs
    controls = [x["arch"] for x in cells
                if x["role"] == "control" and enough(x) and x["test_acc"]["improves"]]
    headline = [x for x in cells if x["role"] == "headline"]
    improved = [x["arch"] for x in headline if enough(x) and x["test_acc"]["improves"]]
    few = [x["arch"] for x in cells if not enough(x)]
    out = {"positive_controls": controls, "headline_archs": [x["arch"] for x in headline],
           "headline_improved": improved, "too_few_seeds": few}
    few_txt = (f" (fewer than {int(min_pairs)} paired seeds: {', '.join(few)})"
               if few else "")
    if not headline:
        return dict(out, verdict="inconclusive", reason="no headline architecture")
    if not controls:
        return dict(out, verdict="inconclusive", reason="no positive control: WD significantly "
                    "improved no norm-free non-invariant net, so the experiment could not see "
                    "a regulariser" + few_txt)
    if improved:
        return dict(out, verdict="refuted", reason=f"WD improves {', '.join(improved)}")
    below = all(enough(x) and x["test_acc"]["upper_bound_one_sided"] < margin
                for x in headline)
    if below:
        return dict(out, verdict="supported", reason="every headline improvement is below "
                    "the margin (one-sided upper HL bound)")
    return dict(out, verdict="inconclusive", reason="a headline improvement below the margin "
                "is not shown" + (few_txt or " (the CI reaches the margin)"))


def overall(per_setting: Mapping[str, dict]) -> str:
    """Settings without a positive control carry no information; of the others, one
    refutation refutes, and support needs all of them."""
    informative = [v["verdict"] for v in per_setting.values() if v["positive_controls"]
                   and v["headline_archs"]]
    if "refuted" in informative:
        return "refuted"
    if informative and all(v == "supported" for v in informative):
        return "supported"
    return "inconclusive"


def cell_record(x: Mapping) -> dict:
    return {k: v for k, v in x.items() if k != "key"}


def verdicts(cells: list[dict], runs: pd.DataFrame, margin: float,
             min_pairs: int) -> tuple[dict, dict, str]:
    """(per-arch records, per-setting verdicts, overall verdict) of Holm-adjusted cells."""
    label = c.Labeller(runs)
    per_arch = {label(x["key"]): cell_record(x) for x in cells}
    per_setting = {}
    for setting in dict.fromkeys(label.setting(x["key"]) for x in cells):
        part = [x for x in cells if label.setting(x["key"]) == setting]
        per_setting[setting] = setting_verdict(part, margin, min_pairs)
    return per_arch, per_setting, overall(per_setting)
