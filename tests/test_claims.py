"""Verdicts follow the data: synthetic tables where the predicted effect is present give
"supported"; flipping the data flips the verdict. Every claim is tested both ways."""

import json
import math

import numpy as np
import pandas as pd

from wdnorm import claims, fileio

SEEDS = [0, 1, 2]
PAIRS = [(0.1, 0.02), (0.05, 0.04), (0.025, 0.08)]
SETTINGS = {"matched_pairs": [list(p) for p in PAIRS], "mimic": {"weight_decay": 0.01},
            "optimisers": {"sgdm": {"algorithm": "sgd", "lr": 0.05, "momentum": 0.9}},
            "training": {}}


# --------------------------------------------------------------------------- tables

def symmetry_df():
    rows = []
    for arch, pred, rel in (("ln", True, 1e-16), ("plain", False, 0.5)):
        for layer, index in (("hidden0", 0), ("hidden1", 1), ("joint", -1)):
            for scale in (0.01, 10.0):
                rows.append(dict(dataset="d", arch=arch, layer=layer, layer_index=index,
                                 transform="joint" if index < 0 else "layer", scale=scale,
                                 mode="eval", rel_change=rel, predicted_invariant=pred,
                                 invariant=rel < 1e-5, matches_prediction=True,
                                 rel_change_model_eps=1e-3 if pred else rel,
                                 invariant_model_eps=False, norm_eps=1e-5, tol=1e-5))
    return pd.DataFrame(rows)


def floor_df():
    return pd.DataFrame([dict(dataset="d", arch="ln", layer="hidden0", layer_index=0,
                              dtype=dt, floor=0.7, grid_floor=1.0, reached_grid_end=False,
                              norm_eps=1e-5, a_eps=0.006, first_order_floor=0.9)
                         for dt in ("float32", "float64")])


def penalty_df(practical=0.5):
    rows = []
    for s in SEEDS:
        base = dict(dataset="d", optimiser="sgdm", run_id=f"r{s}", weight_decay=0.01, seed=s,
                    status="ok", penalty_before=10.0, loss_before=0.1,
                    total_penalty_before=50.0)
        rows.append(dict(base, arch="ln", method="invariant_shrink", group_kind="layer",
                         penalty_after=10 * practical, ratio=practical,
                         scale=math.sqrt(practical), loss_after=0.10001, rel_loss_change=1e-4,
                         eps_limited=True, total_penalty_after=40 + 10 * practical,
                         total_ratio=(40 + 10 * practical) / 50, ratio_eps0=1e-24,
                         scale_eps0=1e-12, group_ratio_eps0=1e-24,
                         rel_loss_change_eps0=1e-6))
        rows.append(dict(base, arch="plain", method="relu_rebalance", penalty_after=6.0,
                         ratio=0.6, scale=np.nan, loss_after=0.1, rel_loss_change=1e-7,
                         eps_limited=False, total_penalty_after=40.0, total_ratio=0.8,
                         ratio_eps0=0.6, rel_loss_change_eps0=1e-7))
    rows.append(dict(rows[0], run_id="bad", seed=9, status="diverged", ratio_eps0=np.nan,
                     ratio=np.nan))
    return pd.DataFrame(rows)


def gi_df():
    rows = []
    for arch, layers in (("ln", [("hidden0", True, False), ("hidden1", True, False),
                                 ("head", False, True), ("joint", True, False)]),
                         ("plain", [("hidden0", False, False), ("head", False, True)])):
        for i, (layer, pred, head) in enumerate(layers):
            rows.append(dict(dataset="d", arch=arch, layer=layer, layer_index=i,
                             is_head=head, predicted_invariant=pred, steps=300, lr=0.05,
                             cos_abs_max=1e-8 if pred else 0.7, cos_abs_mean=1e-9 if pred else 0.5,
                             identity_rel_err=0.01 if pred else 300.0,
                             identity_rel_err_total=1e-6 if pred else 150.0,
                             norm_growth=1.02, status="ok",
                             cos_abs_max_model_eps=5e-5 if pred else 0.7,
                             identity_rel_err_total_model_eps=0.015 if pred else 150.0))
    return pd.DataFrame(rows)


def dynamics_df(ratio=1.0, past=True, seed_noise=0.02):
    rows = []
    rng = np.random.default_rng(1)
    for arch in ("ln", "plain"):
        for s in SEEDS:
            for lr, wd in [(0.05, 0.0), (0.05, 0.01), (0.05, 0.1)] + list(PAIRS):
                pred = math.sqrt(2 * lr * wd / 1.9) if wd else np.nan
                for i, layer in enumerate(("hidden0", "hidden1", "head")):
                    inv = arch == "ln" and layer != "head"
                    r = ratio * (1 + seed_noise * rng.standard_normal()) if inv else 0.6
                    rows.append(dict(dataset="d", optimiser="sgdm", arch=arch, kind="runs",
                                     run_id=f"lr{lr:g}_wd{wd:g}_s{s}", lr=lr, weight_decay=wd,
                                     seed=s, status="ok", layer=layer, layer_index=i,
                                     is_head=layer == "head", predicted_invariant=inv,
                                     decayed=layer != "head", steps=1500,
                                     past_equilibrium=bool(past and wd > 0),
                                     angle_pred=pred, angle_mean=pred * r if wd else 1e-3,
                                     angle_ratio=r if wd and layer != "head" else np.nan))
    return pd.DataFrame(rows)


def runs_df(ln_wd_shift=0.0, ln_pair_shift=0.0, mimic_shift=0.0, plain_pair_shift=0.05):
    """test_acc: 0.95 + seed noise (±0.002); shifts add to ln's λ = 0.01 runs, to ln's
    first matched pair, to the mimic runs (relative to the decay run they follow), and to
    plain's first matched pair."""
    noise = {0: -0.002, 1: 0.0, 2: 0.002}
    rows = []
    for arch in ("ln", "bn", "plain", "res"):
        for s in SEEDS:
            points = [(0.05, 0.0), (0.05, 0.01), (0.05, 0.1)] + list(PAIRS)
            for lr, wd in points:
                acc = 0.95 + noise[s]
                if arch == "ln" and wd == 0.01:
                    acc += ln_wd_shift
                if (lr, wd) == PAIRS[0]:
                    acc += ln_pair_shift if arch == "ln" else plain_pair_shift if arch == "plain" else 0
                rows.append(dict(dataset="d", optimiser="sgdm", arch=arch, kind="runs",
                                 run_id=f"lr{lr:g}_wd{wd:g}_s{s}", lr=lr, weight_decay=wd,
                                 seed=s, status="ok", test_acc=acc, train_acc=1.0,
                                 gen_gap_acc=1.0 - acc, is_matched_pair=(lr, wd) in PAIRS,
                                 mimic_reference=None))
            ref = [r for r in rows if r["arch"] == arch and r["seed"] == s
                   and r["weight_decay"] == 0.01][0]
            rows.append(dict(ref, kind="mimic", run_id=f"lr0.05_wd0_s{s}", weight_decay=0.0,
                             test_acc=ref["test_acc"] + mimic_shift,
                             gen_gap_acc=1.0 - ref["test_acc"] - mimic_shift,
                             is_matched_pair=False, mimic_reference=ref["run_id"]))
    rows.append(dict(rows[0], run_id="diverged", seed=7, status="diverged", test_acc=np.nan))
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- C1

def test_c1_supported_then_refuted_then_inconclusive():
    c = claims.decide_c1(symmetry_df(), floor_df())
    assert c["verdict"] == "supported"
    assert c["measured"]["per_arch"]["ln"]["predicted_invariant"] == 6
    assert c["measured"]["epsilon_floor_float32"]["ln"]["hidden0"] == 0.7
    bad = symmetry_df()
    bad.loc[0, "rel_change"] = 0.3              # an ln layer that is not invariant after all
    c = claims.decide_c1(bad, floor_df())
    assert c["verdict"] == "refuted" and c["measured"]["n_mismatched"] == 1
    assert c["measured"]["mismatched_cells"][0]["arch"] == "ln"
    grey = symmetry_df()
    grey.loc[grey["arch"] == "plain", "rel_change"] = 1e-3
    assert claims.decide_c1(grey)["verdict"] == "inconclusive"
    assert claims.decide_c1(pd.DataFrame())["verdict"] == "inconclusive"


# --------------------------------------------------------------------------- C2

def test_c2_supported_and_honest_about_the_eps_floor():
    c = claims.decide_c2(penalty_df(practical=0.5), floor_df())
    assert c["verdict"] == "supported"
    ln = c["measured"]["invariant_archs"]["ln"]
    assert ln["runs"] == 3 and ln["practical_far_from_zero"] and ln["ideal_ratio_max"] < 1e-20
    assert "far from 0" in c["summary"]
    near = claims.decide_c2(penalty_df(practical=1e-6))
    assert near["verdict"] == "supported" and "far from 0" not in near["summary"]


def test_c2_judges_the_invariant_groups_not_the_whole_hidden_penalty():
    # resln-like: the groups vanish, a non-invariant stem keeps 40% of the hidden penalty
    p = penalty_df()
    p.loc[p["arch"] == "ln", "ratio_eps0"] = 0.4
    c = claims.decide_c2(p)
    assert c["verdict"] == "supported" and "stem" in c["summary"]
    assert c["measured"]["invariant_archs"]["ln"]["ideal_hidden_ratio_median"] == 0.4


def test_c2_refuted_when_the_ideal_penalty_stays_or_a_plain_one_vanishes():
    p = penalty_df()
    p.loc[p["arch"] == "ln", ["ratio_eps0", "group_ratio_eps0"]] = 0.5
    assert claims.decide_c2(p)["verdict"] == "refuted"
    p = penalty_df()
    p.loc[p["arch"] == "plain", "total_ratio"] = 1e-6
    c = claims.decide_c2(p)
    assert c["verdict"] == "refuted" and "plain" in c["summary"]
    assert claims.decide_c2(penalty_df().query("arch == 'plain'"))["verdict"] == "inconclusive"


# --------------------------------------------------------------------------- C3

def test_c3_both_ways():
    c = claims.decide_c3(gi_df())
    assert c["verdict"] == "supported"
    assert c["measured"]["plain_head_cos_abs_max"] == 0.7
    bad = gi_df()
    bad.loc[(bad["arch"] == "ln") & (bad["layer"] == "hidden1"), "cos_abs_max"] = 0.1
    c = claims.decide_c3(bad)
    assert c["verdict"] == "refuted" and c["measured"]["failing"][0]["layer"] == "hidden1"
    bad = gi_df()
    bad.loc[bad["arch"] == "ln", "identity_rel_err_total"] = 0.05
    assert claims.decide_c3(bad)["verdict"] == "refuted"
    flat = gi_df()
    flat.loc[~flat["predicted_invariant"], "cos_abs_max"] = 1e-4   # no contrast anywhere
    assert claims.decide_c3(flat)["verdict"] == "inconclusive"


# --------------------------------------------------------------------------- C4

def test_c4_both_ways():
    c = claims.decide_c4(dynamics_df(ratio=1.0))
    assert c["verdict"] == "supported"
    ln = c["measured"]["per_arch"]["ln"]
    assert ln["fraction_within"] > 0.9 and "plain" not in c["measured"]["per_arch"]
    assert claims.decide_c4(dynamics_df(ratio=1.5))["verdict"] == "refuted"
    assert claims.decide_c4(dynamics_df(ratio=0.8))["verdict"] == "refuted"
    c = claims.decide_c4(dynamics_df(ratio=1.0, past=False))
    assert c["verdict"] == "inconclusive" and c["n"]["rows"] == 0


# --------------------------------------------------------------------------- C5

def test_c5_both_ways():
    c = claims.decide_c5(runs_df(), dynamics_df(), PAIRS, SETTINGS)
    assert c["verdict"] == "supported"
    ln = c["measured"]["per_arch"]["ln"]
    assert ln["pairs"] == 3 and ln["accuracy_consistent"] and ln["angle_consistent"]
    assert c["measured"]["plain_consistent"] == {"plain": False}     # the contrast
    c = claims.decide_c5(runs_df(ln_pair_shift=0.05), dynamics_df(), PAIRS, SETTINGS)
    assert c["verdict"] == "refuted" and not c["measured"]["per_arch"]["ln"]["consistent"]
    # angles that differ across pairs refute as well
    dyn = dynamics_df()
    first = (dyn["lr"] == PAIRS[0][0]) & (dyn["weight_decay"] == PAIRS[0][1])
    dyn.loc[first & (dyn["arch"] == "ln"), "angle_mean"] *= 1.6
    c = claims.decide_c5(runs_df(), dyn, PAIRS, SETTINGS)
    assert c["verdict"] == "refuted" and c["measured"]["per_arch"]["ln"]["angle_consistent"] is False
    assert claims.decide_c5(runs_df(), None, [], SETTINGS)["verdict"] in ("supported", "refuted")
    only_one = runs_df().query("not (lr == 0.1 or lr == 0.025)")
    assert claims.decide_c5(only_one, None, PAIRS)["verdict"] == "inconclusive"


# --------------------------------------------------------------------------- C6

def test_c6_supported_when_wd_does_nothing_and_mimic_reproduces():
    c = claims.decide_c6(runs_df(), SETTINGS)
    assert c["verdict"] == "supported"
    e = c["measured"]["per_arch"]["ln"]["effects"]["0.01"]["test_acc"]
    assert abs(e["mean"]) < 1e-12 and e["n_seeds"] == 3 and e["ci_low"] <= 0 <= e["ci_high"]
    m = c["measured"]["mechanism"]["ln"]
    assert m["reproduces"] and not m["lr_schedule"]     # nothing to explain
    assert "res" in c["measured"]["per_arch"]           # residual contrast reported


def test_c6_refuted_when_wd_moves_ln_beyond_noise():
    c = claims.decide_c6(runs_df(ln_wd_shift=0.05), SETTINGS)
    assert c["verdict"] == "refuted"
    assert c["measured"]["beyond_noise_at_headline"] == ["ln@λ=0.01"]
    m = c["measured"]["mechanism"]["ln"]
    assert m["reproduces"] and m["lr_schedule"]          # the mimic carries the effect
    assert "LR schedule" in c["summary"]
    # same effect, but the mimic does not follow: WD is not (only) an LR schedule here
    c = claims.decide_c6(runs_df(ln_wd_shift=0.05, mimic_shift=-0.05), SETTINGS)
    assert c["verdict"] == "refuted"
    assert not c["measured"]["mechanism"]["ln"]["reproduces"]
    assert "does not reproduce" in c["summary"]


def test_c6_small_but_consistent_differences_stay_within_the_margin():
    c = claims.decide_c6(runs_df(ln_wd_shift=0.004), SETTINGS)
    e = c["measured"]["per_arch"]["ln"]["effects"]["0.01"]["test_acc"]
    assert e["ci_excludes_zero"] and not e["beyond_noise"]
    assert c["verdict"] == "supported"


def test_c6_inconclusive_without_seeds_or_targets():
    one_seed = runs_df().query("seed == 0")
    assert claims.decide_c6(one_seed, SETTINGS)["verdict"] == "inconclusive"
    no_targets = runs_df().query("arch not in ['ln', 'bn']")
    assert claims.decide_c6(no_targets, SETTINGS)["verdict"] == "inconclusive"


def test_bootstrap_ci():
    lo, hi = claims.bootstrap_ci([0.01, 0.02, 0.03])
    assert 0.01 <= lo < 0.02 < hi <= 0.03
    assert (lo, hi) == claims.bootstrap_ci([0.01, 0.02, 0.03])      # fixed seed
    assert all(math.isnan(v) for v in claims.bootstrap_ci([0.5]))


# --------------------------------------------------------------------------- all

def test_decide_all_write_and_render(tmp_path):
    tables = {"symmetry": symmetry_df(), "epsilon_floor": floor_df(), "penalty": penalty_df(),
              "gradient_identity": gi_df(), "dynamics": dynamics_df(), "runs": runs_df()}
    for name, df in tables.items():
        fileio.write_csv(tmp_path / "tables" / f"{name}.csv", df)
    loaded = claims.load_tables(tmp_path / "tables")
    assert set(loaded) == set(tables)
    out = claims.decide_all(loaded, SETTINGS)
    assert out["verdicts"] == {f"C{i}": "supported" for i in range(1, 7)}
    for name in tables:
        assert out["inputs"][name]["sha256"] == fileio.sha256_file(tmp_path / "tables" / f"{name}.csv")
    assert out["naming"]["postln"]["article"] == "pre-norm"
    assert out["naming"]["resln"]["article"] == "post-norm"
    for c in out["claims"]:
        assert c["verdict"] in claims.VERDICTS
        for key in ("id", "title", "prediction_article", "prediction_literature", "measured",
                    "tolerance", "n", "table", "figure", "summary"):
            assert key in c
        assert c["figure"].startswith("figures/") and c["table"].startswith("tables/")
    claims.write_claims(out, tmp_path / "claims.json", tmp_path / "CLAIMS.md")

    def no_nan(token):
        raise ValueError(f"non-standard JSON constant {token}")
    again = json.loads((tmp_path / "claims.json").read_text(), parse_constant=no_nan)
    assert again["verdicts"] == out["verdicts"]
    md = (tmp_path / "CLAIMS.md").read_text()
    assert md.count("**supported**") == 6 and "| claim | article's prediction" in md
    assert "pre-norm" in md and "## C6" in md
    # flipping one table flips its verdict in the whole report
    loaded["runs"] = runs_df(ln_wd_shift=0.05)
    assert claims.decide_all(loaded, SETTINGS)["verdicts"]["C6"] == "refuted"
    # empty inputs: every claim inconclusive, nothing raises
    empty = claims.decide_all({}, {})
    assert set(empty["verdicts"].values()) == {"inconclusive"}
