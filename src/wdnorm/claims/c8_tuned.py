"""C8, tuned: does the best-tuned weight-decay run beat the best-tuned run without weight
decay -- and does a run without weight decay that follows the tuned run's exact
LR-schedule equivalent (docs/math.md) do as well?

C6 compares both arms at one learning rate, which a reviewer may call unfair to either
arm. Here each arm gets its own best setting. Per (dataset, optimiser, arch), the
candidates are the grid runs at the optimiser's learning rates (``lr`` and
``lr_grid``) × the weight-decay grid; the selection reads the *validation* split only
(mean over seeds of ``val_acc``; a diverged run counts as chance there too), so the
test comparison is not biased by it:

- no-WD arm: the learning rate with the best validation accuracy at λ = 0;
- WD arm: the (learning rate, λ > 0) with the best validation accuracy.

The arms are then compared on test accuracy, paired by seed, exactly as in C6 (signed
rank, Hodges-Lehmann CI, Holm across architectures, the same margin, positive control
and per-setting rule, see :mod:`.c6_effect`). The exact equivalent of the WD arm -- no
weight decay, WD's LR and ε schedule -- is compared with both arms where it was trained
(``equivalents.weight_decays`` must hold the selected λ); it shows whether what the
tuned no-WD baseline lacks is a learning-rate schedule rather than a regulariser.

Without a learning-rate grid (the no-WD arm would not be tuned at all) or without a
validation split (selecting on test would bias the comparison) the claim is
inconclusive and says which is missing."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..config import learning_rates
from . import effects
from . import common as c
from . import stats

ID, TITLE = "C8", "Best-tuned weight decay vs best-tuned no weight decay"
TABLES = ("runs",)
TEST = (stats.TEST_NAME + "; arms selected on the validation split; Hodges-Lehmann CI; "
        "Holm across architectures")
TOLERANCES = {
    "c8_margin": 0.01,     # non-superiority margin on test accuracy (1 pp)
    "c8_min_pairs": 10,    # paired seeds needed for a decisive outcome
}
RULE = ("arms selected by mean validation accuracy (no-WD: best lr at λ = 0; WD: best "
        "(lr, λ > 0)), then C6's rule on their paired test accuracies: inconclusive without "
        "a positive control (tuned WD significantly improves plain or res, one-sided Holm "
        "p < {alpha:g}); refuted if tuned WD improves ln/bn; supported if every ln/bn "
        "one-sided {conf:.0%} upper HL bound < {c8_margin:g}; ≥ {c8_min_pairs:g} paired seeds")
ARTICLE = "S3/S5: without residual connections WD is useless (at any setting)"
LITERATURE = ("Lewkowycz & Gur-Ari 2020, Andriushchenko et al. 2024: compare WD with the "
              "best learning rate without it; WD's benefit on normalised nets is an LR "
              "schedule")


def optimiser_lrs(settings: Mapping | None, optimiser) -> list[float]:
    opt = ((settings or {}).get("optimisers") or {}).get(str(optimiser)) or {}
    return learning_rates(opt) if "lr" in opt else []


def candidates(g: pd.DataFrame, lrs: list[float], weight_decays: list[float]) -> pd.DataFrame:
    """Grid runs on the (lr × λ) product grid, with their mean validation accuracy."""
    grid = c.of_kind(g, "grid")
    on_lr = np.zeros(len(grid), dtype=bool)
    for lr in lrs:
        on_lr |= c.close(grid["lr"], lr).to_numpy()
    on_wd = np.zeros(len(grid), dtype=bool)
    for wd in weight_decays:
        on_wd |= c.close(grid["weight_decay"], wd).to_numpy()
    return grid[on_lr & on_wd]


def selection(cands: pd.DataFrame) -> pd.DataFrame:
    """Mean validation accuracy per (lr, λ), ties broken towards the smaller lr and λ."""
    table = (cands.assign(lr=cands["lr"].astype(float),
                          weight_decay=cands["weight_decay"].astype(float),
                          val_acc=cands["val_acc"].astype(float))
             .groupby(["lr", "weight_decay"], as_index=False)
             .agg(val_acc_mean=("val_acc", "mean"), seeds=("seed", "nunique")))
    return table.sort_values(["val_acc_mean", "lr", "weight_decay"],
                             ascending=[False, True, True], ignore_index=True)


def pick(table: pd.DataFrame, with_wd: bool) -> dict | None:
    rows = table[(table["weight_decay"] > 0) == with_wd]
    if not len(rows) or not np.isfinite(rows["val_acc_mean"].iloc[0]):
        return None
    best = rows.iloc[0]
    return {"lr": float(best["lr"]), "weight_decay": float(best["weight_decay"]),
            "val_acc_mean": float(best["val_acc_mean"])}


def runs_at(g: pd.DataFrame, kind: str, point: Mapping) -> pd.DataFrame:
    rows = c.of_kind(g, kind)
    return rows[c.close(rows["lr"], point["lr"])
                & c.close(rows["weight_decay"], point["weight_decay"])]


def cell(key: Mapping, g: pd.DataFrame, settings, alpha: float) -> dict | None:
    lrs = optimiser_lrs(settings, key.get("optimiser"))
    wds = [float(w) for w in (settings or {}).get("weight_decays") or []]
    cands = candidates(g, lrs, wds)
    if not len(cands) or "val_acc" not in cands.columns:
        return None
    table = selection(cands)
    no_wd, wd = pick(table, False), pick(table, True)
    if no_wd is None or wd is None:
        return None
    no_wd["edges"] = grid_edges(no_wd, lrs, [])
    wd["edges"] = grid_edges(wd, lrs, [w for w in wds if w > 0])
    treated, base = runs_at(g, "grid", wd), runs_at(g, "grid", no_wd)
    exact = runs_at(g, "exact", wd)
    out = {"key": dict(key), "arch": key.get("arch"), "role": effects.role(key.get("arch")),
           "selected": {"weight_decay": wd, "no_weight_decay": no_wd},
           "candidates": table.to_dict(orient="records"),
           "arms": {"weight_decay": dict(c.status_counts(treated),
                                         test_acc_mean=c.fnum(treated["test_acc"].mean())),
                    "no_weight_decay": dict(c.status_counts(base),
                                            test_acc_mean=c.fnum(base["test_acc"].mean()))}}
    for metric, direction in effects.IMPROVES.items():
        d, seeds = c.paired(treated, base, metric)
        out[metric] = effects.effect(d, alpha, direction)
        out["n_pairs"] = max(out.get("n_pairs", 0), len(seeds))
    if len(exact):
        out["exact_equivalent"] = {
            "runs": int(len(exact)),
            "minus_no_weight_decay": stats.paired_effect(
                c.paired(exact, base, "test_acc")[0], alpha),
            "minus_weight_decay": stats.paired_effect(
                c.paired(exact, treated, "test_acc")[0], alpha)}
    return out


def missing_design(runs: pd.DataFrame, settings) -> str | None:
    """Why no arm can be tuned here, or None."""
    if not any(len(optimiser_lrs(settings, o)) > 1
               for o in ((settings or {}).get("optimisers") or {})):
        return ("no learning-rate grid (optimisers.<name>.lr_grid is empty), so the no-WD "
                "arm cannot be tuned")
    if "val_acc" not in runs.columns or not np.isfinite(runs["val_acc"].astype(float)).any():
        return "no validation split (n_validation = 0): selecting on the test split would bias it"
    return None


def tuned_effects(runs: pd.DataFrame, settings, alpha: float) -> list[dict]:
    cells = [x for key, g in c.groups(runs) if (x := cell(key, g, settings, alpha))]
    effects.apply_holm(cells, alpha)
    return cells


def point(p: Mapping) -> str:
    return f"η={p['lr']:g}, λ={p['weight_decay']:g}"


def grid_edges(selected: Mapping, lrs: list[float], wds: list[float]) -> list[str]:
    """Where a selection sits on the edge of the searched grid ("lowest lr", "highest
    λ"...): the best value may lie beyond it, so the tuning may be incomplete there."""
    out = []
    for name, value, grid in (("lr", selected["lr"], lrs), ("λ", selected["weight_decay"], wds)):
        if len(grid) < 2:
            continue
        if value <= min(grid) * (1 + 1e-9):
            out.append(f"lowest {name}")
        elif value >= max(grid) * (1 - 1e-9):
            out.append(f"highest {name}")
    return out


def edge_note(sel: Mapping) -> str:
    edges = [f"{arm} at the {', '.join(sel[key]['edges'])}" for arm, key in
             (("WD", "weight_decay"), ("no-WD", "no_weight_decay")) if sel[key]["edges"]]
    return f"; {'; '.join(edges)} of the grid: tuning may be incomplete" if edges else ""


def cell_text(name: str, x: Mapping) -> str:
    sel = x["selected"]
    text = (f"{name} {c.ci_pp(x['test_acc'])} (WD {point(sel['weight_decay'])} vs no-WD "
            f"η={sel['no_weight_decay']['lr']:g}; p_improves,Holm "
            f"{c.pvalue(x['test_acc']['p_improves_holm'])}, n={x['n_pairs']}{edge_note(sel)})")
    eq = x.get("exact_equivalent")
    if eq:
        text += (f"; its exact equivalent vs tuned no-WD "
                 f"{c.ci_pp(eq['minus_no_weight_decay'])}")
    return text


def decide(tables: Mapping[str, pd.DataFrame], settings: Mapping | None = None) -> c.Decision:
    tol, alpha = c.tolerances(settings, TOLERANCES), c.alpha(settings)
    runs = tables.get("runs")
    why = "no runs" if c.empty(runs) else missing_design(runs, settings)
    cells = [] if why else tuned_effects(runs, settings, alpha)
    if not cells:
        why = why or "no arch has runs at both a selected WD and a selected no-WD setting"
        return c.Decision("inconclusive", f"Nothing to decide: {why}.", "not tuned", 0,
                          {"reason": why})
    per_arch, per_setting, verdict = effects.verdicts(cells, runs, tol["c8_margin"],
                                                      tol["c8_min_pairs"])
    shown = {k: x for k, x in c.Labeller(runs).display(per_arch).items()
             if x["role"] in ("headline", "control")}
    reasons = "; ".join(f"{s}: {v['verdict']} ({v['reason']})" for s, v in per_setting.items())
    summary = ("Best-tuned WD minus best-tuned no-WD, test-accuracy HL shift [95% CI]: "
               + "; ".join(cell_text(k, x) for k, x in shown.items()) + f". {reasons}.")
    # where a selection sits on the grid's edge, per arm (the answer weighs them: an
    # edge of the WD arm can only understate WD, one of the no-WD arm can overstate it)
    edged = {arm: [k for k, x in c.Labeller(runs).display(per_arch).items()
                   if x["selected"][arm]["edges"]]
             for arm in ("weight_decay", "no_weight_decay")}
    return c.Decision(verdict, summary,
                      ", ".join(f"{k} {c.ci_pp(x['test_acc'])}" for k, x in shown.items()),
                      {k: x["n_pairs"] for k, x in per_arch.items()},
                      {"per_arch": per_arch, "per_setting": per_setting,
                       "edge_selections": edged})
