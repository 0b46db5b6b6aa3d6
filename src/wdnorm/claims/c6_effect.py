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
from . import effects, stats

ID, TITLE = "C6", "Weight decay's effect on accuracy"
TABLES = ("runs",)
TEST = stats.TEST_NAME + "; Hodges-Lehmann CI; Holm across architectures"
TOLERANCES = {
    "c6_margin": 0.01,     # non-superiority margin on test accuracy (1 pp)
    "c6_min_pairs": 10,    # paired seeds needed for a decisive outcome
}
RULE = ("per setting: inconclusive unless WD significantly improves a norm-free "
        "non-invariant arch (one-sided, Holm p < {alpha:g}); then refuted if it improves "
        "ln/bn (one-sided, Holm p < {alpha:g}), supported if every ln/bn one-sided "
        "{conf:.0%} upper HL bound of the improvement < {c6_margin:g}, else inconclusive; "
        "≥ {c6_min_pairs:g} paired seeds; diverged/collapsed runs kept as outcomes")
ARTICLE = ("S3/S5: without residual connections WD is useless as a regulariser (implicit "
           "regularisation of the optimiser may still help)")
LITERATURE = ("van Laarhoven 2017, Hoffer et al. 2018, Andriushchenko et al. 2024: WD still "
              "changes accuracy, through the effective LR η/‖w‖², not as a regulariser")


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


def decide(tables: Mapping[str, pd.DataFrame], settings: Mapping | None = None) -> c.Decision:
    tol, alpha = c.tolerances(settings, TOLERANCES), c.alpha(settings)
    wd_star = c.claims_weight_decay(settings)
    cells = effects.wd_effects(tables.get("runs"), settings, alpha)
    if not cells:
        why = "no pre-declared λ (claims.weight_decay)" if wd_star is None else \
            "no arch has grid runs at both λ* and λ = 0"
        return c.Decision("inconclusive", f"Nothing to decide: {why}.")
    per_arch, per_setting, verdict = effects.verdicts(cells, tables.get("runs"),
                                                      tol["c6_margin"], tol["c6_min_pairs"])
    m = {"per_arch": per_arch, "per_setting": per_setting, "headline_weight_decay": wd_star,
         "positive_control_succeeded": any(v["positive_controls"] for v in per_setting.values())}
    key = ", ".join(f"{k} {c.ci_pp(x['test_acc'])}" for k, x in per_arch.items()
                    if x["role"] in ("headline", "control"))
    return c.Decision(verdict, describe(verdict, per_arch, per_setting, wd_star), key,
                      {k: x["n_pairs"] for k, x in per_arch.items()}, m)
