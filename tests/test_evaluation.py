"""The evaluation stage on a tiny real sample: two slabs trained with the engine and
written in the real run layout, then read back into the tables of the contract."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from wdnorm import evaluation, fileio, grid, runs
from wdnorm.data import Prepared
from wdnorm.engine import Member, OptimiserConfig, SlabConfig, train_slab
from wdnorm.layout import Layout

D, C, WIDTH, DEPTH = 8, 3, 8, 2
LR, MOMENTUM, SEEDS = 0.1, 0.9, [0, 1]
WDS = [0.0, 0.01, 0.5]          # 0.5: t_equilibrium = 3/(2*0.1*0.5) = 30 < 60 steps
PAIRS = [(0.2, 0.25), (0.1, 0.5)]
MIMIC_WD = 0.01
DIVERGING = Member(1e5, 0.0, 1)  # plain, lr 1e5: the loss is NaN by step 3

CONTRACT = {
    "runs": "dataset optimiser arch kind run_id lr weight_decay seed algorithm momentum status "
            "steps train_loss train_acc test_loss test_acc gen_gap_loss gen_gap_acc "
            "hidden_penalty head_sq_norm is_matched_pair mimic_reference",
    "dynamics": "dataset optimiser arch kind run_id lr weight_decay seed algorithm momentum beta1 "
                "layer layer_index is_head predicted_invariant steps t_equilibrium "
                "past_equilibrium window_start angle_mean angle_pred angle_ratio cos_abs_mean "
                "sq_norm_init sq_norm_final eff_lr_final",
    "penalty": "dataset optimiser arch run_id weight_decay seed method penalty_before "
               "penalty_after ratio scale loss_before loss_after rel_loss_change eps_limited "
               "total_penalty_before total_penalty_after ratio_eps0",
    "penalty_curve": "dataset optimiser arch run_id method scale penalty total_penalty "
                     "rel_loss_change",
    "gradient_identity": "dataset arch layer layer_index is_head predicted_invariant steps lr "
                         "cos_abs_max cos_abs_mean identity_rel_err identity_rel_err_total "
                         "norm_growth",
    "symmetry": "dataset arch layer layer_index transform scale mode rel_change "
                "predicted_invariant invariant matches_prediction rel_change_model_eps "
                "invariant_model_eps norm_eps tol",
    "epsilon_floor": "dataset arch layer layer_index dtype floor grid_floor reached_grid_end "
                     "norm_eps a_eps first_order_floor",
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def prepared():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(136, D, generator=gen)
    y = x[:, :C].argmax(1)
    return Prepared(x[:96], y[:96], x[96:], y[96:],
                    meta={"name": "toy", "d_in": D, "n_classes": C, "n_train": 96, "n_test": 40})


def _write_slab(layout, prep, arch, members, kind="runs", reference=None, ref_dirs=None):
    cfg = SlabConfig(arch=arch, d_in=D, width=WIDTH, depth=DEPTH, n_classes=C,
                     optimiser=OptimiserConfig("sgd", momentum=MOMENTUM), epochs=10,
                     batch_size=16, eval_every=5)
    result = train_slab(cfg, members, prep.x_train, prep.y_train, prep.x_test, prep.y_test,
                        reference_sq_norms=reference)
    dirs = []
    for i, m in enumerate(members):
        extra = {"mimic_reference": f"runs/toy/sgdm/{arch}/{ref_dirs[i].name}"} if ref_dirs else {}
        metrics = runs.member_metrics(result, i, dataset="toy", optimiser="sgdm", kind=kind,
                                      extra=extra)
        d = layout.run_dir("toy", "sgdm", arch, m.run_id, kind)
        runs.write_run(d, metrics, runs.member_trace(result, i), result.state_dict(i), {})
        dirs.append(d)
    return dirs


@pytest.fixture(scope="module")
def sample(tmp_path_factory, prepared):
    """{arch: tables} for an ln and a plain slab (grid + matched pairs + mimic runs; the
    plain slab also holds one diverging run)."""
    layout = Layout(results=tmp_path_factory.mktemp("results"))
    out = {}
    for arch in ("ln", "plain"):
        members = grid.slab_members(LR, WDS, SEEDS, PAIRS)
        if arch == "plain":
            members.append(DIVERGING)
        run_dirs = _write_slab(layout, prepared, arch, members)
        refs = [layout.run_dir("toy", "sgdm", arch, grid.mimic_reference(LR, MIMIC_WD, s).run_id)
                for s in SEEDS]
        ref = np.stack([runs.read_trace(d)["sq_norm"] for d in refs], 1)
        mimic_dirs = _write_slab(layout, prepared, arch, grid.mimic_members(LR, SEEDS),
                                 "mimic", ref, refs)
        files = [d / "metrics.json" for d in run_dirs] + [d / "model.pt" for d in run_dirs]
        out[arch] = evaluation.slab_tables(files, mimic_dirs, prepared, PAIRS, MIMIC_WD)
    return out


def _has_contract(df, name):
    missing = [c for c in CONTRACT[name].split() if c not in df.columns]
    assert not missing, f"{name} lacks {missing}"


def test_slab_tables_have_the_contract_columns(sample):
    for tables in sample.values():
        for name in ("runs", "dynamics", "penalty", "penalty_curve"):
            _has_contract(tables[name], name)


def test_runs_table(sample, prepared):
    r = sample["ln"]["runs"]
    n_grid = len(grid.slab_members(LR, WDS, SEEDS, PAIRS))
    assert (r["kind"] == "runs").sum() == n_grid and (r["kind"] == "mimic").sum() == len(SEEDS)
    assert set(r["status"]) == {"ok"}
    assert (r["algorithm"] == "sgd").all() and (r["momentum"] == MOMENTUM).all()
    assert r["is_matched_pair"].sum() == len(PAIRS) * len(SEEDS)
    mimic = r[r["kind"] == "mimic"]
    assert set(mimic["mimic_reference"]) == {f"lr{LR:g}_wd{MIMIC_WD:g}_s{s}" for s in SEEDS}
    assert r.loc[r["kind"] == "runs", "mimic_reference"].isna().all()
    np.testing.assert_allclose(r["gen_gap_acc"], r["train_acc"] - r["test_acc"], atol=1e-6)
    assert r["test_acc"].between(0, 1).all()
    # hidden_penalty from the trace equals the saved model's own
    grid_runs = r[r["kind"] == "runs"].set_index("run_id")
    pen = sample["ln"]["penalty"].set_index("run_id")["penalty_before"]
    np.testing.assert_allclose(grid_runs.loc[pen.index, "hidden_penalty"], pen, rtol=1e-5)


def test_dynamics_formulas(sample):
    d = sample["ln"]["dynamics"]
    d = d[d["kind"] == "runs"]
    assert len(d) == len(sample["ln"]["runs"].query("kind == 'runs'")) * (DEPTH + 1)
    hidden = d[~d["is_head"]]
    assert hidden["predicted_invariant"].all() and not d[d["is_head"]]["predicted_invariant"].any()
    decayed = hidden[hidden["weight_decay"] > 0]
    expect = np.sqrt(2 * decayed["lr"] * decayed["weight_decay"] / (1 + MOMENTUM))
    np.testing.assert_allclose(decayed["angle_pred"], expect, rtol=1e-12)
    np.testing.assert_allclose(decayed["angle_ratio"], decayed["angle_mean"] / decayed["angle_pred"])
    np.testing.assert_allclose(decayed["t_equilibrium"], 3 / (2 * decayed["lr"] * decayed["weight_decay"]))
    assert (decayed["past_equilibrium"] == (decayed["steps"] >= decayed["t_equilibrium"])).all()
    # λ = 0 and the (undecayed) head: no equilibrium, no prediction
    assert hidden[hidden["weight_decay"] == 0]["angle_pred"].isna().all()
    assert d[d["is_head"]]["angle_pred"].isna().all()
    assert np.isinf(d[d["is_head"]]["t_equilibrium"]).all()
    # window: the last 25%, never before t_equilibrium when past it
    steps = int(d["steps"].iloc[0])
    for _, row in d.iterrows():
        start = int(0.75 * steps)
        if row["past_equilibrium"]:
            start = max(start, math.ceil(row["t_equilibrium"]))
        assert row["window_start"] == min(start, steps - 1)
    past = decayed[decayed["past_equilibrium"]]
    assert len(past) and past["angle_ratio"].between(0.3, 3).all()
    assert (d["eff_lr_final"] > 0).all()
    np.testing.assert_allclose(d["eff_lr_final"], d["layer_lr_final"] / d["sq_norm_final"])


def test_window_start_and_predictions():
    assert evaluation.window_start(100, math.inf) == 75
    assert evaluation.window_start(100, 90.0) == 90
    assert evaluation.window_start(100, 100.0) == 99      # never an empty window
    assert evaluation.window_start(100, 101.0) == 75      # not past: the plain last 25%
    assert math.isclose(evaluation.angle_prediction("adamw", 1e-3, 0.1, beta1=0.9),
                        math.sqrt(2 * 1e-3 * 0.1 * 0.1 / 1.9))
    assert math.isnan(evaluation.angle_prediction("adam", 1e-3, 0.1))
    assert math.isnan(evaluation.angle_prediction("sgd", 0.1, 0.0))


def test_penalty_tables(sample):
    ln = sample["ln"]["penalty"]
    assert (ln["method"] == "invariant_shrink").all()
    assert (ln["ratio_eps0"] < 1e-3).all() and (ln["rel_loss_change_eps0"] <= 1e-4).all()
    assert (ln["rel_loss_change"] <= 1e-4 * (1 + 1e-6)).all()
    assert ((ln["ratio"] > 0) & (ln["ratio"] <= 1)).all()
    # ln: the groups are every hidden layer, whose penalty ratio is scale²
    np.testing.assert_allclose(ln["group_penalty_before"], ln["penalty_before"], rtol=1e-5)
    np.testing.assert_allclose(ln["group_ratio"], ln["scale"] ** 2)
    np.testing.assert_allclose(ln["ratio"], ln["group_ratio"], rtol=1e-4)
    # the head and the norms' affine parameters keep their penalty (S6)
    np.testing.assert_allclose(ln["total_penalty_before"] - ln["penalty_before"],
                               ln["total_penalty_after"] - ln["penalty_after"], rtol=1e-5)
    plain = sample["plain"]["penalty"]
    ok = plain[plain["status"] == "ok"]
    assert (ok["method"] == "relu_rebalance").all()
    assert (ok["total_penalty_after"] <= ok["total_penalty_before"] * (1 + 1e-6)).all()
    assert (ok["rel_loss_change"] < 1e-4).all()
    curve = sample["ln"]["penalty_curve"]
    assert set(curve["run_id"]) == {f"lr{LR:g}_wd{MIMIC_WD:g}_s0"}
    assert set(curve["variant"]) == {"model_eps", "eps0"}
    assert sample["plain"]["penalty_curve"].empty


def test_diverged_run_keeps_its_rows(sample):
    r = sample["plain"]["runs"].set_index("run_id")
    bad = r.loc[DIVERGING.run_id]
    assert bad["status"] == "diverged" and math.isnan(bad["test_acc"])
    assert math.isnan(bad["hidden_penalty"])
    dyn = sample["plain"]["dynamics"]
    rows = dyn[dyn["run_id"] == DIVERGING.run_id]
    assert len(rows) == DEPTH + 1 and rows["angle_mean"].isna().all()
    pen = sample["plain"]["penalty"].set_index("run_id").loc[DIVERGING.run_id]
    assert pen["status"] == "diverged" and math.isnan(pen["ratio"])


def test_gradient_identity(prepared):
    gi = evaluation.gradient_identity_table(["ln", "plain"], dict(width=WIDTH, depth=DEPTH),
                                            16, 40, 0.1, prepared, "toy")
    _has_contract(gi, "gradient_identity")
    ln = gi[(gi["arch"] == "ln") & gi["predicted_invariant"]]
    assert len(ln) == DEPTH + 1                            # hidden layers + the joint group
    assert (ln["cos_abs_max"] < 1e-3).all()
    assert (ln["identity_rel_err_total"] < 1e-2).all()
    assert (ln["norm_growth"] > 1).all()                   # norms only grow at λ = 0
    head = gi[(gi["arch"] == "plain") & gi["is_head"]].iloc[0]
    assert head["cos_abs_max"] > 1e-2 and head["identity_rel_err_total"] > 1e-2
    # the model's own ε perturbs the identity, the exact probe does not
    assert (ln["cos_abs_max_model_eps"] >= ln["cos_abs_max"]).all()


def test_identity_columns_exact():
    g = np.array([1.0, 2.0, 0.5])
    sq = np.concatenate([[4.0], 4.0 + np.cumsum(0.01 * g)])   # lr 0.1: growth lr² g
    out = evaluation.identity_columns(sq, g, np.zeros(3), 0.1)
    assert out["identity_rel_err"] < 1e-12 and out["identity_rel_err_total"] < 1e-12
    assert math.isclose(out["norm_growth"], sq[-1] / 4.0)


def test_symmetry_tables(prepared):
    sym, floors = evaluation.symmetry_tables(["ln", "plain"], dict(width=WIDTH, depth=DEPTH),
                                             prepared.x_train, "toy", n_classes=C,
                                             scales=(0.1, 10.0))
    _has_contract(sym, "symmetry")
    _has_contract(floors, "epsilon_floor")
    assert sym["matches_prediction"].all() and (sym["dataset"] == "toy").all()
    assert set(floors["arch"]) == {"ln"}
    assert set(floors["layer_index"]) == {0, 1, -1}
    assert set(floors["dtype"]) == {"float32", "float64"}


def test_aggregate(tmp_path):
    a = pd.DataFrame({"x": [1, 2], "y": ["a", "b"]})
    b = pd.DataFrame({"x": [3], "z": [True]})
    fileio.write_csv(tmp_path / "a.csv", a)
    fileio.write_csv(tmp_path / "b.csv", b)
    fileio.write_csv(tmp_path / "c.csv", a.iloc[0:0])         # header only
    (tmp_path / "d.csv").write_text("")                       # 0 bytes
    out = evaluation.aggregate([tmp_path / n for n in ("a.csv", "b.csv", "c.csv", "d.csv")])
    assert list(out.columns) == ["x", "y", "z"] and out["x"].tolist() == [1, 2, 3]
    assert evaluation.aggregate([]).empty
    empty = evaluation.aggregate([tmp_path / "c.csv"])
    assert empty.empty and list(empty.columns) == ["x", "y"]
