"""The evaluation stage's tables, on run directories written by hand in the run contract
(metrics.json, trace.npz, model.pt beside a slab.json): every planted number has a known
answer, so the table logic is checked without training anything. The probes that train
(C3) or build fresh models (C1) run on a tiny toy dataset."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from wdnorm import fileio, models, runs
from wdnorm.engine import Member, OptimiserConfig, SlabConfig, train_slab
from wdnorm.data import Prepared
from wdnorm.layout import Layout, run_id
from wdnorm.probes.gradient_identity import gradient_identity_table, identity_columns
from wdnorm.probes.symmetry_tables import symmetry_tables
from wdnorm.engine import schedules
from wdnorm.tables import SLAB_TABLES
from wdnorm.tables.dynamics_rows import (constant_lr_steps,
                                         equilibrium_window)
from wdnorm.tables.slab import slab_tables
from wdnorm.frames import aggregate

D, C, WIDTH, DEPTH = 8, 3, 8, 2
DATASET, OPTIMISER = "toy", "sgdm"
# lr 0.5 and momentum 0.5 make t_equilibrium = 3(1-α)/(2ηλ) = 1.5/λ exact in floating point
LR, MOMENTUM, T = 0.5, 0.5, 612
# λ -> (window_start, window_steps, equilibrium_reached), worked out by hand: the window
# starts at max(ceil(1.5/λ), floor(612/2) = 306)
WINDOWS = {
    0.0: (T, 0, False),                     # no equilibrium: empty window
    1 / 8: (306, 306, True),                # t_eq 12: the second half
    1 / 256: (384, 228, True),              # t_eq 384 (768 if momentum were ignored)
    3 / 1024: (512, 100, True),             # t_eq 512: exactly 100 steps, reached
    11 / 4096: (559, 53, False),            # t_eq 558.5: past it, but too short a window
}
CLAIMS_WD = 1 / 8
PAIRS = [(LR, CLAIMS_WD)]
SEEDS = (0, 1)
DIVERGED = run_id(LR, CLAIMS_WD, 0)         # diverges at step 50
COLLAPSED = run_id(LR, 1 / 256, 1)
REFERENCE = run_id(LR, CLAIMS_WD, 1)        # the curve run and the equivalents' reference
LOW, HIGH = 0.01, 0.03                       # the planted equilibrium angles, alternating


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
                    meta={"name": DATASET, "d_in": D, "n_classes": C, "n_train": 96,
                          "n_test": 40})


# ------------------------------------------------------------------ fake run directories

def _metrics(arch, lr, wd, seed, kind="grid", status="ok", final_acc=0.8):
    diverged = status == "diverged"
    final = dict(train_loss=None if diverged else 0.4, train_acc=1 / C if diverged else 0.9,
                 test_loss=None if diverged else 0.6, test_acc=1 / C if diverged else final_acc,
                 gen_gap_loss=None if diverged else 0.2,
                 gen_gap_acc=0.0 if diverged else 0.9 - final_acc)
    slab = dict(arch=arch, d_in=D, width=WIDTH, depth=DEPTH, n_classes=C,
                optimiser=dict(algorithm="sgd", momentum=MOMENTUM, beta1=0.9, beta2=0.999,
                               eps=1e-8),
                decay_scope="hidden", epochs=51, batch_size=8, eval_every=1, norm_eps=1e-5)
    return dict(
        run_id=run_id(lr, wd, seed, kind), kind=kind, dataset=DATASET, optimiser=OPTIMISER,
        arch=arch, lr=lr, weight_decay=wd, seed=seed, slab=slab,
        reference=None if kind == "grid" else run_id(lr, wd, seed), status=status,
        diverged_step=50 if diverged else None, steps=T,
        layers=models.layer_names(arch, DEPTH), n_classes=C, history={}, final=final,
        final_last=dict(final, test_acc=final["test_acc"] - 0.05), final_evals=3,
        min_var_ratio=3.0 if status == "collapsed" else (None if arch == "plain" else 500.0),
        k_final=None)


def _angles(wd, n_layers):
    """1.0 before the expected window, then LOW/HIGH alternating: a window starting
    early shows as a larger angle, and RMS differs from the mean."""
    start = WINDOWS.get(wd, (T // 2,))[0]
    angle = np.ones(T)
    angle[start:] = np.where(np.arange(T - start) % 2 == 0, LOW, HIGH)
    return np.repeat(angle[:, None], n_layers, 1)


def _trace(model, wd, loss):
    """A trace whose last squared norms are the saved model's own."""
    last = np.array([float(lin.weight.detach().square().sum() + lin.bias.detach().square().sum())
                     for lin in model.linears])
    n = len(last)
    sq = np.vstack([np.full((T, n), 2.0), last[None]])
    return dict(loss=loss, sq_norm=sq, grad_sq_norm=np.ones((T, n)),
                cos_wg=np.full((T, n), 0.02), angle=_angles(wd, n), lr=np.full((T, n), LR))


def _write_run(slab_dir, metrics, trace, model):
    run_dir = slab_dir / metrics["run_id"]
    fileio.write_json(run_dir / "metrics.json", metrics)

    def save(tmp):
        with open(tmp, "wb") as handle:
            np.savez(handle, **{k: np.asarray(v, dtype=np.float32) for k, v in trace.items()})

    fileio.atomic_write(run_dir / "trace.npz", save)
    fileio.atomic_write(run_dir / "model.pt", lambda tmp: torch.save(model.state_dict(), tmp))


def _base_loss():
    return 2.0 * np.exp(-np.arange(T) / 200.0) + 0.3


def _equivalent_losses():
    """kind -> (per-step loss against the reference's, loss_track_steps,
    loss_rel_diff_100), planted."""
    ref = _base_loss()
    exact = ref.copy()
    exact[37:] *= 1.01                      # leaves the reference at step 37 by 1 %
    schedule = ref * (1 + 1e-5)             # tracks it all the way (within 1e-3)
    mimic = ref.copy()
    mimic[60:] = np.nan                     # diverges at step 60
    return {"exact": (exact, 37, 0.01), "schedule": (schedule, T, 1e-5),
            "mimic": (mimic, 60, math.inf)}


def _write_slab(results, arch, grid):
    """Write a slab: ``grid`` is [(wd, seed, status)]; the ln slab also gets the three
    equivalents of REFERENCE. slab.json lists them before the grid runs (the tables
    must not depend on that order)."""
    slab_json = Layout(results=results).slab_manifest(DATASET, OPTIMISER, arch)
    members = []
    if arch == "ln":
        for kind, (loss, _, _) in _equivalent_losses().items():
            m = _metrics(arch, LR, CLAIMS_WD, 1, kind=kind,
                         status="diverged" if kind == "mimic" else "ok")
            torch.manual_seed(99)
            net = models.build_model(arch, D, WIDTH, DEPTH, C)
            _write_run(slab_json.parent, m, _trace(net, 0.0, loss), net)
            members.append(m["run_id"])
    for wd, seed, status in grid:
        m = _metrics(arch, LR, wd, seed, status=status)
        torch.manual_seed(seed)
        net = models.build_model(arch, D, WIDTH, DEPTH, C)
        loss = _base_loss()
        if status == "diverged":
            loss[50:] = np.nan
        trace = _trace(net, wd, loss)
        if status == "diverged":
            trace["sq_norm"][-1] = np.inf
        _write_run(slab_json.parent, m, trace, net)
        members.append(m["run_id"])
    fileio.write_json(slab_json, {"dataset": DATASET, "optimiser": OPTIMISER, "arch": arch,
                                  "members": members, "manifests": {}})
    return slab_json


@pytest.fixture(scope="module")
def sample(tmp_path_factory, prepared):
    results = tmp_path_factory.mktemp("results")
    status = {DIVERGED: "diverged", COLLAPSED: "collapsed"}
    grid = [(wd, s, status.get(run_id(LR, wd, s), "ok")) for s in SEEDS for wd in WINDOWS]
    ln = _write_slab(results, "ln", grid)
    plain = _write_slab(results, "plain", [(CLAIMS_WD, s, "ok") for s in SEEDS])
    return {arch: slab_tables(path, prepared, PAIRS, CLAIMS_WD)
            for arch, path in (("ln", ln), ("plain", plain))}


# ------------------------------------------------------------------ runs

def test_slab_tables_are_the_four_tables(sample):
    assert set(sample["ln"]) == set(SLAB_TABLES)


def test_runs_rows_keep_every_kind_and_status(sample):
    r = sample["ln"]["runs"].set_index("run_id")
    assert len(r) == len(WINDOWS) * len(SEEDS) + 3
    assert r["kind"].value_counts().to_dict() == {"grid": 10, "exact": 1, "schedule": 1,
                                                  "mimic": 1}
    assert r.loc[DIVERGED, "status"] == "diverged"
    assert r.loc[COLLAPSED, "status"] == "collapsed"
    assert r.loc[run_id(LR, 0.0, 0), "status"] == "ok"
    # a diverged run keeps its accuracies (1/n_classes) and has no losses
    bad = r.loc[DIVERGED]
    assert bad["test_acc"] == pytest.approx(1 / C) and bad["train_acc"] == pytest.approx(1 / C)
    assert math.isnan(bad["test_loss"]) and math.isnan(bad["hidden_penalty"])
    assert bad["diverged_step"] == 50
    # the K-mean final metrics and the last evaluation, as written
    ok = r.loc[REFERENCE]
    assert ok["test_acc"] == pytest.approx(0.8) and ok["test_acc_last"] == pytest.approx(0.75)
    assert ok["gen_gap_loss"] == pytest.approx(0.2) and ok["n_classes"] == C
    assert r.loc[COLLAPSED, "min_var_ratio"] == 3.0 and ok["min_var_ratio"] == 500.0
    assert sample["plain"]["runs"]["min_var_ratio"].isna().all()


def test_runs_rows_reference_and_matched_pairs(sample):
    r = sample["ln"]["runs"].set_index("run_id")
    grid, others = r[r["kind"] == "grid"], r[r["kind"] != "grid"]
    assert grid["reference"].isna().all() and (others["reference"] == REFERENCE).all()
    # only the grid runs at the matched pair are one; an equivalent at (lr, λ) is not
    assert set(r.index[r["is_matched_pair"].astype(bool)]) == {run_id(LR, CLAIMS_WD, s)
                                                               for s in SEEDS}


def test_loss_tracking_against_the_reference(sample):
    r = sample["ln"]["runs"].set_index("run_id")
    assert r.loc[r["kind"] == "grid", ["loss_track_steps", "loss_rel_diff_100"]].isna().all().all()
    for kind, (_, steps, diff) in _equivalent_losses().items():
        row = r.loc[run_id(LR, CLAIMS_WD, 1, kind)]
        assert row["loss_track_steps"] == steps, kind
        assert row["loss_rel_diff_100"] == pytest.approx(diff, rel=0.05), kind  # float32


def test_hidden_penalty_is_the_saved_models(sample):
    r = sample["ln"]["runs"].set_index("run_id")
    pen = sample["ln"]["penalty"].set_index("run_id")
    ok = pen[pen["status"] != "diverged"]
    np.testing.assert_allclose(r.loc[ok.index, "hidden_penalty"], ok["penalty_before"],
                               rtol=1e-5)
    assert (r.loc[ok.index, "head_sq_norm"] > 0).all()


# ------------------------------------------------------------------ dynamics

def test_dynamics_rows_are_grid_runs_per_layer(sample):
    d = sample["ln"]["dynamics"]
    assert set(d["kind"]) == {"grid"} and len(d) == 10 * (DEPTH + 1)
    hidden = d[~d["is_head"].astype(bool)]
    assert hidden["predicted_invariant"].all() and not d[d["is_head"]]["predicted_invariant"].any()


def test_equilibrium_time_window_and_reached(sample):
    d = sample["ln"]["dynamics"]
    hidden = d[~d["is_head"].astype(bool)]
    for wd, (start, steps, reached) in WINDOWS.items():
        rows = hidden[np.isclose(hidden["weight_decay"], wd, rtol=0, atol=1e-12)]
        assert len(rows) == DEPTH * len(SEEDS), wd
        t_eq = 1.5 / wd if wd else math.inf            # 3(1-α)/(2ηλ) with α = η = 0.5
        assert np.allclose(rows["t_equilibrium"], t_eq), wd
        assert (rows["window_start"] == start).all(), wd
        assert (rows["window_steps"] == steps).all(), wd
        assert (rows["equilibrium_reached"].astype(bool) == reached).all(), wd
    head = d[d["is_head"].astype(bool)]           # decay scope "hidden": never decayed
    assert np.isinf(head["t_equilibrium"]).all() and not head["equilibrium_reached"].any()
    assert head["angle_rms"].isna().all() and head["angle_pred"].isna().all()


def test_angle_rms_not_mean(sample):
    d = sample["ln"]["dynamics"]
    rows = d[~d["is_head"].astype(bool) & (d["weight_decay"] > 0) & (d["status"] != "diverged")]
    assert len(rows)
    for _, row in rows.iterrows():
        start, _, _ = WINDOWS[row["weight_decay"]]
        window = _angles(row["weight_decay"], 1)[start:, 0]
        assert row["angle_rms"] == pytest.approx(np.sqrt(np.mean(window ** 2)), rel=1e-5)
        assert row["angle_mean"] == pytest.approx(window.mean(), rel=1e-5)
        pred = math.sqrt(2 * LR * row["weight_decay"] / (1 + MOMENTUM))
        assert row["angle_pred"] == pytest.approx(pred, rel=1e-12)
        assert row["angle_ratio"] == pytest.approx(row["angle_rms"] / pred, rel=1e-12)
    full = rows[rows["window_steps"] % 2 == 0]   # an even window: RMS √((a²+b²)/2) > mean
    assert np.allclose(full["angle_rms"], math.sqrt((LOW ** 2 + HIGH ** 2) / 2), rtol=1e-5)
    assert np.allclose(full["angle_mean"], (LOW + HIGH) / 2, rtol=1e-5)
    # λ = 0: nothing to average, no prediction
    zero = d[d["weight_decay"] == 0]
    assert zero["angle_rms"].isna().all() and zero["angle_ratio"].isna().all()


def test_diverged_run_keeps_nan_dynamics(sample):
    rows = sample["ln"]["dynamics"].query("run_id == @DIVERGED")
    assert len(rows) == DEPTH + 1 and rows["angle_rms"].isna().all()
    assert rows["sq_norm_final"].isna().all()
    collapsed = sample["ln"]["dynamics"].query("run_id == @COLLAPSED")
    assert collapsed["sq_norm_final"].notna().all()


def test_equilibrium_window():
    assert equilibrium_window(1000, 90.0) == (500, 500)
    assert equilibrium_window(1000, 700.2) == (701, 299)
    assert equilibrium_window(1000, math.inf) == (1000, 0)
    assert equilibrium_window(1000, 1500.0) == (1000, 0)
    # a cosine tail from step 700: the window ends where the learning rate starts to fall
    lr = 0.1 * schedules.lr_scale("cosine", 1000, 0.3)
    # (the cosine's first step, 700, still has factor cos(0) = 1)
    assert constant_lr_steps(lr) == 701 and constant_lr_steps(np.full(1000, 0.1)) == 1000
    assert equilibrium_window(constant_lr_steps(lr), 90.0) == (350, 351)
    assert equilibrium_window(constant_lr_steps(lr), 650.0) == (650, 51)  # < 100: not reached


# ------------------------------------------------------------------ penalty (C2)

def test_penalty_rows_grid_runs_only(sample):
    pen = sample["ln"]["penalty"].set_index("run_id")
    assert len(pen) == 10 and set(sample["ln"]["runs"].query("kind == 'grid'")["run_id"]) \
        == set(pen.index)
    bad = pen.loc[DIVERGED]
    assert bad["status"] == "diverged" and math.isnan(bad["ratio"])
    assert pen.loc[COLLAPSED, "status"] == "collapsed"
    ok = pen.drop(DIVERGED)
    assert (ok["method"] == "invariant_shrink").all() and (ok["group_kind"] == "layer").all()
    assert (ok["ratio_eps0"] < 1e-3).all() and (ok["rel_loss_change_eps0"] <= 1e-4).all()
    assert (ok["rel_loss_change"] <= 1e-4 * (1 + 1e-6)).all()
    assert ((ok["ratio"] > 0) & (ok["ratio"] < 1)).all()
    np.testing.assert_allclose(ok["group_ratio"], ok["scale"] ** 2)
    np.testing.assert_allclose(ok["ratio"], ok["group_ratio"], rtol=1e-4)
    # the head and the norms' affine parameters keep their penalty
    np.testing.assert_allclose(ok["total_penalty_before"] - ok["penalty_before"],
                               ok["total_penalty_after"] - ok["penalty_after"], rtol=1e-5)


def test_penalty_curve_is_the_lowest_healthy_seed_at_the_claims_wd(sample):
    curve = sample["ln"]["penalty_curve"]
    assert set(curve["run_id"]) == {REFERENCE}      # seed 0 diverged: seed 1
    assert set(curve["variant"]) == {"model_eps", "eps0"}
    assert sample["plain"]["penalty_curve"].empty      # nothing to shrink
    plain = sample["plain"]["penalty"]
    assert (plain["method"] == "relu_rebalance").all()
    assert (plain["total_penalty_after"] < plain["total_penalty_before"]).all()


def test_tables_of_a_slab_the_engine_wrote(tmp_path, prepared):
    """The same tables from a slab the engine trained and wrote (runs.write_run,
    runs.write_slab_manifest): the readers and the writers agree on the contract."""
    from wdnorm import runs
    from wdnorm.engine import Member, OptimiserConfig, SlabConfig, train_slab

    cfg = SlabConfig(arch="ln", d_in=D, width=WIDTH, depth=DEPTH, n_classes=C,
                     optimiser=OptimiserConfig("sgd", momentum=0.9), epochs=4, batch_size=16,
                     eval_every=2)
    members = [Member(0.1, 0.01, 0)] + [Member(0.1, 0.01, 0, k) for k in ("exact", "schedule")]
    result = train_slab(cfg, members, prepared.x_train, prepared.y_train, prepared.x_test,
                        prepared.y_test)
    layout = Layout(results=tmp_path)
    dirs = []
    for i, m in enumerate(members):
        metrics = runs.member_metrics(result, i, dataset=DATASET, optimiser=OPTIMISER,
                                      final_evals=2, collapse_ratio=10)
        dirs.append(runs.write_run(layout.run_dir(DATASET, OPTIMISER, "ln", m.run_id), metrics,
                                   runs.member_trace(result, i), result.state_dict(i), {}))
    runs.write_slab_manifest(layout.slab_dir(DATASET, OPTIMISER, "ln"), dataset=DATASET,
                             optimiser=OPTIMISER, arch="ln", run_dirs=dirs)
    tables = slab_tables(layout.slab_manifest(DATASET, OPTIMISER, "ln"), prepared, PAIRS, 0.01)
    r = tables["runs"].set_index("kind")
    assert list(r.index) == ["grid", "exact", "schedule"]
    steps = int(r.loc["grid", "steps"])
    assert steps == 4 * (96 // 16)
    assert (r.loc[["exact", "schedule"], "reference"] == members[0].run_id).all()
    tracked = r.loc[["exact", "schedule"], "loss_track_steps"]
    assert tracked.between(1, steps).all()      # the same first step, then whatever follows
    assert len(tables["dynamics"]) == DEPTH + 1 and len(tables["penalty"]) == 1
    np.testing.assert_allclose(r.loc["grid", "hidden_penalty"],
                               tables["penalty"]["penalty_before"].iloc[0], rtol=1e-5)
    assert set(tables["penalty_curve"]["run_id"]) == {members[0].run_id}


# ------------------------------------------------------------------ probes and aggregation

def test_gradient_identity(prepared):
    gi = gradient_identity_table(["ln", "plain"], dict(width=WIDTH, depth=DEPTH, norm_eps=1e-5),
                                 16, 40, 0.1,
                                 prepared, DATASET)
    ln = gi[(gi["arch"] == "ln") & gi["predicted_invariant"]]
    assert len(ln) == DEPTH + 1                            # hidden layers + the joint group
    assert (ln["cos_abs_max"] < 1e-3).all()
    assert (ln["identity_rel_err_total"] < 1e-2).all()
    assert (ln["norm_growth"] > 1).all()                   # norms only grow at λ = 0
    head = gi[(gi["arch"] == "plain") & gi["is_head"]].iloc[0]
    assert head["cos_abs_max"] > 1e-2 and head["identity_rel_err_total"] > 1e-2
    # the model's own ε perturbs the identity, the exact probe does not
    assert (ln["cos_abs_max_model_eps"] > ln["cos_abs_max"]).all()
    assert math.isnan(gi[gi["arch"] == "plain"]["norm_eps"].iloc[0])


def test_identity_columns_exact():
    g = np.array([1.0, 2.0, 0.5])
    sq = np.concatenate([[4.0], 4.0 + np.cumsum(0.01 * g)])   # lr 0.1: growth lr² g
    out = identity_columns(sq, g, np.zeros(3), 0.1)
    assert out["identity_rel_err"] < 1e-12 and out["identity_rel_err_total"] < 1e-12
    assert math.isclose(out["norm_growth"], sq[-1] / 4.0)
    off = identity_columns(sq * 1.1, g, np.zeros(3), 0.1)      # growth 10 % too large
    assert off["identity_rel_err_total"] == pytest.approx(0.1)


def test_symmetry_tables(prepared):
    sym, floors = symmetry_tables(["ln", "plain"], dict(width=WIDTH, depth=DEPTH),
                                  prepared.x_train, DATASET, n_classes=C, scales=(0.1, 10.0))
    assert list(sym.columns[:2]) == ["dataset", "arch"]
    assert sym["matches_prediction"].all() and (sym["dataset"] == DATASET).all()
    assert sym.loc[sym["arch"] == "ln", "invariant"].all()
    assert not sym.loc[sym["arch"] == "plain", "invariant"].any()
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
    out = aggregate([tmp_path / n for n in ("a.csv", "b.csv", "c.csv", "d.csv")])
    assert list(out.columns) == ["x", "y", "z"] and out["x"].tolist() == [1, 2, 3]
    assert aggregate([]).empty
    empty = aggregate([tmp_path / "c.csv"])
    assert empty.empty and list(empty.columns) == ["x", "y"]


# ------------------------------------------------------------------ run status

def test_finite_but_broken_runs_are_diverged():
    """A loss that stays finite is not a healthy run: above chance level (ln C) or with
    an overflowing norm it is ``diverged`` (an outcome, counted), never ``ok``."""
    assert "above chance" in runs.broken({"train_loss": 2.66}, 10, [1.0, 1.0])
    assert "overflows" in runs.broken({"train_loss": 0.5}, 10, [1.0, 1e22])
    assert "not finite" in runs.broken({"train_loss": None}, 10, [1.0])
    assert runs.broken({"train_loss": 0.5}, 10, [1.0, 2.0]) is None
    assert runs.member_status(False, None, 10, "above chance") == "diverged"
    assert runs.member_status(False, 500.0, 10, None) == "ok"


def test_a_slab_at_an_absurd_learning_rate_has_no_healthy_broken_runs(prepared):
    cfg = SlabConfig(arch="plain", d_in=D, width=WIDTH, depth=DEPTH, n_classes=C, epochs=3,
                     batch_size=16, eval_every=1, final_evals=1,
                     optimiser=OptimiserConfig("sgd", momentum=0.9))
    members = [Member(5.0, 0.0, s) for s in range(4)]
    result = train_slab(cfg, members, prepared.x_train, prepared.y_train, prepared.x_test,
                        prepared.y_test)
    broken_but_finite = 0
    for i in range(len(members)):
        m = runs.member_metrics(result, i, dataset=DATASET, optimiser=OPTIMISER,
                                final_evals=1, collapse_ratio=10)
        loss = m["final"]["train_loss"]
        healthy = loss is not None and loss <= math.log(C)
        assert (m["status"] == "ok") == healthy, (m["status"], loss)
        broken_but_finite += m["diverged_step"] is None and m["status"] == "diverged"
    assert broken_but_finite  # the case the status exists for: a finite, broken run
