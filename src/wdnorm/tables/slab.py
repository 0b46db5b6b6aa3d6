"""One slab's tables: read ``slab.json`` (the training job's last output, which lists its
members) and the run directories beside it, and build ``runs``, ``dynamics``,
``penalty`` and ``penalty_curve``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from .. import runs
from .dynamics_rows import DYNAMICS_COLUMNS, dynamics_rows
from .penalty_rows import (PENALTY_BISECT, PENALTY_COLUMNS, PENALTY_CURVE_COLUMNS,
                           PENALTY_MAX_ROWS, loss_rows, penalty_rows)
from .run_rows import RUNS_COLUMNS, run_row
from ..frames import frame

log = logging.getLogger("wdnorm")


def _grid_first(run_dirs: Iterable[Path]) -> list[tuple[Path, dict]]:
    """(run_dir, metrics) with the grid runs first: their losses are the references the
    other kinds are compared with."""
    loaded = [(d, runs.read_metrics(d)) for d in run_dirs]
    return sorted(loaded, key=lambda dm: dm[1].get("kind", "grid") != "grid")


def slab_tables(slab_json, prepared, matched_pairs: Iterable = (),
                curve_weight_decay: float | None = None, *,
                penalty_max_rows: int | None = PENALTY_MAX_ROWS,
                n_bisect: int = PENALTY_BISECT,
                progress: Callable[[str], None] | None = None) -> dict[str, pd.DataFrame]:
    """The four per-slab tables, keyed by :data:`wdnorm.tables.SLAB_TABLES`.
    ``prepared``: the dataset (its training rows are the penalty's loss);
    ``matched_pairs``: claim C5's (lr, λ) pairs; ``curve_weight_decay``: the claims λ,
    whose lowest-seed grid run gets the penalty curve. Traces are read one run at a time; only the grid runs' per-step losses
    are kept, for the non-grid members' ``loss_track_steps``."""
    pairs = [tuple(map(float, p)) for p in (matched_pairs or [])]
    run_rows, dyn_rows, grid_runs = [], [], []
    losses: dict[str, np.ndarray] = {}
    for run_dir, metrics in _grid_first(runs.slab_run_dirs(slab_json)):
        trace = runs.read_trace(run_dir)
        if metrics.get("kind", "grid") == "grid":
            losses[metrics["run_id"]] = np.asarray(trace["loss"], dtype=np.float64)
            dyn_rows.extend(dynamics_rows(metrics, trace, pairs))
            grid_runs.append((run_dir, metrics))
        run_rows.append(run_row(metrics, trace, pairs, losses.get(metrics.get("reference"))))
    x, y = loss_rows(prepared.x_train, prepared.y_train, penalty_max_rows)
    pen_rows, curve_rows = penalty_rows(grid_runs, x, y, pairs, curve_weight_decay,
                                        n_bisect=n_bisect)
    if run_rows:
        first = run_rows[0]
        (progress or log.info)(f"slab {first['dataset']}/{first['optimiser']}/{first['arch']}: "
                               f"{len(run_rows)} runs, {len(pen_rows)} penalty rows, "
                               f"{len(curve_rows)} curve rows")
    return dict(runs=frame(run_rows, RUNS_COLUMNS), dynamics=frame(dyn_rows, DYNAMICS_COLUMNS),
                penalty=frame(pen_rows, PENALTY_COLUMNS),
                penalty_curve=frame(curve_rows, PENALTY_CURVE_COLUMNS))
