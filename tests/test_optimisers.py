"""The optimiser records: their formulas, and that a new record is all a new optimiser
needs (a throw-away "SGD with decoupled decay" trains a slab and fills its tables)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from wdnorm import grid, optimisers
from wdnorm.config import with_defaults
from wdnorm.engine import Member, OptimiserConfig, SlabConfig, train_slab
from wdnorm.optimisers.base import Optimiser
from wdnorm.tables.dynamics_rows import dynamics_rows


def test_registry_names_and_errors():
    assert optimisers.ALGORITHMS == ("sgd", "adam", "adamw")
    with pytest.raises(ValueError, match="unknown optimiser algorithm 'rmsprop'; valid: sgd"):
        optimisers.get("rmsprop")
    with pytest.raises(ValueError, match="unknown optimiser hyper-parameter"):
        OptimiserConfig("sgd", nesterov=1.0)


def test_equilibrium_predictions():
    sgd, adam, adamw = (optimisers.get(n) for n in optimisers.ALGORITHMS)
    assert sgd.equilibrium_step(0.1, 0.01, {"momentum": 0.9}) == pytest.approx(3 * 0.1 / 2e-3)
    assert sgd.equilibrium_step(0.1, 0.01, {"momentum": 0.0}) == pytest.approx(3 / 2e-3)
    assert math.isinf(sgd.equilibrium_step(0.1, 0.0, {"momentum": 0.9}))
    assert math.isclose(sgd.angle_prediction(0.1, 0.01, {"momentum": 0.9}),
                        math.sqrt(2e-3 / 1.9))
    assert adamw.equilibrium_step(1e-3, 0.1, {"beta1": 0.9}) == pytest.approx(3 / 2e-4)
    assert math.isclose(adamw.angle_prediction(1e-3, 0.1, {"beta1": 0.9}),
                        math.sqrt(2 * 1e-3 * 0.1 * 0.1 / 1.9))
    assert math.isnan(adam.angle_prediction(1e-3, 0.1, {"beta1": 0.9}))
    assert math.isinf(adam.equilibrium_step(1e-3, 0.1, {"beta1": 0.9}))


def test_only_sgd_has_an_exact_equivalent():
    assert [o.name for o in optimisers.REGISTRY.values() if o.exact_equivalent] == ["sgd"]
    assert optimisers.get("sgd").equivalent_limit({"momentum": 0.9}) == pytest.approx(
        (1 - math.sqrt(0.9)) ** 2)
    assert [o.name for o in optimisers.REGISTRY.values() if o.second_moments] == ["adam",
                                                                                  "adamw"]


def _decoupled_sgd_update(p, g, state, lr, wd, t, hyper):
    (buf,) = state
    buf = buf * hyper["momentum"] + g
    return p * (1 - lr * wd) - lr * buf, (buf,)


# A record no module of the package knows about: SGD with decoupled weight decay.
DECOUPLED_SGD = Optimiser(
    name="sgdw", description="SGD with momentum, decoupled weight decay (test only)",
    update=_decoupled_sgd_update, state=("momentum_buffer",), hyper_parameters=("momentum",),
    decoupled=True, angle_prediction=lambda lr, wd, h: math.sqrt(2 * lr * wd / (1 + h["momentum"])))


@pytest.fixture
def with_decoupled_sgd(monkeypatch):
    monkeypatch.setitem(optimisers.REGISTRY, "sgdw", DECOUPLED_SGD)
    return DECOUPLED_SGD


def test_a_new_record_is_all_a_new_optimiser_needs(with_decoupled_sgd):
    """Its slab trains (update and state from the record), the grid asks the record
    whether equivalents exist (no), and the dynamics table takes its prediction."""
    config = with_defaults({"weight_decays": [0.0, 0.01], "seeds": [0, 1],
                            "claims": {"weight_decay": 0.01},
                            "optimisers": {"w": {"algorithm": "sgdw", "lr": 0.05,
                                                 "momentum": 0.9}}})
    grid.check_config(config)
    members = grid.slab_members(config, "w", "ln")
    assert {m.kind for m in members} == {"grid"}  # no exact equivalent: none trained
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 6, generator=gen), torch.randint(0, 3, (64,), generator=gen)
    cfg = SlabConfig(arch="ln", d_in=6, width=8, depth=1, n_classes=3, epochs=2,
                     batch_size=16, eval_every=1, optimiser=OptimiserConfig("sgdw",
                                                                            momentum=0.9))
    result = train_slab(cfg, members, x, y, x[:16], y[:16])
    assert np.isfinite(result.trace["loss"]).all()
    # decoupled decay shrinks the decayed weights directly: λ > 0 ends with smaller norms
    sq = result.trace["sq_norm"][-1]
    decayed = [i for i, m in enumerate(members) if m.weight_decay > 0]
    plain = [i for i, m in enumerate(members) if m.weight_decay == 0]
    assert sq[decayed, 0].mean() < sq[plain, 0].mean()
    metrics = {"dataset": "toy", "optimiser": "w", "arch": "ln", "run_id": members[1].run_id,
               "lr": 0.05, "weight_decay": 0.01, "seed": 0, "status": "ok", "kind": "grid",
               "steps": result.trace["loss"].shape[0], "slab": cfg.to_dict()}
    rows = dynamics_rows(metrics, result.member_trace(1))
    assert rows[0]["angle_pred"] == pytest.approx(math.sqrt(2 * 0.05 * 0.01 / 1.9))


def test_optimiser_config_round_trips_through_the_slab_dict():
    cfg = SlabConfig(arch="ln", d_in=4, width=4, depth=1, n_classes=2,
                     optimiser=OptimiserConfig("adamw", beta1=0.8))
    again = SlabConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.optimiser.hyper["beta1"] == 0.8
    assert cfg.to_dict()["optimiser"]["algorithm"] == "adamw"
    assert hash(replace(cfg)) == hash(cfg)
