"""Rows of ``history.csv``: one per run × evaluation -- the learning curves of every run
as one tidy table (metrics.json holds them per run).

``lr`` is the run's learning rate at that step on the layers its schedule scales alone
(η·s_t; an exact or schedule-only equivalent's group layers follow η·s_t/(k_t k_{t+1}),
in its trace); losses are mean cross-entropies, accuracies fractions (0.01 = 1 pp); a
metric of a split the run did not have (no validation split) is empty.
"""

from __future__ import annotations

import numpy as np

from ..engine.schedules import lr_scale

HISTORY_COLUMNS = [
    "dataset", "optimiser", "arch", "protocol", "kind", "run_id", "lr", "weight_decay",
    "seed", "lr_schedule", "status", "evaluation", "epoch", "step", "lr_at_step",
    "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc",
]
METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc")


def history_rows(metrics: dict) -> list[dict]:
    """One row per evaluation of one run (its metrics.json)."""
    history, steps = metrics["history"], int(metrics["steps"])
    schedule = metrics.get("lr_schedule") or "constant"
    scale = lr_scale(schedule, steps, float(metrics.get("lr_decay_fraction") or 1.0)) \
        if steps else np.ones(1)
    base = {k: metrics.get(k) for k in ("dataset", "optimiser", "arch", "kind", "run_id",
                                        "lr", "weight_decay", "seed", "status")}
    base.update(protocol=metrics.get("protocol", "main"), lr_schedule=schedule)
    rows = []
    for e, (epoch, step) in enumerate(zip(history.get("epoch", []), history.get("step", []))):
        at = min(int(step), len(scale) - 1)  # the rate of the next step (last: the final)
        rows.append(dict(base, evaluation=e, epoch=int(epoch), step=int(step),
                         lr_at_step=float(metrics["lr"]) * float(scale[at]),
                         **{m: _value(history.get(m), e) for m in METRICS}))
    return rows


def _value(series, e: int) -> float:
    if series is None:
        return float("nan")
    value = series[e]
    return float("nan") if value is None else float(value)
