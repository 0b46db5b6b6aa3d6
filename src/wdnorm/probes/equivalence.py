"""The exact LR-schedule equivalence, checked numerically (claim C7a).

For every architecture: the weight-decay run, its exact equivalent (no weight decay on
the group layers, LR schedule η/(k_t k_{t+1}), ε/k_t²) and its schedule-only equivalent
(ε fixed), trained side by side in float64 by the slab engine itself, from the same
initialisation on the same batches. On a scale-invariant architecture the exact
equivalent's per-step loss must equal the weight-decay run's to rounding (≤ 1e-8
relative for every one of ``steps`` steps); where the group is not invariant (plain,
res, ...) it must not -- the contrast that shows the check can fail.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import archs
from ..engine import Member, SlabConfig, train_slab
from ..frames import first_exceeding

COLUMNS = ["dataset", "optimiser", "arch", "variant", "invariant", "dtype", "lr",
           "weight_decay", "momentum", "steps", "tol", "max_rel_loss_diff",
           "steps_within_tol", "tracks"]
VARIANTS = ("exact", "schedule")


def probe_arch(arch: str, settings: dict, x, y, *, weight_decay: float, steps: int,
               tol: float, seed: int = 0) -> list[dict]:
    """Rows of one architecture: one per equivalent variant. ``settings``: the runs'
    :func:`wdnorm.provenance.training_values` (the optimiser entry's ``lr`` is the one
    probed); the probe trains in float64, without trace or evaluations."""
    lr, batch_size = float(settings["optimiser"]["lr"]), settings["training"]["batch_size"]
    cfg = SlabConfig.from_settings(
        arch, {"d_in": x.shape[1], "n_classes": int(y.max()) + 1}, settings,
        epochs=steps // (len(x) // batch_size) + 1, eval_every=10 ** 6, final_evals=1, trace=False,
        dtype="float64")
    members = [Member(lr, weight_decay, seed)] + [Member(lr, weight_decay, seed, v)
                                                   for v in VARIANTS]
    result = train_slab(cfg, members, x, y, x[:batch_size], y[:batch_size], max_steps=steps)
    loss = result.trace["loss"].astype(np.float64)
    momentum = cfg.optimiser.hyper["momentum"]
    rows = []
    for i, variant in enumerate(VARIANTS, start=1):
        rel = np.abs(loss[:, i] - loss[:, 0]) / np.abs(loss[:, 0])
        within = first_exceeding(rel, tol)
        rows.append(dict(arch=arch, variant=variant, invariant=archs.get(arch).invariant,
                         dtype="float64", lr=lr, weight_decay=weight_decay, momentum=momentum,
                         steps=steps, tol=tol,
                         max_rel_loss_diff=float(np.nanmax(rel)) if np.isfinite(rel).any()
                         else float("inf"),
                         steps_within_tol=within, tracks=bool(within >= steps)))
    return rows


def equivalence_table(arch_list, settings: dict, prepared, *, dataset: str, optimiser: str,
                      weight_decay: float, steps: int = 300,
                      tol: float = 1e-8) -> pd.DataFrame:
    """The probe for every architecture (on the prepared training set, float64)."""
    x, y = prepared.x_train.double(), prepared.y_train
    rows = []
    for arch in arch_list:
        for row in probe_arch(arch, settings, x, y, weight_decay=weight_decay, steps=steps,
                              tol=tol):
            rows.append(dict(dataset=dataset, optimiser=optimiser, **row))
    return pd.DataFrame(rows, columns=COLUMNS)
