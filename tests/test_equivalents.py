"""The LR-schedule equivalents and the mimic, trained in the same slab as their grid runs."""

import dataclasses

import numpy as np
import pytest
import torch

from wdnorm import engine
from wdnorm.engine import Member, OptimiserConfig, SlabConfig, schedules
from wdnorm.probes import equivalence

D, C = 12, 4
MODEL = dict(width=16, depth=2, norm_eps=1e-5)


@pytest.fixture(scope="module")
def data():
    gen = torch.Generator().manual_seed(123)
    x = torch.randn(136, D, generator=gen)
    y = (x[:, :C].argmax(1) + (x[:, -1] > 1).long()) % C
    return x[:96], y[:96], x[96:], y[96:]


def test_k_sequence_follows_its_recurrence():
    lr, wd, alpha = 0.05, 0.01, 0.9
    k = schedules.k_sequence(lr, wd, alpha, 400)
    assert k[0] == 1.0 and np.isclose(k[1], 1 - lr * wd)
    np.testing.assert_allclose(k[2:], (1 + alpha - lr * wd) * k[1:-1] - alpha * k[:-2])
    # k_t -> 0 at the rate of the larger root of x² − (1+α−ηλ)x + α
    root = np.roots([1, -(1 + alpha - lr * wd), alpha]).real.max()
    assert np.isclose(k[-1] / k[-2], root, rtol=1e-3)


def test_no_equivalent_beyond_real_roots():
    with pytest.raises(ValueError, match="k_t of the LR-schedule equivalent"):
        schedules.member_schedules(["exact"], [0.5], [0.1], 0.9, 200)


def _probe(arch, data, steps=300, lr_schedule="constant", lr_decay_fraction=1.0):
    x, y = data[0].double(), data[1]
    settings = {"model": MODEL, "decay_scope": "hidden",
                "optimiser": {"algorithm": "sgd", "lr": 0.05, "momentum": 0.9},
                "training": {"epochs": 1, "batch_size": 16, "eval_every": 1, "final_evals": 1,
                             "lr_schedule": lr_schedule, "lr_decay_fraction": lr_decay_fraction}}
    return {r["variant"]: r for r in equivalence.probe_arch(
        arch, settings, x, y, weight_decay=0.01, steps=steps, tol=1e-8)}


@pytest.mark.parametrize("arch", ["ln", "bn", "resln", "preln_final"])
def test_exact_equivalent_tracks_invariant_architectures(data, arch):
    rows = _probe(arch, data)
    assert rows["exact"]["tracks"] and rows["exact"]["max_rel_loss_diff"] <= 1e-8
    assert rows["exact"]["steps_within_tol"] == 300


@pytest.mark.parametrize("fraction", [1.0, 0.3])
def test_exact_equivalent_follows_a_cosine_schedule(data, fraction):
    """Under η_t = η s_t the recurrence with ρ_t = s_t/s_{t−1} keeps the equivalence exact,
    for a cosine over all steps and for a constant start with a cosine tail."""
    rows = _probe("ln", data, lr_schedule="cosine", lr_decay_fraction=fraction)
    assert rows["exact"]["tracks"] and not rows["schedule"]["tracks"]


def test_cosine_tail_schedule():
    s = schedules.lr_scale("cosine", 100, 0.3)
    assert schedules.decay_start(100, 0.3) == 70
    assert np.all(s[:71] == 1.0) and np.all(np.diff(s[70:]) < 0) and 0 < s[-1] < 0.01
    np.testing.assert_allclose(schedules.lr_scale("cosine", 100),
                               0.5 * (1 + np.cos(np.pi * np.arange(100) / 100)))
    with pytest.raises(ValueError, match="lr_decay_fraction"):
        schedules.lr_scale("cosine", 100, 0.0)


@pytest.mark.parametrize("arch", ["plain", "res"])
def test_exact_equivalent_fails_without_symmetry(data, arch):
    rows = _probe(arch, data)
    assert not rows["exact"]["tracks"] and rows["exact"]["max_rel_loss_diff"] > 1e-4


def test_probe_catches_a_missing_eps_scaling(data, monkeypatch):
    original = schedules.member_schedules

    def unscaled(*args):
        sched = original(*args)
        return dataclasses.replace(sched, eps_factor=np.ones_like(sched.eps_factor))
    monkeypatch.setattr(schedules, "member_schedules", unscaled)
    assert not _probe("ln", data)["exact"]["tracks"]


def test_probe_catches_a_broken_recurrence(data, monkeypatch):
    original = schedules.k_sequence
    monkeypatch.setattr(schedules, "k_sequence",
                        lambda lr, wd, mom, steps, scale=None: original(lr, wd, 0.0, steps, scale))
    assert not _probe("ln", data)["exact"]["tracks"]


def _cfg(arch="ln", **kw):
    return SlabConfig(arch=arch, d_in=D, width=16, depth=2, n_classes=C, batch_size=16,
                      epochs=4, optimiser=OptimiserConfig("sgd", momentum=0.9), **kw)


def test_equivalents_do_not_change_their_grid_run(data):
    grid = Member(0.05, 0.01, 0)
    alone = engine.train_slab(_cfg(), [grid], *data)
    together = engine.train_slab(_cfg(), [grid] + [Member(0.05, 0.01, 0, k)
                                                   for k in ("exact", "schedule", "mimic")],
                                 *data)
    np.testing.assert_allclose(together.trace["loss"][:, 0], alone.trace["loss"][:, 0],
                               rtol=1e-6)


def test_mimic_learning_rate_follows_its_reference_norm(data):
    members = [Member(0.05, 0.01, 0), Member(0.05, 0.01, 0, "mimic")]
    result = engine.train_slab(_cfg(), members, *data)
    t = result.trace
    hidden = slice(0, -1)
    expected = 0.05 * t["sq_norm"][:-1, 1, hidden] / t["sq_norm"][:-1, 0, hidden]
    np.testing.assert_allclose(t["lr"][:, 1, hidden], expected, rtol=1e-5)
    np.testing.assert_allclose(t["lr"][:, 1, -1], 0.05, rtol=1e-6)  # the head keeps lr


def test_kinds_need_sgd_and_a_reference():
    adam = SlabConfig(arch="ln", d_in=D, width=8, depth=1, n_classes=C,
                      optimiser=OptimiserConfig("adam"))
    with pytest.raises(ValueError, match="exact LR-schedule equivalent; adam has none"):
        engine.spec.check_members(adam, [Member(1e-3, 0.01, 0, "exact")])
    with pytest.raises(ValueError, match="needs its reference grid run"):
        engine.spec.check_members(_cfg(), [Member(0.05, 0.01, 0, "mimic")])
    with pytest.raises(ValueError, match="unknown run kind 'twin'"):
        Member(0.05, 0.01, 0, "twin")


def test_batchnorm_statistics_are_recomputed_on_the_training_set(data):
    result = engine.train_slab(_cfg("bn"), [Member(0.1, 0.01, 0)], *data)
    net = result.module(0)
    x = data[0]
    with torch.no_grad():  # the population statistics of the first BN's input
        z = net.linears[0](x)
    np.testing.assert_allclose(net.norms[0].running_mean.numpy(), z.mean(0).numpy(),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(net.norms[0].running_var.numpy(), z.var(0).numpy(),
                               rtol=1e-4, atol=1e-5)
