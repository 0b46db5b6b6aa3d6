"""Claim C1's per-dataset tables: the symmetry map and the ε floor of every architecture,
on freshly initialised models probed with real training inputs."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd
import torch

from .. import archs, models
from ..frames import frame
from .epsilon_floor import epsilon_floor
from .symmetry_map import (DEFAULT_SCALES, DEFAULT_TOL, PROBE_ROWS, SYMMETRY_COLUMNS,
                           predicted_invariant, symmetry_map)

log = logging.getLogger("wdnorm")

EPSILON_FLOOR_COLUMNS = [
    "dataset", "arch", "layer", "layer_index", "transform", "mode", "dtype", "floor",
    "grid_floor", "reached_grid_end", "norm_eps", "a_eps", "first_order_floor",
    "var_z_median", "var_z_min", "tol",
]


def floor_targets(arch: str, depth: int, mode: str) -> list[int]:
    """The layers (and ``-1``, the joint group) that are a predicted symmetry in ``mode``:
    the ones with an ε floor to measure."""
    n_hidden = archs.get(arch).n_linear(depth) - 1
    targets = [i for i in range(n_hidden) if predicted_invariant(arch, "layer", i, mode, depth)]
    if predicted_invariant(arch, "joint", -1, mode, depth):
        targets.append(-1)
    return targets


def _floor_rows(net: models.MLP, x: torch.Tensor, dataset: str, tol: float) -> list[dict]:
    # BatchNorm in eval mode is a symmetry only with its running statistics rescaled along
    mode = "eval_rescaled" if archs.get(net.arch).norm == "batch" else "eval"
    rows = []
    for index in floor_targets(net.arch, net.depth, mode):
        res = epsilon_floor(net, x, index, tol=tol, mode=mode)
        common = {k: res[k] for k in ("layer", "mode", "norm_eps", "a_eps", "first_order_floor",
                                      "var_z_median", "var_z_min", "tol")}
        for f in res["floors"].to_dict("records"):
            rows.append(dict(common, dataset=dataset, arch=net.arch, layer_index=index,
                             transform="joint" if index == -1 else "layer", dtype=f["dtype"],
                             floor=f["floor"], grid_floor=f["grid_floor"],
                             reached_grid_end=bool(f["reached_grid_end"])))
    return rows


def symmetry_tables(arch_list: Sequence[str], model_cfg: dict, x: torch.Tensor,
                    dataset: str, n_classes: int = 10,
                    scales: Sequence[float] = DEFAULT_SCALES,
                    tol: float = DEFAULT_TOL) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``symmetry`` (:func:`~wdnorm.probes.symmetry_map.symmetry_map` per architecture,
    plus ``dataset``) and ``epsilon_floor`` (:func:`~wdnorm.probes.epsilon_floor.
    epsilon_floor` of every predicted-invariant hidden layer and of the joint group where
    that is predicted, one row per dtype), on models initialised with
    ``torch.manual_seed(0)`` and probed on the first :data:`PROBE_ROWS` rows of ``x``."""
    x = x[:PROBE_ROWS]
    width, depth = int(model_cfg["width"]), int(model_cfg["depth"])
    norm_eps = float(model_cfg.get("norm_eps", 1e-5))
    maps, floors = [], []
    for arch in arch_list:
        torch.manual_seed(0)
        net = models.build_model(arch, int(x.shape[1]), width, depth, n_classes,
                                 norm_eps=norm_eps)
        table = symmetry_map(net, x, scales=scales, tol=tol)
        maps.append(table.assign(dataset=dataset))
        floors.extend(_floor_rows(net, x, dataset, tol))
        log.info("symmetry %s: %d cells, %d mismatches", arch, len(table),
                 int((~table["matches_prediction"]).sum()))
    sym = frame([], ["dataset"] + SYMMETRY_COLUMNS) if not maps else \
        pd.concat(maps, ignore_index=True)[["dataset"] + SYMMETRY_COLUMNS]
    return sym, frame(floors, EPSILON_FLOOR_COLUMNS)
