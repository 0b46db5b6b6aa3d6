"""C6, the effect: does hidden-layer weight decay at the pre-declared λ* change test
accuracy and the generalisation gap, and does it *improve* them (a harmful effect is
not a regularising one)?

Per architecture: grid runs at λ* vs λ = 0 at the optimiser's grid learning rate, paired
by seed (same initialisation and batch order). Diverged and collapsed runs stay in as
outcomes (a diverged run scores 1/n_classes), which makes the differences heavy-tailed:
hence the signed-rank test (see :mod:`.stats`), the Hodges-Lehmann estimate with its
distribution-free CI, the mean difference and the rank-biserial r. Holm's correction
runs across architectures (and settings, when there are several), separately per
question (changes: two-sided; improves: one-sided) and metric.

"Supported" is a non-superiority statement: every headline arch's one-sided (1−α) upper
HL bound on the improvement lies below the margin. It needs no multiplicity correction,
since every headline arch must pass (an intersection-union test).

The verdict on "WD is useless without residual connections" is taken per setting
(dataset × optimiser) for the normalised stacked invariant architectures (ln, bn) and
needs a positive control there: WD must significantly improve a norm-free,
non-invariant net (plain, res); without one the experiment could not have seen a
regulariser and the setting is inconclusive."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from . import common as c
from . import stats

ID, TITLE = "C6", "Weight decay's effect on accuracy"
TABLES = ("runs",)
FIGURE = "figures/accuracy_vs_wd.png"
TEST = stats.TEST_NAME + "; Hodges-Lehmann CI; Holm across architectures"
TOLERANCES = {
    "c6_margin": 0.01,     # non-superiority margin on test accuracy (1 pp)
    "c6_min_pairs": 10,    # paired seeds needed for a decisive outcome
}
# The direction in which weight decay *improves* a metric (the one-sided alternative on
# d = metric(λ*) − metric(0)): higher test accuracy, lower train−test gap.
IMPROVES = {"test_acc": "greater", "gen_gap_acc": "less"}
ARTICLE = ("S3/S5: without residual connections WD is useless as a regulariser (implicit "
           "regularisation of the optimiser may still help)")
LITERATURE = ("van Laarhoven 2017, Hoffer et al. 2018, Andriushchenko et al. 2024: WD still "
              "changes accuracy, through the effective LR η/‖w‖², not as a regulariser")


def role(arch: str) -> str:
    if c.is_headline(arch):
        return "headline"
    return "control" if c.is_contrast(arch) else "other"


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


def cell(key: Mapping, g: pd.DataFrame, settings, wd_star: float, alpha: float) -> dict | None:
    """One (dataset, optimiser, arch): both arms at the grid lr and their paired effects."""
    lr = grid_lr(settings, key.get("optimiser"), g)
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
            x[metric]["changes"] = bool(x[metric]["p_changes_holm"] < alpha)
            x[metric]["improves"] = bool(x[metric]["p_improves_holm"] < alpha)


def wd_effects(runs: pd.DataFrame, settings: Mapping | None, alpha: float) -> list[dict]:
    """Every cell's effect of λ* vs λ = 0, Holm-adjusted (C7 reads WD's own effect here)."""
    wd_star = c.claims_weight_decay(settings)
    if c.empty(runs) or wd_star is None:
        return []
    grid = c.of_kind(runs, "grid")
    cells = [x for key, g in c.groups(grid) if (x := cell(key, g, settings, wd_star, alpha))]
    apply_holm(cells, alpha)
    return cells


def setting_verdict(cells: list[dict], tol: Mapping) -> dict:
    """The headline verdict in one setting, with its reason."""
    def enough(x):
        return x["n_pairs"] >= tol["c6_min_pairs"]
    controls = [x["arch"] for x in cells
                if x["role"] == "control" and enough(x) and x["test_acc"]["improves"]]
    headline = [x for x in cells if x["role"] == "headline"]
    improved = [x["arch"] for x in headline if enough(x) and x["test_acc"]["improves"]]
    few = [x["arch"] for x in cells if not enough(x)]
    out = {"positive_controls": controls, "headline_archs": [x["arch"] for x in headline],
           "headline_improved": improved, "too_few_seeds": few}
    few_txt = (f" (fewer than {int(tol['c6_min_pairs'])} paired seeds: {', '.join(few)})"
               if few else "")
    if not headline:
        return dict(out, verdict="inconclusive", reason="no headline architecture")
    if not controls:
        return dict(out, verdict="inconclusive", reason="no positive control: WD significantly "
                    "improved no norm-free non-invariant net, so the experiment could not see "
                    "a regulariser" + few_txt)
    if improved:
        return dict(out, verdict="refuted", reason=f"WD improves {', '.join(improved)}")
    below = all(enough(x) and x["test_acc"]["upper_bound_one_sided"] < tol["c6_margin"]
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


def verdicts(cells: list[dict], runs: pd.DataFrame, tol: Mapping) -> tuple[dict, dict, str]:
    """(per-arch records, per-setting verdicts, overall verdict) of Holm-adjusted cells;
    C8 reuses it for its tuned arms."""
    label = c.Labeller(runs)
    per_arch = {label(x["key"]): cell_record(x) for x in cells}
    per_setting = {}
    for setting in dict.fromkeys(label.setting(x["key"]) for x in cells):
        part = [x for x in cells if label.setting(x["key"]) == setting]
        per_setting[setting] = setting_verdict(part, tol)
    return per_arch, per_setting, overall(per_setting)


def arm_note(x: Mapping) -> str:
    """'; 1 diverged at λ*' for the runs that are outcomes, not noise."""
    parts = [f"{arm[s]} {s} at {'λ*' if name == 'weight_decay' else 'λ=0'}"
             for name, arm in x["arms"].items() for s in ("diverged", "collapsed") if arm[s]]
    return f"; {', '.join(parts)}" if parts else ""


def cell_text(name: str, x: Mapping) -> str:
    e = x["test_acc"]
    return (f"{name} {c.ci_pp(e)} (p_improves,Holm {c.pvalue(e['p_improves_holm'])}, "
            f"n={x['n_pairs']}{arm_note(x)})")


def describe(verdict: str, per_arch: Mapping, per_setting: Mapping, wd_star) -> str:
    head = [cell_text(k, x) for k, x in per_arch.items() if x["role"] == "headline"]
    ctrl = [cell_text(k, x) for k, x in per_arch.items() if x["role"] == "control"]
    harm = [k for k, x in per_arch.items() if x["role"] == "headline"
            and x["test_acc"]["changes"] and not x["test_acc"]["improves"]]
    reasons = "; ".join(f"{s}: {v['verdict']} ({v['reason']})" for s, v in per_setting.items())
    gaps = [f"{k} {c.ci_pp(x['gen_gap_acc'])}" for k, x in per_arch.items()
            if x["role"] == "headline"]
    text = (f"WD at λ*={wd_star:g} vs λ=0, test-accuracy HL shift [95% CI]: headline "
            f"{', '.join(head) or 'none'}; positive controls {', '.join(ctrl) or 'none'}; "
            f"headline train−test gap shift {', '.join(gaps) or 'n/a'}")
    if harm:
        text += f"; {', '.join(harm)}: changes, does not improve (harmful, not a refutation)"
    return f"{text}. {reasons}."


def decide(tables: Mapping[str, pd.DataFrame], settings: Mapping | None = None) -> dict:
    tol, alpha = c.tolerances(settings, TOLERANCES), c.alpha(settings)
    wd_star = c.claims_weight_decay(settings)
    common = dict(
        test=TEST, tables=list(TABLES), figure=FIGURE, article=ARTICLE, literature=LITERATURE,
        tolerance={"margin": tol["c6_margin"], "alpha": alpha,
                   "min_paired_seeds": int(tol["c6_min_pairs"]), "weight_decay": wd_star},
        rule=(f"per setting: inconclusive unless WD significantly improves a norm-free "
              f"non-invariant arch (one-sided, Holm p < {alpha:g}); then refuted if it "
              f"improves ln/bn (one-sided, Holm p < {alpha:g}), supported if every ln/bn "
              f"one-sided {1 - alpha:.0%} upper HL bound of the improvement < "
              f"{tol['c6_margin']:g}, else inconclusive; ≥ {int(tol['c6_min_pairs'])} paired "
              f"seeds; diverged/collapsed runs kept as outcomes"))
    cells = wd_effects(tables.get("runs"), settings, alpha)
    if not cells:
        why = "no pre-declared λ (claims.weight_decay)" if wd_star is None else \
            "no arch has grid runs at both λ* and λ = 0"
        return c.claim(ID, TITLE, "inconclusive", n=0, measured={}, key_numbers="no data",
                       summary=f"Nothing to decide: {why}.", **common)
    per_arch, per_setting, verdict = verdicts(cells, tables.get("runs"), tol)
    m = {"per_arch": per_arch, "per_setting": per_setting, "headline_weight_decay": wd_star,
         "positive_control_succeeded": any(v["positive_controls"] for v in per_setting.values())}
    key = ", ".join(f"{k} {c.ci_pp(x['test_acc'])}" for k, x in per_arch.items()
                    if x["role"] in ("headline", "control"))
    return c.claim(ID, TITLE, verdict, n={k: x["n_pairs"] for k, x in per_arch.items()},
                   measured=m, key_numbers=key,
                   summary=describe(verdict, per_arch, per_setting, wd_star), **common)
