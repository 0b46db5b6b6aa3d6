"""Verdicts follow the data: synthetic tables shaped like the pipeline's (one dataset,
SGD with momentum, 12 seeds) where the predicted effect is present give "supported";
planting the opposite flips the verdict. The paired statistics are checked against
brute force and hand-computed cases."""

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest

from wdnorm import claims, fileio
from wdnorm import config as config_schema
from wdnorm.claims import stats

SEEDS = list(range(12))
WD_STAR = 0.01
GRID = [(0.05, 0.0), (0.05, WD_STAR), (0.05, 0.1)]
PAIRS = [(0.1, 0.02), (0.05, 0.04), (0.025, 0.08)]
ARCHS = ("plain", "ln", "bn", "res")
SETTINGS = {"optimisers": {"sgdm": {"algorithm": "sgd", "lr": 0.05, "momentum": 0.9}},
            "matched_pairs": [list(p) for p in PAIRS],
            "claims": {"weight_decay": WD_STAR, "alpha": 0.05,
                       "stability": {"resamples": 8}}, "training": {}}


def by_arch(groups: dict) -> dict:
    """A claim's per-group record keyed by architecture (claims.json names every group
    by its whole key, dataset/optimiser/arch)."""
    return {k.rsplit("/", 1)[-1]: v for k, v in groups.items()}


def names(keys) -> list[str]:
    return [k.rsplit("/", 1)[-1] for k in keys]


def decide(cid, settings=SETTINGS, **tables):
    return claims.decide(cid, tables, settings)


# --------------------------------------------------------------------------- tables

def runs_df(effect=None, pair_shift=None, schedule_shift=None, seeds=SEEDS):
    """runs.csv: test accuracy 0.80 + a per-seed level (same init, same batches) + ±0.2 pp
    run noise. ``effect`` adds to the grid runs at λ* (default: WD helps the norm-free
    nets by 3 pp: a working positive control), ``pair_shift`` to the first matched pair,
    ``schedule_shift`` to the schedule-only runs (which otherwise follow the WD run).
    bn's λ* seed 11 diverged (scored 1/n_classes), plain's λ = 0 seed 2 collapsed."""
    effect = {"plain": 0.03, "res": 0.03, **(effect or {})}
    pair_shift, schedule_shift = pair_shift or {}, schedule_shift or {}
    rng = np.random.default_rng(7)
    level = rng.normal(0, 0.01, len(SEEDS))
    rows = []
    for arch in ARCHS:
        for s in seeds:
            def add(kind, lr, wd, acc, status="ok", track=np.nan):
                suffix = "" if kind == "grid" else f"_{kind}"
                ref = None if kind == "grid" else f"lr{lr:g}_wd{wd:g}_s{s}"
                rows.append(dict(dataset="d", optimiser="sgdm", arch=arch, kind=kind,
                                 run_id=f"lr{lr:g}_wd{wd:g}_s{s}{suffix}", reference=ref,
                                 lr=lr, weight_decay=wd, seed=s, algorithm="sgd",
                                 momentum=0.9, status=status, steps=1000, n_classes=10,
                                 test_acc=acc, train_acc=1.0, gen_gap_acc=1.0 - acc,
                                 is_matched_pair=(lr, wd) in PAIRS, loss_track_steps=track))
            for lr, wd in GRID + PAIRS:
                acc = 0.80 + level[s] + rng.normal(0, 0.002)
                acc += effect.get(arch, 0.0) if wd == WD_STAR else 0.0
                acc += pair_shift.get(arch, 0.0) if (lr, wd) == PAIRS[0] else 0.0
                status = ("diverged" if (arch, wd, s) == ("bn", WD_STAR, 11) else
                          "collapsed" if (arch, wd, s) == ("plain", 0.0, 2) else "ok")
                add("grid", lr, wd, 0.1 if status == "diverged" else acc, status)
                if wd == WD_STAR:
                    star = rows[-1]["test_acc"]
            invariant = arch in ("ln", "bn")
            add("schedule", 0.05, WD_STAR,
                star + schedule_shift.get(arch, 0.0) + rng.normal(0, 0.002))
            add("exact", 0.05, WD_STAR, star + rng.normal(0, 0.002),
                track=1000 if invariant else 3)
            add("mimic", 0.05, WD_STAR, 0.1 if s == 3 else star + rng.normal(0, 0.002),
                status="diverged" if s == 3 else "ok")
    return pd.DataFrame(rows)


def probe_df(ln_tracks=True, plain_tracks=False):
    """equivalence_probe.csv: the float64 exact equivalent tracks the invariant archs
    (loss difference 1e-13 over all 400 steps), not the norm-free ones."""
    rows = []
    for arch in ARCHS:
        invariant = arch in ("ln", "bn")
        tracks = {"ln": ln_tracks, "plain": plain_tracks}.get(arch, invariant)
        rows.append(dict(dataset="d", arch=arch, variant="exact", invariant=invariant,
                         dtype="float64", steps=400, tol=1e-8,
                         max_rel_loss_diff=1e-13 if tracks else 0.3,
                         steps_within_tol=400 if tracks else 2, tracks=tracks))
        rows.append(dict(rows[-1], variant="schedule", tracks=False, steps_within_tol=40,
                         max_rel_loss_diff=1e-3))
    return pd.DataFrame(rows)


def dynamics_df(ratio=1.0, reached=True):
    """dynamics.csv (grid runs, per layer): ln's hidden layers are predicted invariant;
    equilibrium is reached at λ = 0.1 only (at λ* the run is too short)."""
    rows = []
    rng = np.random.default_rng(1)
    for arch in ("ln", "plain"):
        for s in SEEDS[:3]:
            for lr, wd in GRID:
                for i, layer in enumerate(("hidden0", "hidden1", "head")):
                    inv = arch == "ln" and layer != "head"
                    r = ratio * (1 + 0.02 * rng.standard_normal()) if inv else 0.6
                    at_eq = bool(reached and wd == 0.1)
                    rows.append(dict(dataset="d", optimiser="sgdm", arch=arch, kind="grid",
                                     run_id=f"lr{lr:g}_wd{wd:g}_s{s}", lr=lr, weight_decay=wd,
                                     seed=s, status="ok", layer=layer, layer_index=i,
                                     is_head=layer == "head", predicted_invariant=inv,
                                     decayed=layer != "head", steps=1500,
                                     window_steps=500 if at_eq else 0,
                                     equilibrium_reached=at_eq,
                                     angle_ratio=r if wd and layer != "head" else np.nan))
    return pd.DataFrame(rows)


def symmetry_df():
    rows = []
    for arch, pred, rel in (("ln", True, 1e-16), ("plain", False, 0.5)):
        for layer, index in (("hidden0", 0), ("hidden1", 1), ("joint", -1)):
            for scale in (0.01, 10.0):
                rows.append(dict(dataset="d", arch=arch, layer=layer, layer_index=index,
                                 transform="joint" if index < 0 else "layer", scale=scale,
                                 mode="eval", rel_change=rel, predicted_invariant=pred,
                                 rel_change_model_eps=1e-3 if pred else rel))
    return pd.DataFrame(rows)


def floor_df():
    return pd.DataFrame([dict(dataset="d", arch="ln", layer="hidden0", dtype=dt, floor=0.7)
                         for dt in ("float32", "float64")])


def penalty_df(practical=0.5):
    rows = []
    for s in SEEDS[:3]:
        base = dict(dataset="d", optimiser="sgdm", run_id=f"r{s}", weight_decay=0.01, seed=s,
                    status="ok", penalty_before=10.0, total_penalty_before=50.0)
        rows.append(dict(base, arch="ln", method="invariant_shrink", group_kind="layer",
                         ratio=practical, scale=math.sqrt(practical), eps_limited=True,
                         total_ratio=(40 + 10 * practical) / 50, ratio_eps0=1e-24,
                         scale_eps0=1e-12, group_ratio_eps0=1e-24, rel_loss_change_eps0=1e-6))
        rows.append(dict(base, arch="plain", method="relu_rebalance", ratio=0.6, scale=np.nan,
                         eps_limited=False, total_ratio=0.8, ratio_eps0=0.6))
    rows.append(dict(rows[0], run_id="bad", seed=9, status="diverged", ratio_eps0=np.nan,
                     ratio=np.nan))
    return pd.DataFrame(rows)


def gi_df():
    rows = []
    for arch, layers in (("ln", [("hidden0", True, False), ("hidden1", True, False),
                                 ("head", False, True), ("joint", True, False)]),
                         ("plain", [("hidden0", False, False), ("head", False, True)])):
        for layer, pred, head in layers:
            rows.append(dict(dataset="d", arch=arch, layer=layer, is_head=head,
                             predicted_invariant=pred, steps=300, status="ok",
                             cos_abs_max=1e-8 if pred else 0.7,
                             identity_rel_err_total=1e-6 if pred else 150.0, norm_growth=1.02,
                             cos_abs_max_model_eps=5e-5 if pred else 0.7,
                             identity_rel_err_total_model_eps=0.015 if pred else 150.0))
    return pd.DataFrame(rows)


def good_tables():
    return {"symmetry": symmetry_df(), "epsilon_floor": floor_df(), "penalty": penalty_df(),
            "gradient_identity": gi_df(), "dynamics": dynamics_df(), "runs": runs_df(),
            "equivalence_probe": probe_df()}


# --------------------------------------------------------------------------- stats

def test_holm_on_a_hand_computed_family():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, (0.04 -> 0.06)
    adj = stats.holm([0.01, 0.04, 0.03, 0.005, float("nan")])
    assert adj[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert math.isnan(adj[4])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])      # capped at 1


def brute_null(n):
    """P(T+ = t) by enumerating the 2^n sign patterns of ranks 1..n."""
    sums = [sum(r for r, plus in zip(range(1, n + 1), signs) if plus)
            for signs in itertools.product((0, 1), repeat=n)]
    return np.bincount(sums) / 2 ** n


def test_hodges_lehmann_and_its_ci_against_brute_force_inversion():
    d = np.random.default_rng(3).normal(0.01, 0.02, 9)
    est, lo, hi = stats.hodges_lehmann(d, 0.95)
    walsh = [(a + b) / 2 for a, b in itertools.combinations_with_replacement(d, 2)]
    assert est == pytest.approx(np.median(walsh))
    pmf = brute_null(9)
    cdf, sf = np.cumsum(pmf), np.cumsum(pmf[::-1])[::-1]

    def accepted(theta):  # two-sided exact signed-rank test of d − θ at 5%
        x = d - theta
        ranks = np.argsort(np.argsort(np.abs(x))) + 1
        t = int(ranks[x > 0].sum())
        return cdf[t] > 0.025 and sf[t] > 0.025
    w = np.sort(walsh)
    for theta in np.concatenate([(w[1:] + w[:-1]) / 2, [w[0] - 1, w[-1] + 1]]):
        assert accepted(theta) == (lo < theta < hi), theta
    assert stats.hodges_lehmann(d[:5], 0.95)[1:] == (-math.inf, math.inf)  # n too small


def test_signed_rank_null_matches_enumeration():
    assert np.allclose(stats.signed_rank_cdf(10), np.cumsum(brute_null(10)))


def test_exact_signed_rank_p_is_scipys_exact_wilcoxon():
    """With ties, zeros and either sign, all three alternatives: the in-house p-value is
    SciPy's exact one (the stability bootstrap relies on the in-house one for speed)."""
    from scipy.stats import wilcoxon

    rng = np.random.default_rng(3)
    cases = [rng.normal(0.01, 0.02, 10), np.round(rng.normal(0, 0.02, 12), 2),
             np.array([0.0, 0.0, 0.01, -0.01, 0.02, 0.02, 0.03, -0.04, 0.05, 0.01]),
             np.full(10, -0.02), rng.normal(0, 1, 7)]
    for d in cases:
        for alternative in ("two-sided", "greater", "less"):
            ref = wilcoxon(d, zero_method="zsplit", method="exact",
                           alternative=alternative).pvalue
            assert stats.exact_signed_rank_p(d, alternative) == pytest.approx(ref, rel=1e-12)


def test_tost_on_known_cases():
    inside = np.linspace(-0.004, 0.005, 10)
    assert stats.tost(inside, 0.02)["p"] == pytest.approx(0.5 ** 10)
    assert stats.tost(np.full(10, 0.03), 0.02)["p"] == pytest.approx(1.0)
    # one difference beyond +margin among ten: the upper test's T+ is rank 10
    d = np.array([0.001] * 9 + [0.05])
    count = sum(1 for k in range(11) for sub in itertools.combinations(range(1, 11), k)
                if sum(sub) <= 10)
    assert stats.tost(d, 0.02)["p_upper"] == pytest.approx(count / 1024)


def test_paired_effect_fields():
    d = np.array([0.02, 0.03, 0.01, 0.04, 0.02, 0.05, 0.03, 0.01, 0.02, 0.03])
    e = stats.paired_effect(d, 0.05)
    assert e["rank_biserial"] == 1.0 and e["p_greater"] == pytest.approx(0.5 ** 10)
    assert e["ci_low"] > 0 and e["lower_bound_one_sided"] >= e["ci_low"]
    assert e["mean"] == pytest.approx(0.026)
    assert stats.paired_effect(-d, 0.05)["rank_biserial"] == -1.0


# --------------------------------------------------------------------------- C1-C3

def test_c1_both_ways():
    c = decide("C1", symmetry=symmetry_df(), epsilon_floor=floor_df())
    assert c["verdict"] == "supported"
    assert by_arch(c["measured"]["per_arch"])["ln"]["predicted_invariant"] == 6
    assert c["measured"]["epsilon_floor_float32"]["ln"]["hidden0"] == 0.7
    bad = symmetry_df()
    bad.loc[0, "rel_change"] = 0.3              # an ln layer that is not invariant after all
    c = decide("C1", symmetry=bad)
    assert c["verdict"] == "refuted" and c["measured"]["mismatched_cells"][0]["arch"] == "ln"
    grey = symmetry_df()
    grey.loc[grey["arch"] == "plain", "rel_change"] = 1e-3
    assert decide("C1", symmetry=grey)["verdict"] == "inconclusive"
    assert decide("C1")["verdict"] == "inconclusive"


def test_c2_both_ways_and_honest_about_the_eps_floor():
    c = decide("C2", penalty=penalty_df(practical=0.5))
    assert c["verdict"] == "supported" and "far from 0" in c["summary"]
    assert by_arch(c["measured"]["invariant_archs"])["ln"]["runs"] == 3      # the diverged run is out
    assert "far from 0" not in decide("C2", penalty=penalty_df(practical=1e-6))["summary"]
    p = penalty_df()
    p.loc[p["arch"] == "ln", "group_ratio_eps0"] = 0.5
    assert decide("C2", penalty=p)["verdict"] == "refuted"
    p = penalty_df()
    p.loc[p["arch"] == "plain", "total_ratio"] = 1e-6
    c = decide("C2", penalty=p)
    assert c["verdict"] == "refuted" and "plain" in c["summary"]
    assert decide("C2", penalty=penalty_df().query("arch == 'plain'"))["verdict"] == "inconclusive"


def test_c3_both_ways():
    c = decide("C3", gradient_identity=gi_df())
    assert c["verdict"] == "supported"
    assert c["measured"]["contrast_heads"]["plain"]["cos_abs_max"] == 0.7
    bad = gi_df()
    bad.loc[(bad["arch"] == "ln") & (bad["layer"] == "hidden1"), "cos_abs_max"] = 0.1
    c = decide("C3", gradient_identity=bad)
    assert c["verdict"] == "refuted" and c["measured"]["failing"][0]["layer"] == "hidden1"
    flat = gi_df()
    flat.loc[~flat["predicted_invariant"], "cos_abs_max"] = 1e-4   # no contrast anywhere
    assert decide("C3", gradient_identity=flat)["verdict"] == "inconclusive"


# --------------------------------------------------------------------------- C4

def test_c4_both_ways_and_equilibrium_reported_per_lambda():
    c = decide("C4", dynamics=dynamics_df(ratio=1.0))
    assert c["verdict"] == "supported" and list(by_arch(c["measured"]["per_arch"])) == ["ln"]
    assert by_arch(c["measured"]["per_arch"])["ln"]["rows"] == 6            # 3 runs x 2 layers at λ=0.1
    eq = by_arch(c["measured"]["equilibrium_by_weight_decay"])["ln"]
    assert (eq["0.01"]["runs_reached"], eq["0.1"]["runs_reached"]) == (0, 3)
    assert "λ = 0.01, runs at equilibrium: ln 0/3" in c["summary"]
    assert decide("C4", dynamics=dynamics_df(ratio=1.5))["verdict"] == "refuted"
    assert decide("C4", dynamics=dynamics_df(ratio=0.8))["verdict"] == "refuted"
    assert decide("C4", dynamics=dynamics_df(reached=False))["verdict"] == "inconclusive"
    loose = dict(SETTINGS, tolerances={"c4_rel": 0.6})
    assert decide("C4", loose, dynamics=dynamics_df(ratio=1.5))["verdict"] == "supported"


# --------------------------------------------------------------------------- C5

def test_c5_equivalence_both_ways():
    c = decide("C5", runs=runs_df())
    assert c["verdict"] == "supported"
    ln = by_arch(c["measured"]["per_arch"])["ln"]
    assert ln["equivalent"] and len(ln["comparisons"]) == 2 and ln["comparisons"][0]["n"] == 12
    c = decide("C5", runs=runs_df(pair_shift={"plain": 0.05}))
    assert c["verdict"] == "supported"                               # the contrast differs
    assert not by_arch(c["measured"]["per_arch"])["plain"]["equivalent"]
    c = decide("C5", runs=runs_df(pair_shift={"ln": 0.05}))
    assert c["verdict"] == "refuted" and by_arch(c["measured"]["per_arch"])["ln"]["different"]
    small = decide("C5", runs=runs_df(seeds=SEEDS[:4]))
    assert small["verdict"] == "inconclusive" and "fewer than 5" in small["summary"]
    no_inv = decide("C5", runs=runs_df().query("arch in ['plain', 'res']"))
    assert no_inv["verdict"] == "inconclusive"


# --------------------------------------------------------------------------- C6

def test_c6_supported_with_a_positive_control_and_no_ln_bn_improvement():
    c = decide("C6", runs=runs_df())
    assert c["verdict"] == "supported"
    m = c["measured"]
    assert m["per_setting"]["d/sgdm"]["positive_controls"] == ["plain", "res"]
    plain, bn = by_arch(m["per_arch"])["plain"], by_arch(m["per_arch"])["bn"]
    acc = plain["test_acc"]
    assert acc["improves"] and acc["hl"] == pytest.approx(0.03, abs=0.005)
    # Holm across the four architectures: plain and res tie at the smallest raw p
    assert acc["p_improves_holm"] == pytest.approx(4 * acc["p_improves"])
    assert plain["gen_gap_acc"]["improves"]                          # the gap shrinks
    assert bn["arms"]["weight_decay"]["diverged"] == 1 and bn["n_pairs"] == 12  # kept
    assert plain["arms"]["no_weight_decay"]["collapsed"] == 1
    assert bn["test_acc"]["upper_bound_one_sided"] < 0.01


def test_c6_refuted_when_wd_improves_ln():
    c = decide("C6", runs=runs_df(effect={"ln": 0.03}))
    assert c["verdict"] == "refuted"
    assert c["measured"]["per_setting"]["d/sgdm"]["headline_improved"] == ["ln"]


def test_c6_inconclusive_without_a_positive_control_or_seeds():
    c = decide("C6", runs=runs_df(effect={"plain": 0.0, "res": 0.0}))
    assert c["verdict"] == "inconclusive" and "no positive control" in c["summary"]
    assert not c["measured"]["positive_control_succeeded"]
    assert decide("C6", runs=runs_df(seeds=SEEDS[:6]))["verdict"] == "inconclusive"
    # an effect inside the noise of 1 pp cannot be shown below the margin
    wide = decide("C6", dict(SETTINGS, tolerances={"c6_margin": 0.0001}), runs=runs_df())
    assert wide["verdict"] == "inconclusive"


def test_c6_harm_changes_but_does_not_refute():
    c = decide("C6", runs=runs_df(effect={"ln": -0.03}))
    ln = by_arch(c["measured"]["per_arch"])["ln"]["test_acc"]
    assert ln["changes"] and not ln["improves"]
    assert c["verdict"] == "supported" and "ln: changes, does not improve" in c["summary"]


# --------------------------------------------------------------------------- C7

def test_c7_supported_when_exact_tracks_and_schedule_is_equivalent():
    c = decide("C7", runs=runs_df(effect={"ln": 0.03}), equivalence_probe=probe_df())
    assert c["verdict"] == "supported"
    m = c["measured"]
    assert m["probe"]["holds"]
    ln = by_arch(m["slabs"])["ln"]
    assert ln["schedule_minus_wd"]["equivalent"] and ln["schedule_minus_wd"]["n"] == 12
    assert ln["share_explained"]["share"] == pytest.approx(1.0, abs=0.1)   # WD acts via LR
    assert ln["share_explained"]["ci_low"] < 1.0 < ln["share_explained"]["ci_high"]
    assert by_arch(m["slabs"])["bn"]["share_explained"]["share"] is None     # no WD effect to explain
    assert ln["mimic_minus_wd"]["divergence_rate"] == pytest.approx(1 / 12)
    assert by_arch(m["float32_tracking"])["ln"]["exact"]["loss_track_steps_median"] == 1000


def test_c7_refuted_by_the_probe_either_way_or_by_the_schedule():
    runs = runs_df()
    c = decide("C7", runs=runs, equivalence_probe=probe_df(ln_tracks=False))
    assert c["verdict"] == "refuted" and names(c["measured"]["probe"]["invariant_failing"]) == ["ln"]
    c = decide("C7", runs=runs, equivalence_probe=probe_df(plain_tracks=True))
    assert c["verdict"] == "refuted" and names(c["measured"]["probe"]["contrast_tracking"]) == ["plain"]
    c = decide("C7", runs=runs_df(schedule_shift={"ln": -0.05}), equivalence_probe=probe_df())
    assert c["verdict"] == "refuted"
    assert by_arch(c["measured"]["slabs"])["ln"]["schedule_minus_wd"]["different"]
    assert decide("C7", runs=runs)["verdict"] == "inconclusive"     # no probe


def test_c7_not_applicable_without_sgd():
    adam = dict(SETTINGS, optimisers={"sgdm": {"algorithm": "adamw", "lr": 0.05}})
    c = decide("C7", adam, runs=runs_df(), equivalence_probe=probe_df())
    assert c["verdict"] == "inconclusive" and c["measured"]["not_applicable"]
    assert "no exact equivalent exists for Adam/AdamW" in c["summary"]
    assert c["measured"]["slabs"] == {}


# --------------------------------------------------------------------------- all

# --------------------------------------------------------------------------- C8

TUNED_SETTINGS = dict(SETTINGS, weight_decays=[0.0, WD_STAR, 0.1], optimisers={
    "sgdm": {"algorithm": "sgd", "lr": 0.05, "momentum": 0.9, "lr_grid": [0.1]}})


def tuned_runs(effect=None, val=True):
    """Grid runs at lr ∈ {0.05, 0.1} × λ ∈ {0, λ*, 0.1}. Validation accuracy favours lr
    0.1 at λ = 0 and (0.05, λ*) with weight decay; test accuracy adds ``effect`` (default:
    +3 pp on plain/res) to the selected WD arm only. The trap: (0.1, 0.1) has the best
    *test* accuracy but a poor validation score, so selecting on test would pick it.
    ln/bn have the exact equivalent of (0.05, λ*), which follows its WD run."""
    effect = {"plain": 0.03, "res": 0.03, **(effect or {})}
    rng = np.random.default_rng(3)
    level = rng.normal(0, 0.01, len(SEEDS))
    val_of = {(0.05, 0.0): 0.70, (0.1, 0.0): 0.75, (0.05, WD_STAR): 0.78,
              (0.1, WD_STAR): 0.72, (0.05, 0.1): 0.60, (0.1, 0.1): 0.50}
    rows = []
    for arch in ARCHS:
        for s in SEEDS:
            for (lr, wd), v in val_of.items():
                test = 0.80 + level[s] + rng.normal(0, 0.002)
                test += effect.get(arch, 0.0) if (lr, wd) == (0.05, WD_STAR) else 0.0
                test += 0.10 if (lr, wd) == (0.1, 0.1) else 0.0
                rows.append(dict(dataset="d", optimiser="sgdm", arch=arch, kind="grid",
                                 run_id=f"lr{lr:g}_wd{wd:g}_s{s}", lr=lr, weight_decay=wd,
                                 seed=s, status="ok", test_acc=test, train_acc=1.0,
                                 gen_gap_acc=1.0 - test,
                                 val_acc=v + rng.normal(0, 0.002) if val else np.nan))
                if arch in ("ln", "bn") and (lr, wd) == (0.05, WD_STAR):
                    rows.append(dict(rows[-1], kind="exact", run_id=rows[-1]["run_id"] + "_exact",
                                     test_acc=test + rng.normal(0, 0.002)))
    return pd.DataFrame(rows)


def test_c8_selects_on_validation_and_compares_on_test():
    c = decide("C8", TUNED_SETTINGS, runs=tuned_runs())
    assert c["verdict"] == "supported"
    ln = by_arch(c["measured"]["per_arch"])["ln"]
    assert ln["selected"]["no_weight_decay"]["lr"] == 0.1      # not the test-best (0.1, 0.1)
    assert (ln["selected"]["weight_decay"]["lr"], ln["selected"]["weight_decay"]["weight_decay"]) \
        == (0.05, WD_STAR)
    assert ln["n_pairs"] == 12 and ln["test_acc"]["upper_bound_one_sided"] < 0.01
    assert abs(ln["exact_equivalent"]["minus_weight_decay"]["hl"]) < 0.003
    assert c["measured"]["per_setting"]["d/sgdm"]["positive_controls"] == ["plain", "res"]
    assert decide("C8", TUNED_SETTINGS, runs=tuned_runs({"ln": 0.03}))["verdict"] == "refuted"


def test_c8_inconclusive_without_a_learning_rate_grid_or_a_validation_split():
    no_grid = decide("C8", dict(TUNED_SETTINGS, optimisers=SETTINGS["optimisers"]),
                     runs=tuned_runs())
    assert no_grid["verdict"] == "inconclusive" and "lr_grid" in no_grid["summary"]
    no_val = decide("C8", TUNED_SETTINGS, runs=tuned_runs(val=False))
    assert no_val["verdict"] == "inconclusive" and "validation" in no_val["summary"]


def test_registry():
    assert list(claims.REGISTRY) == [f"C{i}" for i in range(1, 10)]
    used = {t for claim in claims.REGISTRY.values() for t in claim.tables}
    assert set(claims.TABLE_NAMES) == used and "equivalence_probe" in used
    assert "penalty_curve" not in used                                # a figure's table only


def test_tolerance_overrides_from_the_config():
    config = config_schema.with_defaults(dict(
        SETTINGS, claims={"weight_decay": WD_STAR, "alpha": 0.05, "tolerances": {"c4_rel": 0.6},
                          "stability": {"resamples": 8}},
        seeds=SEEDS, weight_decays=[0.0, WD_STAR], datasets=["digits"]))
    settings = claims.settings_from_config(config)
    assert set(settings) == {"optimisers", "weight_decays", "matched_pairs", "claims", "training",
                             "protocols"}
    assert decide("C4", settings, dynamics=dynamics_df(ratio=1.5))["verdict"] == "supported"
    out = claims.decide_all({"dynamics": dynamics_df(ratio=1.5)}, settings)
    assert out["tolerances"]["c4_rel"] == 0.6 and out["verdicts"]["C4"] == "supported"


def test_stability_does_not_depend_on_how_many_processes_share_the_bootstrap():
    """The bootstrap is split into slices of resamples across worker processes; the
    draws are made up front, so the records (agreement, verdict shares) are the same
    with one process as with three."""
    tables = good_tables()
    settings = {**SETTINGS, "claims": {**SETTINGS["claims"], "stability": {"resamples": 9}}}
    one = claims.decide_all(tables, settings, workers=1)
    three = claims.decide_all(tables, settings, workers=3)
    assert [x["stability"] for x in one["claims"]] == [x["stability"] for x in three["claims"]]
    assert {x["stability"]["resamples"] for x in one["claims"]} == {0, 9}


def test_decide_all_write_and_render(tmp_path):
    tables = good_tables()
    for name, df in tables.items():
        fileio.write_csv(tmp_path / "tables" / f"{name}.csv", df)
    loaded = claims.load_tables(tmp_path / "tables")
    assert set(loaded) == set(tables)
    out = claims.decide_all(loaded, SETTINGS)
    # C8 needs a learning-rate grid, which SETTINGS does not have
    assert out["verdicts"] == {**{f"C{i}": "supported" for i in range(1, 8)},
                               "C8": "inconclusive", "C9": "inconclusive"}
    for name in tables:
        path = tmp_path / "tables" / f"{name}.csv"
        assert out["inputs"][name]["sha256"] == fileio.sha256_file(path)
    assert out["naming"]["postln"]["article_name"] == "pre-norm"
    assert out["answer"]["verdict"] == "supported" and "plain" in out["answer"]["text"]
    # C6 supported and no protocol besides the main one: "yes", one line for the main grid
    assert out["answer"]["headline"].startswith("Yes: weight decay does not improve")
    assert [line.split(" ")[0] for line in out["answer"]["by_protocol"]] == ["main"]
    assert all(x["stability"]["resamples"] in (0, 8) for x in out["claims"])
    claims.write_claims(out, tmp_path / "claims.json", tmp_path / "CLAIMS.md",
                        tmp_path / "effects.csv")
    effects = pd.read_csv(tmp_path / "effects.csv")
    c6 = effects[(effects["claim"] == "C6") & (effects["metric"] == "test_acc")]
    assert set(c6["arch"]) == set(ARCHS) and (c6["unit"] == "fraction").all()

    def no_nan(token):
        raise ValueError(f"non-standard JSON constant {token}")
    again = json.loads((tmp_path / "claims.json").read_text(), parse_constant=no_nan)
    assert again["verdicts"] == out["verdicts"]
    md = (tmp_path / "CLAIMS.md").read_text()
    assert md.index("Main protocol") < md.index("| claim | verdict | stability |")
    assert md.count("**supported**") == 7 and "## C9" in md      # the 7 supported rows
    assert md.index("**Answer.** Yes") < md.index("- main (the main grid): supported")
    loaded["runs"] = runs_df(effect={"ln": 0.03})
    flipped = claims.decide_all(loaded, SETTINGS)
    assert flipped["verdicts"]["C6"] == "refuted" and flipped["answer"]["verdict"] == "refuted"
    assert set(claims.decide_all({}, {})["verdicts"].values()) == {"inconclusive"}


def test_statistical_claims_state_their_margin():
    out = claims.decide_all(good_tables(), SETTINGS)
    margins = {x["id"]: x.get("margin") for x in out["claims"]}
    assert margins == {"C1": None, "C2": None, "C3": None, "C4": None, "C5": 0.02,
                       "C6": 0.01, "C7": 0.01, "C8": 0.01, "C9": 0.01}
    for x in out["claims"]:  # C8, C9 have nothing to count without an lr grid, protocols
        assert x["test"] and (x["n"] or x["id"] in ("C8", "C9")) and x["rule"] \
            and x["summary"], x["id"]


def test_the_headline_names_the_protocols_and_what_they_change():
    from wdnorm.claims.answer import headline

    def cell(arch, role, outcome):
        return {"arch": arch, "role": role, "test_acc": {"outcome": outcome}}
    per = {"constant_lr": {"verdict": "supported", "per_arch": {
               "ln": cell("ln", "headline", "harms"), "res": cell("res", "control", "improves")}},
           "main": {"verdict": "refuted", "per_arch": {
               "ln": cell("ln", "headline", "improves"), "res": cell("res", "control", "improves")}}}
    by_id = {"C6": {"verdict": "refuted", "measured": {"per_arch": {"m/o/ln": per["main"]["per_arch"]["ln"]}}},
             "C9": {"verdict": "refuted", "measured": {"per_protocol": per}}}
    text = headline(by_id)
    assert text.startswith("It depends on the training protocol.")
    assert "(ln) under main; not under constant_lr (it harms ln under constant_lr)" in text
    assert "res under 2 of the 2 protocols that measured it (main, constant_lr)" in text
    # a protocol where every res run of both arms diverged measured nothing about res
    per["mnist5k"] = {"verdict": "supported", "per_arch": {
        "ln": cell("ln", "headline", "no detectable change"),
        "res": cell("res", "control", "not comparable")}}
    text = headline(by_id)
    assert "res under 2 of the 2 protocols that measured it (main, constant_lr)" in text
    assert "every res run of both arms diverged or collapsed under mnist5k" in text


def test_the_answer_weighs_grid_edges_by_arm():
    from wdnorm.claims.answer import edge_sentence

    threat = edge_sentence({"weight_decay": [], "no_weight_decay": ["ln"]})
    assert "ln" in threat and "overstate" in threat and "handicaps" not in threat
    safe = edge_sentence({"weight_decay": ["bn"], "no_weight_decay": []})
    assert "interior for every architecture" in safe and "bn" in safe and "handicaps" in safe
    assert edge_sentence({}) == ""  # nothing tuned: nothing said


def test_an_effect_between_diverged_arms_says_so():
    from wdnorm.claims import common

    arms = {"weight_decay": {"runs": 10, "ok": 1, "diverged": 9, "collapsed": 0},
            "no_weight_decay": {"runs": 10, "ok": 0, "diverged": 10, "collapsed": 0}}
    assert common.failures_note({"arms": arms}) == " (diverged: WD 9/10, no-WD 10/10)"
    healthy = {k: {"runs": 10, "ok": 10, "diverged": 0, "collapsed": 0} for k in arms}
    assert common.failures_note({"arms": healthy}) == ""


def test_arms_whose_runs_all_failed_are_not_comparable():
    """Both arms diverged in every seed: each scores chance, the paired differences are 0
    by construction, and the cell says so instead of 'no detectable change +0.00 pp'."""
    from wdnorm.claims import effects

    runs = runs_df()
    grid = runs["kind"] == "grid"
    both = grid & (runs["arch"] == "res") & runs["weight_decay"].isin([0.0, WD_STAR])
    runs.loc[both, ["status", "test_acc"]] = ["diverged", 0.1]
    one = grid & (runs["arch"] == "ln") & (runs["weight_decay"] == WD_STAR)  # a finding
    runs.loc[one, ["status", "test_acc"]] = ["diverged", 0.1]
    cells = {x["arch"]: x for x in effects.wd_effects(runs, SETTINGS, 0.05)}
    res, ln = cells["res"], cells["ln"]
    assert res["test_acc"]["outcome"] == effects.NOT_COMPARABLE and res["test_acc"]["hl"] == 0
    n = res["arms"]["weight_decay"]["runs"]
    assert n >= 10 and effects.outcome_text("res", res) == (
        f"res not comparable (diverged: WD {n}/{n}, no-WD {n}/{n})")
    assert ln["test_acc"]["outcome"] == "harms"
    assert effects.outcome_text("ln", ln).startswith("ln harms -")
