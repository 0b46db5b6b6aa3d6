"""Claims C1/C2 machinery: the symmetry map against the predicted invariances of
docs/architectures.md, the ε floor, and penalty removal. Every expected number here is
computed, never stored."""

import copy
import math

import pytest
import torch
from torch.nn import functional as F

from wdnorm import archs
from wdnorm.models import ARCHITECTURES, build_model, layer_names
from wdnorm.probes.epsilon_floor import epsilon_floor
from wdnorm.probes.penalty import CURVE_COLUMNS, remove_penalty, total_penalty, train_loss
from wdnorm.probes.rebalance import rebalance
from wdnorm.probes.symmetry_map import SYMMETRY_COLUMNS, invariant_layers, symmetry_map
from wdnorm.probes.transforms import logits, scaled, shrink

D_IN, WIDTH, DEPTH, N_CLASSES = 16, 32, 3, 10


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny matmuls on a shared 2-core machine: intra-op threads only spin and wait.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make(arch, seed=1, **kwargs):
    torch.manual_seed(seed)
    return build_model(arch, D_IN, WIDTH, DEPTH, N_CLASSES, **kwargs)


@pytest.fixture(scope="module")
def x():
    return torch.randn(64, D_IN, generator=torch.Generator().manual_seed(0))


def trained(arch, steps=100, seed=0, **kwargs):
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(128, D_IN, generator=g)
    ys = torch.randint(0, N_CLASSES, (128,), generator=g)
    model = make(arch, seed=seed, **kwargs)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=5e-4)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(xs), ys).backward()
        opt.step()
    return model, xs, ys


# ----------------------------------------------------------------------------- C1

@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_symmetry_map_matches_design_table(arch, x):
    model = make(arch)
    before = copy.deepcopy(model.state_dict())
    table = symmetry_map(model, x)
    assert list(table.columns) == SYMMETRY_COLUMNS
    n_hidden = len(model.linears) - 1
    modes = {"train", "eval", "eval_rescaled"} if arch == "bn" else {"eval"}
    assert set(table["mode"]) == modes
    assert len(table) == len(modes) * (n_hidden + 1) * 4
    assert set(table["layer"]) == set(layer_names(arch, DEPTH)[:-1]) | {"joint"}
    inv = table[table["predicted_invariant"]]
    non = table[~table["predicted_invariant"]]
    assert (inv["rel_change"] < 1e-5).all(), inv[inv["rel_change"] >= 1e-5]
    assert (non["rel_change"] > 1e-2).all(), non[non["rel_change"] <= 1e-2]
    assert table["matches_prediction"].all()
    # the caller's model is untouched (BN warm-up and scaling happen on copies)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_symmetry_map_predictions_cover_the_table(x):
    """The predicted-invariant cells are exactly docs/architectures.md's: every hidden
    layer for ln/bn, the blocks (not the stem) for resln, the joint group for
    ln/bn/preln_final."""
    for arch in ARCHITECTURES:
        t = symmetry_map(make(arch), x, scales=(10.0,))
        mode = "eval_rescaled" if arch == "bn" else "eval"
        per_layer, joint = invariant_layers(t, mode)
        expected = {"ln": [0, 1, 2], "bn": [0, 1, 2], "resln": [1, 2, 3]}.get(arch, [])
        assert per_layer == expected, arch
        assert joint == (arch in ("ln", "bn", "preln_final")), arch


def test_model_eps_breaks_exact_invariance(x):
    """With the model's own ε = 1e-5 the 'invariant' cells are only approximately so, and
    worse at small a: the ε/a² term of LN_ε(a z) = (z − μ)/sqrt(Var z + ε/a²)."""
    t = symmetry_map(make("ln"), x)
    layer = t[t["transform"] == "layer"].set_index(["layer_index", "scale"])
    assert (layer["rel_change"] < 1e-12).all()  # float64, ε → 0: rounding only
    small = layer.xs(1e-2, level="scale")["rel_change_model_eps"]
    big = layer.xs(10.0, level="scale")["rel_change_model_eps"]
    assert (small > 1e-2).all()
    assert (small > 100 * big).all()


def test_bn_eval_needs_rescaled_running_stats(x):
    model = make("bn")
    t = symmetry_map(model, x, scales=(0.1, 10.0))
    layers = t[t["transform"] == "layer"]
    plain_eval = layers[layers["mode"] == "eval"]["rel_change"]
    rescaled = layers[layers["mode"] == "eval_rescaled"]["rel_change"]
    batch = layers[layers["mode"] == "train"]["rel_change"]
    assert (plain_eval > 1e-2).all()
    assert (rescaled < 1e-5).all()
    assert (batch < 1e-5).all()
    # the probe gave the copy realistic running stats; the caller's stay at init
    assert all(int(bn.num_batches_tracked) == 0 for bn in model.norms)


# ----------------------------------------------------------------------------- ε floor

def test_epsilon_floor_is_set_by_eps_not_dtype(x):
    model = make("ln")
    last = DEPTH - 1
    r = epsilon_floor(model, x, last)
    f32, f64 = r["floor"]["float32"], r["floor"]["float64"]
    # ε = 1e-5 breaks a 1e-5 tolerance just below a = 1, in both dtypes alike
    assert 1e-2 < f32 < 1.0 and not r["reached_grid_end"]["float32"]
    assert math.isclose(f32, f64, rel_tol=0.05)
    # the first-order prediction sqrt(ε / (2·tol·min Var z + ε)) locates it (last layer)
    assert math.isclose(f32, r["first_order_floor"], rel_tol=0.3)
    # once a²·Var(z) ≪ ε the output is no longer normalised at all: O(1) change
    curve = r["curve"]
    deep = curve[curve["scale"] < 0.1 * r["a_eps"]]
    assert (deep["rel_change"] > 0.5).all()
    # looser tolerance, lower floor
    assert epsilon_floor(model, x, last, tol=1e-2)["floor"]["float32"] < 0.2 * f32


def test_epsilon_floor_vanishes_without_eps(x):
    model = make("ln", norm_eps=0.0)
    r = epsilon_floor(model, x, DEPTH - 1)
    # float32 rounding (~1e-7) stays below tol all the way down the grid to 1e-8
    assert r["reached_grid_end"] == {"float32": True, "float64": True}
    assert r["floor"]["float32"] == pytest.approx(1e-8)


def test_epsilon_floor_rejects_non_invariant_layers(x):
    with pytest.raises(ValueError, match="not a predicted symmetry"):
        epsilon_floor(make("resln"), x, 0)  # the stem
    with pytest.raises(ValueError, match="not a predicted symmetry"):
        epsilon_floor(make("plain"), x, 1)


# ----------------------------------------------------------------------------- C2

REQUIRED = ["arch", "method", "penalty_before", "penalty_after", "ratio", "scale",
            "loss_before", "loss_after", "eps_limited"]


def test_remove_penalty_ln_is_eps_limited():
    model, xs, ys = trained("ln")
    state = copy.deepcopy(model.state_dict())
    r = remove_penalty(model, xs, ys)
    assert set(REQUIRED) <= set(r)
    assert r["method"] == "invariant_shrink" and r["group_kind"] == "layer"
    assert r["penalty_before"] == pytest.approx(float(model.hidden_penalty().detach()))
    assert r["loss_ok"]
    assert abs(r["loss_after"] - r["loss_before"]) <= 1e-4 * r["loss_before"]
    # shrinking (W, b) by a scales the hidden penalty by exactly a²
    assert r["ratio"] == pytest.approx(r["scale"] ** 2, rel=1e-4)
    # ε = 1e-5 stops it well above the bracket's lower end ...
    assert r["eps_limited"] and 1e-3 < r["scale"] < 1.0
    # ... and the curve shows the loss moving once the scale drops below that
    curve = r["curve"]
    assert list(curve.columns) == CURVE_COLUMNS
    assert (curve[curve["scale"] < 0.1 * r["scale"]]["rel_loss_change"] > 1e-4).all()
    # every hidden layer of ln is invariant on its own, so all of them shrink
    assert r["shrunk"] == ",".join(f"linears.{i}.{p}" for i in range(DEPTH)
                                   for p in ("weight", "bias"))
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_remove_penalty_ln_without_eps_goes_to_zero():
    model, xs, ys = trained("ln", norm_eps=0.0)
    r = remove_penalty(model, xs, ys)
    assert r["ratio"] < 1e-3
    assert not r["eps_limited"] and r["scale"] == pytest.approx(1e-12)
    assert r["loss_ok"]


@pytest.mark.parametrize("arch,groups", [("bn", [0, 1, 2]), ("resln", [1, 2, 3]),
                                         ("preln_final", [0, 1, 2, 3])])
def test_remove_penalty_finds_the_invariant_groups(arch, groups):
    model, xs, ys = trained(arch, steps=30)
    r = remove_penalty(model, xs, ys, curve_scales=[1e-3, 1.0])
    assert r["method"] == "invariant_shrink" and r["loss_ok"]
    assert r["shrunk"] == ",".join(f"linears.{i}.{p}" for i in groups
                                   for p in ("weight", "bias"))
    assert r["ratio"] < 1.0
    if arch == "resln":  # the stem keeps its penalty
        stem = float(model.linears[0].weight.detach().square().sum()
                     + model.linears[0].bias.detach().square().sum())
        assert r["penalty_after"] > stem


def test_shrink_bn_rescales_running_stats():
    model, xs, ys = trained("bn", steps=10)
    small = shrink(model, [1], 0.5)
    assert torch.allclose(small.norms[1].running_var, model.norms[1].running_var * 0.25)
    assert torch.allclose(small.norms[1].running_mean, model.norms[1].running_mean * 0.5)
    assert train_loss(small, xs, ys) == pytest.approx(train_loss(model, xs, ys), rel=1e-4)


def test_scaled_is_a_shrunk_copy_then_the_model_bit_for_bit():
    """The probes scale the model in place for one evaluation instead of deep-copying it:
    inside the block it computes what a shrunk copy does, after it every tensor (the
    running statistics a train-mode forward moves included) is back, bit for bit."""
    model, xs, ys = trained("bn", steps=10)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    copy_loss = train_loss(shrink(model, [1], 0.5), xs, ys)
    with scaled(model, [1], 0.5, rescale_bn=True) as m:
        assert m is model and train_loss(m, xs, ys) == copy_loss
    train_logits = logits(model, xs, "train", [1], 0.5)  # a train-mode forward
    assert torch.isfinite(train_logits).all() and not model.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("granularity", ["unit", "layer"])
def test_plain_relu_rebalance(granularity):
    model, xs, ys = trained("plain")
    r = remove_penalty(model, xs, ys, granularity=granularity)
    assert r["method"] == "relu_rebalance" and r["group_kind"] == "none"
    assert abs(r["loss_after"] - r["loss_before"]) <= 1e-4 * r["loss_before"]
    assert r["total_penalty_after"] <= r["total_penalty_before"] * (1 + 1e-6)
    assert r["total_penalty_before"] == pytest.approx(total_penalty(model))
    assert math.isnan(r["scale"]) and r["curve"].empty and not r["eps_limited"]


def test_rebalance_is_an_exact_symmetry_and_units_beat_layers():
    model, xs, _ = trained("plain")
    model64 = copy.deepcopy(model).double().eval()
    x64 = xs.double()
    with torch.no_grad():
        ref = model64(x64)
    totals = {}
    for granularity in ("layer", "unit"):
        after, info = rebalance(model64, granularity=granularity)
        with torch.no_grad():
            out = after(x64)
        assert float((out - ref).abs().max() / ref.abs().max()) < 1e-12
        totals[granularity] = total_penalty(after)
        assert info["objective_after"] <= info["objective_before"]
    assert totals["unit"] < totals["layer"] * (1 - 1e-6)


@pytest.mark.parametrize("arch", ["res", "preln"])
def test_residual_rebalance_keeps_loss(arch):
    model, xs, ys = trained(arch, steps=30)
    r = remove_penalty(model, xs, ys)
    assert r["method"] == "relu_rebalance" and r["loss_ok"]
    assert r["total_penalty_after"] <= r["total_penalty_before"] * (1 + 1e-6)


def test_postln_reports_no_symmetry():
    model, xs, ys = trained("postln", steps=10)
    r = remove_penalty(model, xs, ys)
    assert r["method"] == "none" and r["ratio"] == 1.0 and r["penalty_after"] == r["penalty_before"]


def test_postln_has_a_symmetry_outside_the_per_layer_table(x):
    """Not a (W, b)-of-one-layer transform, so not in the map: in LN(h + ReLU(W h + b)),
    scaling the stem's (W, b) together with block 0's bias b scales LN's whole input."""
    model = make("postln", norm_eps=1e-30).double().eval()
    x64 = x.double()
    with torch.no_grad():
        ref = model(x64)
        for a in (1e-2, 10.0):
            m = copy.deepcopy(model)
            m.linears[0].weight.mul_(a)
            m.linears[0].bias.mul_(a)
            m.linears[1].bias.mul_(a)
            assert float((m(x64) - ref).abs().max() / ref.abs().max()) < 1e-12


# ----------------------------------------------------------------------------- registry

def test_a_new_record_needs_no_probe_edit(monkeypatch, x):
    """The probes ask the record, never the name: a residual BatchNorm-on-branch
    architecture, h <- h + BN(f(h)), is probed from its record alone -- block layers
    invariant with batch statistics or rescaled running statistics, the stem not -- and
    C2 shrinks exactly its blocks."""
    record = archs.Arch("resbn", "h <- h + BN(f(h))", "residual",
                        archs.REGISTRY["resln"].block, "batch", per_layer_invariant="blocks")
    monkeypatch.setitem(archs.REGISTRY, "resbn", record)
    table = symmetry_map(make("resbn"), x, scales=(0.1, 10.0))
    assert table["matches_prediction"].all()
    assert set(table["mode"]) == {"train", "eval", "eval_rescaled"}
    assert invariant_layers(table, "eval_rescaled") == ([1, 2, 3], False)
    assert invariant_layers(table, "eval") == ([], False)
    model, xs, ys = trained("resbn", steps=10)
    r = remove_penalty(model, xs, ys, curve_scales=[])
    assert r["method"] == "invariant_shrink" and r["group_kind"] == "layer" and r["loss_ok"]
    assert r["shrunk"] == ",".join(f"linears.{i}.{p}" for i in (1, 2, 3)
                                   for p in ("weight", "bias"))
    floor = epsilon_floor(model, x, 2, scales=(1.0, 0.1), dtypes=(torch.float64,))
    assert floor["mode"] == "eval_rescaled" and floor["var_z_median"] > 0
